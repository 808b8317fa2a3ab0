"""Anonymized branches: masking rules, the anonymization status, and waiting for it.

Pure rules (no I/O) first: :func:`check_masking_rules` (what the operator checks when the DAG is
parsed), :class:`AnonymizedStatus`, :func:`classify_state` and the polling loop
:func:`anonymization_steps`, a generator of ``waiting.Fetch``/``waiting.Sleep`` steps driven by the
same ``run_sync``/``run_async`` as the operation waits (sync hook and trigger cannot drift apart).
Then :class:`AnonymizedBranchesMixin`, the hook methods for the five API operations.

The service has no operation for an anonymization run (the spec's action enum has none): its
progress is ``GET .../anonymized_status``, states ``created -> initialized -> anonymizing ->
anonymized``, or ``initialization_error``/``error`` with a ``status_message``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.hooks.client import ApiRequest, check_id
from airflow_provider_jambo.hooks.waiting import (
    Fetch,
    PollPolicy,
    Sleep,
    Step,
    resolve_deadline,
    run_async,
    run_sync,
)
from airflow_provider_jambo.models import BranchCreation, parse_datetime
from airflow_provider_jambo.rules import branch_create_body

T = TypeVar("T")

#: PostgreSQL Anonymizer's masking functions (1.x names and 2.x ``dummy_*`` aliases). A rule naming
#: anything else is refused when the DAG is parsed: a typo would otherwise surface only as an
#: anonymization ``error`` after the branch holding the unmasked copy was created.
KNOWN_FUNCTIONS = frozenset(
    {
        # faking
        "anon.fake_first_name", "anon.fake_last_name", "anon.fake_email", "anon.fake_city",
        "anon.fake_city_in_country", "anon.fake_region", "anon.fake_region_in_country",
        "anon.fake_country", "anon.fake_company", "anon.fake_iban", "anon.fake_siret",
        "anon.fake_siren", "anon.fake_address", "anon.fake_postcode", "anon.lorem_ipsum",
        "anon.dummy_first_name", "anon.dummy_last_name", "anon.dummy_name", "anon.dummy_free_email",
        "anon.dummy_safe_email", "anon.dummy_phone_number", "anon.dummy_cell_number",
        "anon.dummy_city_name", "anon.dummy_country_name", "anon.dummy_company_name",
        "anon.dummy_street_name", "anon.dummy_zip_code", "anon.dummy_username",
        # pseudonymization
        "anon.pseudo_first_name", "anon.pseudo_last_name", "anon.pseudo_email", "anon.pseudo_city",
        "anon.pseudo_region", "anon.pseudo_country", "anon.pseudo_company", "anon.pseudo_iban",
        "anon.pseudo_siret", "anon.pseudo_siren",
        # randomization
        "anon.random_string", "anon.random_zip", "anon.random_phone", "anon.random_date",
        "anon.random_date_between", "anon.random_time", "anon.random_int_between",
        "anon.random_bigint_between", "anon.random_in", "anon.random_in_enum", "anon.random_hash",
        "anon.random_id", "anon.random_id_int", "anon.random_id_bigint",
        # partial scrambling, hashing, noise
        "anon.partial", "anon.partial_email", "anon.hash", "anon.digest", "anon.noise", "anon.dnoise",
    }
)  # fmt: skip
RULE_TARGET_FIELDS = ("database_name", "schema_name", "table_name", "column_name")
_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\((.*)\)\s*$", re.S)

AnonymizationVerdict = Literal["success", "failure", "pending"]
AnonymizationStatus = Literal["success", "failed", "timeout"]
FAILED_STATES = frozenset({"error", "initialization_error"})


@dataclass(frozen=True)
class MaskingRule:
    """One column to mask with a PostgreSQL Anonymizer function or a constant value."""

    database_name: str
    schema_name: str
    table_name: str
    column_name: str
    masking_function: str | None = None
    masking_value: str | None = None

    @property
    def target(self) -> str:
        return f"{self.database_name}.{self.schema_name}.{self.table_name}.{self.column_name}"

    def to_api(self) -> dict[str, str]:
        body = {name: getattr(self, name) for name in RULE_TARGET_FIELDS}
        if self.masking_function is not None:
            body["masking_function"] = self.masking_function
        if self.masking_value is not None:
            body["masking_value"] = self.masking_value
        return body

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> MaskingRule:
        def text(name: str) -> str | None:
            value = data.get(name)
            return str(value) if value is not None else None

        return cls(
            database_name=text("database_name") or "",
            schema_name=text("schema_name") or "",
            table_name=text("table_name") or "",
            column_name=text("column_name") or "",
            masking_function=text("masking_function"),
            masking_value=text("masking_value"),
        )


def function_name(text: str) -> str:
    """``anon.partial(email, 2, '*', 2)`` -> ``anon.partial``; ``NULL`` -> ``NULL``; JamboConfigError
    when it is not a call."""
    if text.strip().upper() == "NULL":
        return "NULL"
    match = _CALL.match(text)
    if match is None:
        raise JamboConfigError(f"{text!r} is not a function call such as anon.fake_email()")
    return match.group(1).lower()


def check_masking_rules(rules: Any, field_name: str = "masking_rules") -> list[MaskingRule]:
    """Validate masking rules (mappings or :class:`MaskingRule`); errors name the rule and field.

    Each rule names its column fully (database, schema, table, column) and either a known
    PostgreSQL Anonymizer function (or ``NULL``) or a constant ``masking_value``; one rule per column.
    """
    if isinstance(rules, (str, bytes)) or not isinstance(rules, Sequence) or not rules:
        raise JamboConfigError(
            f"{field_name} must be a non-empty list of rules like {{'database_name': 'neondb', "
            "'schema_name': 'public', 'table_name': 'customers', 'column_name': 'email', "
            "'masking_function': 'anon.fake_email()'}"
        )
    checked: list[MaskingRule] = []
    seen: set[str] = set()
    for index, item in enumerate(rules):
        where = f"{field_name}[{index}]"
        data = item.to_api() if isinstance(item, MaskingRule) else item
        if not isinstance(data, Mapping):
            raise JamboConfigError(f"{where} must be a dict, got {type(item).__name__}")
        unknown = set(data) - {*RULE_TARGET_FIELDS, "masking_function", "masking_value"}
        if unknown:
            raise JamboConfigError(f"{where} has unknown keys {sorted(unknown)}")
        for name in RULE_TARGET_FIELDS:
            value = data.get(name)
            if not isinstance(value, str) or not value.strip():
                raise JamboConfigError(f"{where}.{name} must be a non-empty string, got {value!r}")
        function, value = data.get("masking_function"), data.get("masking_value")
        if (function is None) == (value is None):
            raise JamboConfigError(f"{where} needs exactly one of masking_function and masking_value")
        if value is not None and not isinstance(value, str):
            raise JamboConfigError(f"{where}.masking_value must be a string, got {value!r}")
        if function is not None:
            if not isinstance(function, str):
                raise JamboConfigError(f"{where}.masking_function must be a string, got {function!r}")
            try:
                name = function_name(function)
            except JamboConfigError as err:
                raise JamboConfigError(f"{where}.masking_function: {err}") from None
            if name != "NULL" and name not in KNOWN_FUNCTIONS:
                raise JamboConfigError(
                    f"{where}.masking_function: unknown PostgreSQL Anonymizer function {name!r}; "
                    f"use NULL, a masking_value or one of {', '.join(sorted(KNOWN_FUNCTIONS))}"
                )
        rule = MaskingRule.from_api(data)
        if rule.target in seen:
            raise JamboConfigError(f"{where}: a second rule for column {rule.target}")
        seen.add(rule.target)
        checked.append(rule)
    return checked


@dataclass(frozen=True)
class AnonymizedStatus:
    """``AnonymizedBranchStatusResponse``; unknown states stay as they are (and count as pending)."""

    branch_id: str
    state: str
    status_message: str | None = None
    updated_at: datetime | None = None
    failed_at: datetime | None = None
    masked_columns: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, body: Any) -> AnonymizedStatus:
        data = body if isinstance(body, Mapping) else {}
        last_run = data.get("last_run")
        masked = last_run.get("masked_columns") if isinstance(last_run, Mapping) else None
        return cls(
            branch_id=str(data.get("branch_id", "")),
            state=str(data.get("state", "")),
            status_message=data.get("status_message"),
            updated_at=parse_datetime(data.get("updated_at")),
            failed_at=parse_datetime(data.get("failed_at")),
            masked_columns=masked if isinstance(masked, int) else None,
            raw=dict(data),
        )

    def describe(self) -> str:
        return f"{self.state}" + (f" ({self.status_message})" if self.status_message else "")


def classify_state(state: str) -> AnonymizationVerdict:
    """anonymized = success; error/initialization_error = failure; anything else = pending."""
    if state == "anonymized":
        return "success"
    if state in FAILED_STATES:
        return "failure"
    return "pending"


@dataclass(frozen=True)
class AnonymizationResult:
    status: AnonymizationStatus
    state: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"status": self.status, "state": self.state, "message": self.message}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnonymizationResult:
        status = data.get("status")
        if status not in ("success", "failed", "timeout"):
            raise JamboConfigError(f"anonymization status must be success, failed or timeout, got {status!r}")
        return cls(status, str(data.get("state", "")), str(data.get("message", "")))


def status_request(project_id: str, branch_id: str) -> ApiRequest[AnonymizedStatus]:
    return ApiRequest(
        "GET",
        "/projects/{project_id}/branches/{branch_id}/anonymized_status",
        {"project_id": project_id, "branch_id": branch_id},
        parse=AnonymizedStatus.from_api,
    )


def anonymization_steps(
    project_id: str,
    branch_id: str,
    *,
    deadline: float | None,
    clock: Callable[[], float] = time.time,
    poll: PollPolicy | None = None,
) -> Generator[Step, Any, AnonymizationResult]:
    """Poll ``anonymized_status`` until the branch is anonymized, failed, or the deadline passed."""
    poll = poll or PollPolicy()
    request = status_request(project_id, branch_id)
    interval: float | None = None
    while True:
        # waiting.Fetch is typed for operation lists; its drivers send any ApiRequest as given.
        status: AnonymizedStatus = yield Fetch(cast(Any, request))
        verdict = classify_state(status.state)
        label = f"branch {branch_id} anonymization"
        if verdict == "success":
            return AnonymizationResult("success", status.state, f"{label} finished: {status.describe()}")
        if verdict == "failure":
            return AnonymizationResult("failed", status.state, f"{label} failed: {status.describe()}")
        now = clock()
        if deadline is not None and now >= deadline:
            return AnonymizationResult("timeout", status.state, f"{label} still {status.describe()}")
        interval = poll.next_interval(interval)
        yield Sleep(max(0.0, min(interval, deadline - now)) if deadline is not None else interval)


def _poll_policy(poll_interval: float | None) -> PollPolicy:
    if poll_interval is None:
        return PollPolicy()
    if poll_interval <= 0:
        raise JamboConfigError(f"poll_interval must be > 0 seconds, got {poll_interval}")
    return PollPolicy(initial_interval=min(0.5, poll_interval), max_interval=poll_interval)


def _rules_body(rules: Any) -> list[dict[str, str]]:
    return [rule.to_api() for rule in check_masking_rules(rules)]


class AnonymizedBranchesMixin:
    """JamboHook's methods for anonymized branches (create, rules, start, status, wait)."""

    if TYPE_CHECKING:  # what the mixin uses of JamboHook
        clock: Callable[[], float]
        sleep: Callable[[float], None]
        asleep: Callable[[float], Any]

        def _pid(self, project_id: str | None) -> str: ...
        def request(self, req: ApiRequest[T], *, retry_policy: Any = None) -> T: ...
        async def arequest(self, req: ApiRequest[T], *, retry_policy: Any = None) -> T: ...
        def _call(
            self,
            method: str,
            path: str,
            project_id: str | None,
            ids: Mapping[str, str] | None = None,
            *,
            parse: Callable[[Any], T],
            **request_fields: Any,
        ) -> T: ...
        def _create_branch_once(
            self,
            req: ApiRequest[BranchCreation],
            *,
            name: str | None,
            parent_id: str | None,
            init_source: str | None,
            pid: str,
        ) -> BranchCreation: ...

    def create_anonymized_branch(
        self,
        project_id: str | None = None,
        *,
        masking_rules: Sequence[MaskingRule | Mapping[str, Any]],
        start_anonymization: bool = True,
        name: str | None = None,
        parent_id: str | None = None,
        parent_lsn: str | None = None,
        parent_timestamp: datetime | str | None = None,
        init_source: str | None = None,
        protected: bool | None = None,
        expires_at: datetime | str | None = None,
        endpoints: Sequence[Mapping[str, Any]] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> BranchCreation:
        """``POST /projects/{id}/branch_anonymized``: a branch whose data is masked by ``masking_rules``.

        Sent at most once, as ``create_branch`` is (lost responses adopt the branch by name).
        """
        pid = self._pid(project_id)
        branch_create = branch_create_body(
            name,
            parent_id,
            parent_lsn,
            parent_timestamp,
            init_source,
            protected,
            expires_at,
            endpoints,
            annotations,
        )
        body: dict[str, Any] = {
            "branch_create": branch_create,
            "masking_rules": _rules_body(masking_rules),
            "start_anonymization": bool(start_anonymization),
        }
        # The annotation sits beside branch_create here (AnnotationCreateValueRequest).
        if "annotation_value" in branch_create:
            body["annotation_value"] = branch_create.pop("annotation_value")
        req = ApiRequest(
            "POST",
            "/projects/{project_id}/branch_anonymized",
            {"project_id": pid},
            json=body,
            parse=BranchCreation.from_api,
        )
        return self._create_branch_once(req, name=name, parent_id=parent_id, init_source=init_source, pid=pid)

    def get_masking_rules(self, branch_id: str, *, project_id: str | None = None) -> list[MaskingRule]:
        return self._call(
            "GET",
            "/branches/{branch_id}/masking_rules",
            project_id,
            {"branch_id": branch_id},
            parse=lambda body: [MaskingRule.from_api(r) for r in body.get("masking_rules") or []],
        )

    def update_masking_rules(
        self,
        branch_id: str,
        masking_rules: Sequence[MaskingRule | Mapping[str, Any]],
        *,
        project_id: str | None = None,
    ) -> list[MaskingRule]:
        """Replace all of the branch's masking rules (they apply from the next anonymization)."""
        return self._call(
            "PATCH",
            "/branches/{branch_id}/masking_rules",
            project_id,
            {"branch_id": branch_id},
            json={"masking_rules": _rules_body(masking_rules)},
            # Replacing the rules with the same rules changes nothing: safe to re-send.
            idempotent=True,
            parse=lambda body: [MaskingRule.from_api(r) for r in body.get("masking_rules") or []],
        )

    def start_anonymization(self, branch_id: str, *, project_id: str | None = None) -> AnonymizedStatus:
        return self._call(
            "POST", "/branches/{branch_id}/anonymize", project_id, {"branch_id": branch_id},
            parse=AnonymizedStatus.from_api,
        )  # fmt: skip

    def get_anonymized_status(self, branch_id: str, *, project_id: str | None = None) -> AnonymizedStatus:
        return self.request(status_request(self._pid(project_id), branch_id))

    def wait_for_anonymization(
        self,
        branch_id: str,
        *,
        project_id: str | None = None,
        timeout: float | None = None,
        deadline: datetime | float | None = None,
        poll_interval: float | None = None,
    ) -> AnonymizationResult:
        """Poll the status until anonymized, failed or timed out (returned, not raised)."""
        steps = anonymization_steps(
            self._pid(project_id),
            check_id("branch_id", branch_id),
            deadline=resolve_deadline(timeout, deadline, self.clock()),
            clock=self.clock,
            poll=_poll_policy(poll_interval),
        )
        return run_sync(steps, cast(Any, self.request), self.sleep)

    async def await_anonymization(
        self,
        branch_id: str,
        *,
        project_id: str,
        deadline: float | None = None,
        poll_interval: float | None = None,
    ) -> AnonymizationResult:
        """The async driver of the same steps (triggers)."""
        steps = anonymization_steps(
            check_id("project_id", project_id),
            check_id("branch_id", branch_id),
            deadline=deadline,
            clock=self.clock,
            poll=_poll_policy(poll_interval),
        )
        return await run_async(steps, cast(Any, self.arequest), self.asleep)
