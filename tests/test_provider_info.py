"""Provider metadata: what Airflow's ProvidersManager and the connection form read."""

from __future__ import annotations

import importlib
import importlib.util
from importlib.metadata import distribution, entry_points
from types import SimpleNamespace
from typing import Any

from airflow_provider_jambo.get_provider_info import DEFAULT_BASE_URL, get_provider_info
from airflow_provider_jambo.hooks.client import DEFAULT_BASE_URL as CLIENT_DEFAULT_BASE_URL
from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.hooks.settings import JamboSettings


def test_package_name_is_the_distribution_and_entry_point_resolves() -> None:
    info = get_provider_info()
    assert info["package-name"] == distribution("airflow-provider-jambo").metadata["Name"]
    (ep,) = [
        e
        for e in entry_points(group="apache_airflow_provider")
        if e.value.startswith("airflow_provider_jambo")
    ]
    assert ep.load()() == info


def test_connection_type_matches_the_hook() -> None:
    (conn_type,) = get_provider_info()["connection-types"]
    assert conn_type["connection-type"] == JamboHook.conn_type
    assert conn_type["hook-name"] == JamboHook.hook_name
    module, _, cls = conn_type["hook-class-name"].rpartition(".")
    assert getattr(importlib.import_module(module), cls) is JamboHook
    behaviour = conn_type["ui-field-behaviour"]
    assert behaviour["placeholders"]["host"] == DEFAULT_BASE_URL == CLIENT_DEFAULT_BASE_URL
    assert behaviour["relabeling"]["password"] == "API key"


class _ReadRecorder(dict[str, Any]):
    """Extras that remember which keys the hook asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return super().__contains__(key)


def test_conn_fields_are_exactly_the_extras_the_hook_reads() -> None:
    (conn_type,) = get_provider_info()["connection-types"]
    extras = _ReadRecorder()
    conn = SimpleNamespace(
        conn_id="c", conn_type="jambo", password="k" * 40, host=None, port=None, schema=None
    )
    JamboSettings.from_connection(conn, extras)
    assert set(conn_type["conn-fields"]) == extras.asked
    assert {"project_id", "timeout", "max_retries", "requests_per_minute"} <= extras.asked
    for spec in conn_type["conn-fields"].values():
        assert spec["label"]
        assert "type" in spec["schema"]


def test_every_listed_module_exists() -> None:
    info = get_provider_info()
    modules = [
        m
        for section in ("hooks", "operators", "sensors", "triggers")
        for e in info[section]
        for m in e["python-modules"]
    ]
    modules += [link.rpartition(".")[0] for link in info["extra-links"]]
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    assert missing == []
