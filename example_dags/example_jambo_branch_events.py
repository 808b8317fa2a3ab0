"""Checks on every ``preview/`` branch, wherever it was made: a DAG started by branch events.

    branches_from_events -> check_branch (one per branch, mapped)

Preview branches are mostly made outside Airflow: by a CI job per pull request, the console, the
CLI. The asset below is watched by ``JamboBranchEventTrigger``: the triggerer lists the project's
branches every few seconds (one request; every watcher of the project shares it) and turns each
``preview/`` branch created (or reset) into one asset event, which schedules this DAG. Several
events that arrive together make one run: ``branches_from_events`` reads them all from
``triggering_asset_events`` (a branch created and then reset counts once), and ``check_branch``
runs once per branch.

``check_branch`` checks each branch is what a preview should be (a copy of the default branch, not
protected, with an expiry so it cannot outlive its pull request by long) and returns what it found.
A branch deleted since its event is skipped, not failed. Nothing here creates or deletes a branch:
the DAG only reads what others made.

Needs Airflow 3.0 or later (asset watchers). On 3.3 the watcher keeps its place in the asset state
store, so a restarted triggerer neither misses nor repeats a branch; on 3.0-3.2 it starts from what
exists when the triggerer starts.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from airflow.providers.common.compat.sdk import DAG, AirflowSkipException, Asset, task
from airflow.sdk import AssetWatcher

from airflow_provider_jambo.triggers.events import JamboBranchEventTrigger

log = logging.getLogger(__name__)

PREVIEW_BRANCHES = Asset(
    "jambo_preview_branches",
    watchers=[
        AssetWatcher(
            name="jambo_preview_branch_watcher",
            # 5 s between listings: 12 requests a minute for every watcher of the project together.
            trigger=JamboBranchEventTrigger(
                name_prefix="preview/", events=("created", "reset"), poll_interval=5.0
            ),
        )
    ],
)

with DAG(
    dag_id="example_jambo_branch_events",
    description="Check each preview/ branch created or reset outside Airflow, once per event.",
    schedule=[PREVIEW_BRANCHES],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["jambo", "example"],
):

    @task
    def branches_from_events(**context: Any) -> list[dict[str, Any]]:
        """The branches named by this run's events, each once, in the order their events came."""
        branches: dict[str, dict[str, Any]] = {}
        for event in context["triggering_asset_events"][PREVIEW_BRANCHES]:
            payload = (event.extra or {}).get("payload") or {}
            if not payload.get("branch_id"):
                continue  # an event not from the watcher (a manual asset event, say)
            log.info(
                "%s %s (%s) at %s",
                payload["event"],
                payload["branch_name"],
                payload["branch_id"],
                payload["at"],
            )
            branches[payload["branch_id"]] = {
                "branch_id": payload["branch_id"],
                "branch_name": payload["branch_name"],
                "project_id": payload["project_id"],
                "event": payload["event"],
            }
        return list(branches.values())

    @task
    def check_branch(branch: dict[str, Any]) -> dict[str, Any]:
        # Imported here: parsing this DAG must not load the hook and its HTTP client.
        from airflow_provider_jambo.exceptions import JamboNotFoundError
        from airflow_provider_jambo.hooks.jambo import JamboHook

        with JamboHook() as hook:
            try:
                found = hook.branches.get(branch["branch_id"], project_id=branch["project_id"])
                default = hook.branches.get_default(branch["project_id"])
            except JamboNotFoundError as err:
                raise AirflowSkipException(f"branch {branch['branch_name']} is gone: {err}") from err
            problems = []
            if found.parent_id != default.id:
                problems.append(f"its parent is {found.parent_id}, not the default branch {default.id}")
            if found.protected:
                problems.append("it is protected")
            if found.expires_at is None:
                problems.append("it has no expiry")
        for problem in problems:
            log.warning("Preview branch %s: %s", found.name, problem)
        return {
            "branch_id": found.id,
            "branch_name": found.name,
            "state": found.current_state,
            "problems": problems,
        }

    check_branch.expand(branch=branches_from_events())
