"""Image references from a hostile revision: never valid with control characters or non-ASCII.

Grammar: distribution/reference ``reference.go`` (tag ``[\\w][\\w.-]{0,127}`` with ``\\w`` =
``[a-zA-Z0-9_]``). A reference that fails here is never sent to a registry (issue 15 item 2).
"""

from __future__ import annotations

import pytest

from kubegate.errors import ImageReferenceError
from kubegate.images.reference import parse_reference


@pytest.mark.parametrize(
    "text",
    [
        "registry.example/app\nInjected: x:1",
        "registry.example/app:1\r\nX: y",
        "registry.example/app:1\x1b]0;title\x07",
        "registry.example/app:1.0\u00e9",  # a letter, but not an ASCII one
        "registry.example/app:\u0661",  # an Arabic-Indic digit
        "registry.example/a\tb:1",
    ],
)
def test_control_and_non_ascii_characters_are_invalid(text: str) -> None:
    with pytest.raises(ImageReferenceError) as info:
        parse_reference(text)
    diagnostics = info.value.diagnostics()
    assert all(c.isprintable() for c in diagnostics), diagnostics


def test_a_huge_reference_is_cut_short_in_messages() -> None:
    with pytest.raises(ImageReferenceError) as info:
        parse_reference("registry.example/" + "A" * 100_000 + ":1")
    assert len(info.value.diagnostics()) < 1000
