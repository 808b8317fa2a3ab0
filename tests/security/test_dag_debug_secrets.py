"""A real ``airflow dags test`` run at DEBUG log level: the provider prints no secret.

``airflow dags test`` shows task output unmasked, and at DEBUG its in-process supervisor logs each
value registered with the secrets masker (``Sending request ... MaskSecret(value=...)``): that is
Airflow's own line (README says so). Every other line of the run (output, task logs, XCom,
rendered fields) must be free of the API key and of every role password.
"""

from __future__ import annotations

import json

import pytest
from dags.runner import EXAMPLE_DAGS, AirflowHome

from airflow_provider_jambo.hooks.jambo import JamboHook
from jambo_emulator import JamboEmulator

pytestmark = pytest.mark.dags

#: Airflow's in-process supervisor logging a MaskSecret message (not the provider).
AIRFLOW_MASK_LINE = "MaskSecret(value="


@pytest.fixture(scope="module")
def home() -> AirflowHome:
    return AirflowHome.create()


def test_dags_test_at_debug_shows_secrets_only_in_airflows_mask_messages(
    home: AirflowHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    with JamboEmulator(
        api_key="dag-debug-secret-key-4e1b", deterministic=True, operation_duration=0.0, data_plane="off"
    ) as emu:
        project_id = emu.create_project(name="dag-debug")["project"]["id"]
        conn = json.dumps(
            {
                "conn_type": "jambo",
                "host": emu.base_url,
                "password": emu.api_key,
                "extra": {"project_id": project_id},
            }
        )
        monkeypatch.setenv("AIRFLOW_CONN_JAMBO_DEFAULT", conn)
        with JamboHook() as hook:
            main = hook.branches.get_default(project_id)
            passwords = {hook.roles.reveal_password(main.id, "neondb_owner")}
        result = home.run_dag(
            EXAMPLE_DAGS / "example_jambo_ephemeral_branch.py",
            env={
                "AIRFLOW_CONN_JAMBO_DEFAULT": conn,
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG",
                "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",
                "AIRFLOW__JAMBO__DEFAULT_DEFER_GRACE_SECONDS": "0",
            },
        )
        store = emu.ctx.store
        with store.lock:
            passwords |= {
                r.password
                for p in store.projects.values()
                for b in p.branches.values()
                for r in b.roles.values()
            }
        api_key = emu.api_key
    assert result.state == "success", result.describe()
    text = result.everything()
    assert "[debug" in text, "the run did not log at DEBUG"
    assert "running trigger in line" in text, "the deferral path did not run"
    for kind, secret in [("API key", api_key), *(("role password", p) for p in passwords)]:
        leaking = [
            line.replace(secret, f"<{kind}>")[:300]
            for line in text.splitlines()
            if secret in line and AIRFLOW_MASK_LINE not in line
        ]
        assert not leaking, f"{kind} printed outside Airflow's MaskSecret debug line:\n" + "\n".join(leaking)
