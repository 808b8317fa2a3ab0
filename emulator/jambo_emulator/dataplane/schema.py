"""Schema dumps as the API returns them, and the diff ``compare_schema`` reports."""

from __future__ import annotations

import difflib
import re

# pg_dump (15.14+) brackets plain dumps with `\restrict <random key>` / `\unrestrict <key>`; the
# key changes on every run and would show up in every diff.
_RESTRICT = re.compile(r"^\\(un)?restrict \S+\n", re.MULTILINE)
# The data plane's own grants on pg_catalog's large-object functions (read-only roles must not
# write large objects): the same in every database, and not the user's schema.
_OWN_ACLS = re.compile(
    r"--\n-- Name: FUNCTION lo_[^\n]*; Type: ACL; Schema: pg_catalog;[^\n]*\n--\n\n"
    r"(?:(?:REVOKE|GRANT) [^\n]*\n)+\n\n"
)
_BARE_IDENT = re.compile(r"[a-z_][a-z0-9_$]*")


def _as_identifier(name: str) -> str:
    """How pg_dump prints a name: bare when it can be (keywords aside), else double-quoted."""
    return name if _BARE_IDENT.fullmatch(name) else '"' + name.replace('"', '""') + '"'


def clean_dump(text: str, physical_to_logical: dict[str, str]) -> str:
    """A pg_dump text with internal database and role names replaced by the API's names."""
    text = _OWN_ACLS.sub("", _RESTRICT.sub("", text))
    # Longest first: ``neondb~1`` must not eat the start of ``neondb~12``.
    for physical, logical in sorted(physical_to_logical.items(), key=lambda kv: -len(kv[0])):
        quoted_physical = '"' + physical.replace('"', '""') + '"'
        text = text.replace(quoted_physical, _as_identifier(logical))
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
