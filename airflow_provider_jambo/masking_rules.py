"""Masking rules of an anonymized branch: the model and the checks run when a DAG is parsed.

Pure (no I/O, no HTTP client), so an operator can check its rules at parse time without importing
the hook. The API takes the rules in ``POST /projects/{id}/branch_anonymized`` and
``PUT .../masking_rules`` (``hooks/anonymization.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_jambo.exceptions import JamboConfigError

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
