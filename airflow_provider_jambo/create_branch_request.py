"""CreateBranchRequest: everything a branch create says, checked once, its body built once.

The hook (``hook.branches.create``/``get_or_create``), the create operators and the anonymized
create all take this one object instead of repeating the create's parameters. It is pure (no
HTTP client, no Airflow state), like ``rules.py`` whose checks it applies, so building one costs
nothing at DAG parse. An anonymized create is the same request with ``masking_rules``: the hook
sends it to ``/branch_anonymized`` instead of ``/branches``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.masking_rules import MaskingRule, check_masking_rules
from airflow_provider_jambo.rules import (
    INIT_SOURCES,
    check_annotations,
    check_branch_endpoints,
    check_choice,
    check_id,
    check_name,
    check_unprotected_expiry,
    format_timestamp,
    point_in_time,
)


@dataclass(frozen=True)
class CreateBranchRequest:
    """A branch create (``POST /projects/{id}/branches``, or ``/branch_anonymized`` with rules).

    :param name: the branch's exact name (None: the service names it; it cannot be looked up then).
    :param parent_id: the parent's id (None: the project's default branch).
    :param parent_lsn: branch from the parent's state at this LSN.
    :param parent_timestamp: ... or at this time (datetime or RFC 3339 with a zone; not both).
    :param init_source: ``parent-data`` or ``schema-only`` (a new root with the parent's schema).
    :param protected: create the branch protected (no ``expires_at`` then).
    :param expires_at: absolute expiry, at most 30 days ahead.
    :param endpoints: computes to create with it, as the API spells them
        (``{"type": "read_write", "autoscaling_limit_min_cu": 0.25, ...}``).
    :param annotations: string tags (the branch's ``annotation_value``).
    :param masking_rules: makes it an anonymized create with these rules (``masking_rules.py``).
    :param start_anonymization: an anonymized create starts masking at once (default).

    Every value is checked when the object is made (``JamboConfigError`` naming the parameter),
    so a request that exists is one the service can be sent.
    """

    name: str | None = None
    parent_id: str | None = None
    parent_lsn: str | None = None
    parent_timestamp: datetime | str | None = None
    init_source: str | None = None
    protected: bool | None = None
    expires_at: datetime | str | None = None
    endpoints: Sequence[Mapping[str, Any]] | None = None
    annotations: Mapping[str, str] | None = None
    masking_rules: Sequence[MaskingRule | Mapping[str, Any]] | None = None
    start_anonymization: bool = True
    _branch: dict[str, Any] = field(init=False, repr=False, compare=False)
    _extra: dict[str, Any] = field(init=False, repr=False, compare=False)
    _rules: tuple[MaskingRule, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        branch: dict[str, Any] = {}
        if self.name is not None:
            branch["name"] = check_name("name", self.name)
        if self.parent_id is not None:
            branch["parent_id"] = check_id("parent_id", self.parent_id)
        branch.update(point_in_time("parent", self.parent_lsn, self.parent_timestamp))
        if self.init_source is not None:
            branch["init_source"] = check_choice("init_source", self.init_source, INIT_SOURCES)
        if self.protected is not None:
            branch["protected"] = bool(self.protected)
        if self.expires_at is not None:
            branch["expires_at"] = format_timestamp(check_unprotected_expiry(self.expires_at, self.protected))
        extra: dict[str, Any] = {}
        if self.endpoints:
            extra["endpoints"] = check_branch_endpoints("endpoints", self.endpoints)
        if self.annotations:
            extra["annotation_value"] = check_annotations("annotations", self.annotations)
        rules: tuple[MaskingRule, ...] = ()
        if self.masking_rules is not None:
            rules = tuple(check_masking_rules(self.masking_rules))
            object.__setattr__(self, "masking_rules", rules)
        elif not self.start_anonymization:
            raise JamboConfigError(
                "start_anonymization=False is only for an anonymized create (masking_rules)"
            )
        object.__setattr__(self, "_branch", branch)
        object.__setattr__(self, "_extra", extra)
        object.__setattr__(self, "_rules", rules)

    @property
    def anonymized(self) -> bool:
        return self.masking_rules is not None

    def with_parent(self, parent_id: str | None) -> CreateBranchRequest:
        """The same create from another parent (an operator resolves its parent's name first);
        only the new id is checked, the rest was when this request was made."""
        other = copy.copy(self)
        branch = {k: v for k, v in self._branch.items() if k != "parent_id"}
        if parent_id is not None:
            branch["parent_id"] = check_id("parent_id", parent_id)
        object.__setattr__(other, "parent_id", parent_id)
        object.__setattr__(other, "_branch", branch)
        return other

    def body(self) -> dict[str, Any]:
        """The JSON body, a fresh copy (callers may not change this request through it)."""
        if self.masking_rules is None:
            return copy.deepcopy({"branch": self._branch, **self._extra})
        # BranchAnonymizedCreateRequest: the annotation sits beside branch_create, not inside it.
        branch_create = {
            "branch": self._branch,
            **{k: v for k, v in self._extra.items() if k != "annotation_value"},
        }
        body: dict[str, Any] = {
            "branch_create": branch_create,
            "masking_rules": [rule.to_api() for rule in self._rules],
            "start_anonymization": bool(self.start_anonymization),
        }
        if "annotation_value" in self._extra:
            body["annotation_value"] = self._extra["annotation_value"]
        return copy.deepcopy(body)
