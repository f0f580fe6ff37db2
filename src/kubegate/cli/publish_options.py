"""``--publish`` and its options, shared by ``kubegate scan`` and ``kubegate watch``.

Registering adds ``--publish oci://HOST/REPO[:TAG]``, ``--publish-tag``, ``--publish-source`` and
``--publish-pin`` (config ``publish:``, docs/publish.md); :func:`publish_options` validates them
before anything is scanned (exit 3), :func:`publish_verdict` pushes a passing revision after the
reports are written and prints one line saying what happened (exit 2 when a push fails).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from kubegate.cli.common import print_line
from kubegate.errors import EXIT_UNPROVEN, ConfigError, KubegateError, UsageError

if TYPE_CHECKING:
    from kubegate.config import Config
    from kubegate.decide.gate import GateResult
    from kubegate.publish import PublishOptions, Snapshot
    from kubegate.registry import RegistryOptions


def add_publish_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--publish*`` options."""
    parser.add_argument(
        "--publish",
        metavar="oci://HOST/REPO[:TAG]",
        help="on a clean PASS, push the judged tree as a Flux OCI artifact and point TAG "
        "(default approved) at it (config publish.url)",
    )
    parser.add_argument(
        "--publish-tag",
        metavar="TAG",
        help="the immutable per-revision tag (default <branch>-<sha12>, sha1-<sha12> or "
        "sha256-<digest12>)",
    )
    parser.add_argument(
        "--publish-source",
        metavar="URL",
        help="org.opencontainers.image.source when the revision has no Git URL "
        "(default the OCI repository; config publish.source)",
    )
    parser.add_argument(
        "--publish-pin",
        action="store_true",
        help="pin every scanned image by digest in the published Flux Kustomizations' "
        "spec.images (config publish.pin)",
    )


def publish_options(args: argparse.Namespace, config: Config) -> PublishOptions | None:
    """What ``--publish*`` and ``publish:`` ask for (None: no publishing)."""
    from kubegate.publish import PublishOptions, check_tag, parse_target

    url = args.publish or config.publish.url
    if url is None:
        for flag in ("publish_tag", "publish_source", "publish_pin"):
            if getattr(args, flag):
                option = "--" + flag.replace("_", "-")
                raise UsageError("needs --publish oci://HOST/REPO[:TAG]", where=option)
        return None
    try:
        target = parse_target(url, "--publish" if args.publish else "publish.url")
    except UsageError as exc:
        if args.publish or config.path is None:
            raise
        raise ConfigError(exc.diagnostics(), where=str(config.path)) from exc
    if args.publish_tag is not None:
        check_tag(args.publish_tag, "--publish-tag")
        if args.publish_tag == target.tag:
            # The per-revision tag never moves; the moving tag must be another one.
            raise UsageError(f"must differ from the moving tag {target.tag}", where="--publish-tag")
    return PublishOptions(
        target=target,
        revision_tag=args.publish_tag,
        source=args.publish_source or config.publish.source,
        pin=bool(args.publish_pin or config.publish.pin),
    )


def publish_verdict(
    result: GateResult,
    snapshot: Snapshot,
    options: PublishOptions,
    registry: RegistryOptions,
    database_updated: str | None,
) -> int:
    """Publish a passing ``result``; the exit code (the verdict's, or 2 on a failed push)."""
    from kubegate.publish import publish_result, refusal
    from kubegate.registry import RegistryClient

    try:
        reason = refusal(result)
        if reason is not None:
            print_line(f"not published to {options.target}: {reason}; the tag is unchanged")
            return result.exit_code
        with RegistryClient(registry) as client:
            published = publish_result(
                result, snapshot, options, client, database_updated=database_updated
            )
    except KubegateError as exc:
        print_line(f"error: {exc.diagnostics()}; nothing published")
        return EXIT_UNPROVEN
    finally:
        snapshot.close()
    for line in published.pins:
        print_line(f"pinned {line}")
    print_line(
        f"published {published.reference} ({published.revision}) as "
        f"{published.revision_tag} and {published.target.tag}"
    )
    return result.exit_code
