"""Schema dumps as the API returns them, and the diff ``compare_schema`` reports."""

from __future__ import annotations

import difflib
import re

# pg_dump (15.14+) brackets plain dumps with `\restrict <random key>` / `\unrestrict <key>`; the
# key changes on every run and would show up in every diff.
_RESTRICT = re.compile(r"^\\(un)?restrict \S+\n", re.MULTILINE)


def clean_dump(text: str, physical_to_logical: dict[str, str]) -> str:
    """A pg_dump text with internal database names replaced by the API's names."""
    text = _RESTRICT.sub("", text)
    for physical, logical in physical_to_logical.items():
        quoted_physical = '"' + physical.replace('"', '""') + '"'
        text = text.replace(quoted_physical, '"' + logical.replace('"', '""') + '"')
        text = text.replace(physical, logical)
    return text


def diff_schemas(base: str, other: str, base_name: str = "base", other_name: str = "branch") -> str:
    """Unified diff from ``base`` to ``other`` (empty when the schemas are the same)."""
    return "".join(
        difflib.unified_diff(
            base.splitlines(keepends=True),
            other.splitlines(keepends=True),
            fromfile=base_name,
            tofile=other_name,
        )
    )
