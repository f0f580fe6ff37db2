"""``kubegate sbom REF``: the packages inside an image, as CycloneDX, kubegate JSON or a table.

Wires ``kubegate.scan.ImageInspector`` (registry client + inventory, cached per layer, per
manifest and per image digest) to the SBOM writers of ``kubegate.report.sbom``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from kubegate.cli.common import (
    DEFAULT_TIMEOUT,
    add_limit_arguments,
    add_output_arguments,
    add_registry_arguments,
    login_registry_of,
    registry_options,
    transfer_limits,
)
from kubegate.errors import EXIT_OK, UsageError
from kubegate.images.reference import parse_reference
from kubegate.report.sbom import SBOMFormat, Subject, render_sbom


def register(subparsers: Any) -> None:
    """Add the ``sbom`` sub-command."""
    parser = subparsers.add_parser(
        "sbom",
        help="list the packages inside an image",
        description="Inventory an image (registry reference, oci:PATH[:TAG], oci-archive:PATH "
        "or docker-archive:PATH) and print its packages.",
    )
    parser.add_argument("reference", metavar="REF", help="image reference or local image")
    parser.add_argument(
        "--format",
        choices=[f.value for f in SBOMFormat],
        default=SBOMFormat.TABLE.value,
        help="output format (default table)",
    )
    add_registry_arguments(parser)
    add_limit_arguments(
        parser,
        default_timeout=DEFAULT_TIMEOUT,
        timeout_help="bound the whole command; a registry not done by then is exit 2",
    )
    add_output_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Pull, inventory and print the SBOM of every selected platform."""
    # Imported here, not at start-up (STYLE.md: start-up time counts).
    from kubegate.inventory import InventoryCache
    from kubegate.registry import RegistryClient, is_local_reference
    from kubegate.scan import ImageInspector

    limits = transfer_limits(args, time.monotonic())
    fmt = SBOMFormat(args.format)
    if is_local_reference(args.reference):
        subject = Subject(args.reference, args.reference)
    else:
        subject = Subject.of(parse_reference(args.reference))
    cache = InventoryCache()
    try:
        options = registry_options(args, login_registry_of(args.reference), limits)
        with RegistryClient(options) as client:
            # The shared inspector: a warm run resolves the tag and reads everything else
            # from the cache (no manifest or blob request).
            image = ImageInspector(client, cache).inspect(args.reference)
    finally:
        cache.close()
    if len(image.platforms) > 1 and fmt is not SBOMFormat.TABLE:
        offered = ", ".join(p.platform for p in image.platforms)
        raise UsageError(
            f"the image has {len(image.platforms)} platforms ({offered}); "
            f"choose one with --platform for a {fmt.value} SBOM",
            where=args.reference,
        )
    outputs = [render_sbom(subject, p.inventory, fmt) for p in image.platforms]
    if len(image.platforms) > 1:
        outputs = [
            f"# {platform.platform}\n{text}"
            for platform, text in zip(image.platforms, outputs, strict=True)
        ]
    print("\n".join(outputs), end="")
    return EXIT_OK
