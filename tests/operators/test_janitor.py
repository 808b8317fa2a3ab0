"""The janitor's selection rules (pure) and its dry-run/real runs against the emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_jambo.api_models import Branch
from airflow_provider_jambo.create_branch_request import CreateBranchRequest
from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.operators.janitor import (
    JamboDeleteStaleBranchesOperator,
    StaleBranchRule,
    plan_cleanup,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=3)
NEW = NOW - timedelta(minutes=5)


def br(
    branch_id: str,
    name: str,
    *,
    parent: str | None = "br-main",
    created: datetime | None = OLD,
    default: bool = False,
    protected: bool = False,
) -> Branch:
    return Branch(
        id=branch_id,
        project_id="p-1",
        name=name,
        parent_id=parent,
        default=default,
        protected=protected,
        created_at=created,
    )


MAIN = br("br-main", "main", parent=None, default=True)
RULE = StaleBranchRule("preview-", timedelta(days=1), {})


def names(plan_branches: tuple[Branch, ...]) -> list[str]:
    return [b.name for b in plan_branches]


def test_selects_by_prefix_and_age_only() -> None:
    branches = [
        MAIN,
        br("br-a", "preview-a"),
        br("br-b", "preview-b", created=NEW),  # too young
        br("br-c", "feature-c"),  # wrong prefix
        br("br-d", "xpreview-d"),  # prefix must be a prefix, not a substring
        br("br-e", "preview-e", created=None),  # unknown age: kept
    ]
    plan = plan_cleanup(branches, RULE, now=NOW, annotations={})
    assert names(plan.delete) == ["preview-a"]
    assert plan.kept == ()


def test_annotations_must_all_match() -> None:
    rule = StaleBranchRule("preview-", timedelta(0), {"dag_id": "preview", "team": "data"})
    branches = [MAIN, br("br-a", "preview-a"), br("br-b", "preview-b"), br("br-c", "preview-c")]
    annotations = {
        "br-a": {"dag_id": "preview", "team": "data", "extra": "x"},
        "br-b": {"dag_id": "preview"},
        # br-c has none
    }
    plan = plan_cleanup(branches, rule, now=NOW, annotations=annotations)
    assert names(plan.delete) == ["preview-a"]


def test_never_default_or_protected_even_when_matching() -> None:
    branches = [
        br("br-root", "preview-root", parent=None, default=True),
        br("br-p", "preview-protected", protected=True),
        br("br-x", "preview-x"),
    ]
    plan = plan_cleanup(branches, RULE, now=NOW, annotations={})
    assert names(plan.delete) == ["preview-x"]
    assert {(b.name, reason) for b, reason in plan.kept} == {
        ("preview-root", "default branch"),
        ("preview-protected", "protected branch"),
    }


def test_children_are_deleted_before_parents() -> None:
    branches = [
        MAIN,
        br("br-1", "preview-1"),
        br("br-1a", "preview-1a", parent="br-1"),
        br("br-1a-i", "preview-1a-i", parent="br-1a"),
        br("br-2", "preview-2"),
    ]
    plan = plan_cleanup(branches, RULE, now=NOW, annotations={})
    order = names(plan.delete)
    assert sorted(order) == ["preview-1", "preview-1a", "preview-1a-i", "preview-2"]
    assert order.index("preview-1a-i") < order.index("preview-1a") < order.index("preview-1")


def test_parent_with_a_kept_child_is_kept_transitively() -> None:
    branches = [
        MAIN,
        br("br-1", "preview-1"),
        br("br-1a", "preview-1a", parent="br-1"),
        br("br-1a-i", "feature-keep", parent="br-1a"),  # not stale: blocks its ancestors
        br("br-2", "preview-2"),
    ]
    plan = plan_cleanup(branches, RULE, now=NOW, annotations={})
    assert names(plan.delete) == ["preview-2"]
    reasons = {b.name: reason for b, reason in plan.kept}
    assert "feature-keep" in reasons["preview-1a"]
    assert "preview-1a" in reasons["preview-1"]


def test_plan_dict_lists_ids_and_names() -> None:
    plan = plan_cleanup([MAIN, br("br-a", "preview-a")], RULE, now=NOW, annotations={})
    dry = plan.to_dict(dry_run=True)
    assert dry["dry_run"] is True
    assert [b["branch_id"] for b in dry["would_delete"]] == ["br-a"]
    assert "deleted" not in dry
    assert plan.to_dict(dry_run=False)["deleted"][0]["name"] == "preview-a"


@pytest.mark.parametrize(
    ("prefix", "older_than", "annotations", "message"),
    [
        ("", timedelta(0), {}, "name_prefix"),
        ("   ", timedelta(0), {}, "name_prefix"),
        ("p-", timedelta(seconds=-1), {}, "older_than"),
        ("p-", timedelta(0), {"a": 1}, "annotations"),
    ],
)
def test_rule_rejects_bad_input(prefix: str, older_than: timedelta, annotations: dict, message: str) -> None:
    with pytest.raises(JamboConfigError, match=message):
        StaleBranchRule(prefix, older_than, annotations)


def test_operator_checks_plain_arguments_at_parse_time() -> None:
    with pytest.raises(JamboConfigError, match="name_prefix"):
        JamboDeleteStaleBranchesOperator(task_id="j", name_prefix="", older_than=0)
    with pytest.raises(JamboConfigError, match="older_than"):
        JamboDeleteStaleBranchesOperator(task_id="j", name_prefix="p-", older_than="soon")
    # Templates are checked when rendered, not at parse time.
    JamboDeleteStaleBranchesOperator(
        task_id="j", name_prefix="{{ params.prefix }}", older_than="{{ params.age }}"
    )


def _create(hook: JamboHook, project_id: str, name: str, parent_id: str, **kwargs: Any) -> str:
    creation = hook.branches.create(
        CreateBranchRequest(name=name, parent_id=parent_id, **kwargs), project_id=project_id
    )
    hook.operations.wait([op.id for op in creation.operations], project_id=project_id, timeout=30)
    return creation.branch.id


def test_operator_dry_run_lists_and_changes_nothing(jambo_project: Any) -> None:
    """In process against the emulator (the real run goes through `airflow dags test` in tests/dags)."""
    hook = JamboHook()
    pid, main = jambo_project.project_id, jambo_project.default_branch_id
    tag = {"owner": "ci"}
    old = _create(hook, pid, "tmp-old", main, annotations=tag)
    child = _create(hook, pid, "tmp-old-child", old, annotations=tag)
    _create(hook, pid, "tmp-protected", main, annotations=tag, protected=True)
    _create(hook, pid, "tmp-untagged", main)
    jambo_project.emu.clear_requests()

    result = JamboDeleteStaleBranchesOperator(
        task_id="janitor", name_prefix="tmp-", older_than=0, annotations=tag, dry_run="true"
    ).execute({})

    assert result["dry_run"] is True
    assert [b["branch_id"] for b in result["would_delete"]] == [child, old]
    assert [(b["name"], b["reason"]) for b in result["kept"]] == [("tmp-protected", "protected branch")]
    assert not [r for r in jambo_project.emu.requests() if r["method"] != "GET"]
    assert {"main", "tmp-old", "tmp-old-child", "tmp-protected", "tmp-untagged"} == {
        b.name for b in jambo_project.branches()
    }


def test_operator_rejects_bad_rendered_values_before_any_api_call() -> None:
    # A dict rendered without render_template_as_native_obj arrives as its repr string.
    with pytest.raises(JamboConfigError, match="render_template_as_native_obj"):
        JamboDeleteStaleBranchesOperator(
            task_id="j", name_prefix="p-", older_than=0, annotations="{'dag_id': 'x'}"
        )
    with pytest.raises(JamboConfigError, match="dry_run must be true or false"):
        JamboDeleteStaleBranchesOperator(task_id="j", name_prefix="p-", older_than=0, dry_run="maybe")
    op = JamboDeleteStaleBranchesOperator(task_id="j", name_prefix="p-", older_than=0, dry_run="{{ x }}")
    op.dry_run_value = "maybe"  # as rendered
    # No Jambo connection exists here: reaching the API would fail differently.
    with pytest.raises(JamboConfigError, match="dry_run must be true or false"):
        op.execute({})


# --- only_ended_runs: orphans by their run's state (issue 22) --------------------------------------

ENDED = StaleBranchRule("preview-", timedelta(0), {}, only_ended_runs=True)


def run_tags(run_id: str) -> dict[str, str]:
    return {"dag_id": "d", "run_id": run_id, "task_id": "create_branch"}


def test_only_branches_of_ended_runs_are_orphans() -> None:
    fresh = [br(f"br-{i}", f"preview-{i}", created=NEW) for i in range(6)]
    tags = {
        "br-0": run_tags("ok"),
        "br-1": run_tags("bad"),
        "br-2": run_tags("running"),
        "br-3": run_tags("queued"),
        "br-4": run_tags("gone"),
        # br-5: no annotations at all (made by hand)
    }
    states = {("d", "ok"): "success", ("d", "bad"): "failed", ("d", "running"): "running"}
    states |= {("d", "queued"): "queued", ("d", "gone"): None}
    plan = plan_cleanup([MAIN, *fresh], ENDED, now=NOW, annotations=tags, run_states=states)
    assert names(plan.delete) == ["preview-0", "preview-1"]  # new, but their runs are over
    assert [(b.name, why) for b, why in plan.kept] == [
        ("preview-2", "its run d/running is running"),
        ("preview-3", "its run d/queued is queued"),
        ("preview-4", "the state of run d/gone could not be read"),
        ("preview-5", "no dag_id/run_id annotations: whether its run ended is unknown"),
    ]


def test_ended_runs_still_need_the_age_and_the_other_annotations() -> None:
    rule = StaleBranchRule("preview-", timedelta(days=1), {"purpose": "ci"}, only_ended_runs=True)
    branches = [br("br-1", "preview-new", created=NEW), br("br-2", "preview-other"), br("br-3", "preview-ok")]
    tags = {
        "br-1": {**run_tags("r"), "purpose": "ci"},
        "br-2": {**run_tags("r"), "purpose": "demo"},
        "br-3": {**run_tags("r"), "purpose": "ci"},
    }
    plan = plan_cleanup([MAIN, *branches], rule, now=NOW, annotations=tags, run_states={("d", "r"): "failed"})
    assert names(plan.delete) == ["preview-ok"]


class RunStateTI:
    """A worker's task instance on Airflow 3: reads other runs' states through the Task SDK."""

    def __init__(self, states: dict[tuple[str, str], str]) -> None:
        self.states = states
        self.asked: list[tuple[str, str]] = []

    def get_dagrun_state(self, dag_id: str, run_id: str) -> str:
        self.asked.append((dag_id, run_id))
        return self.states[(dag_id, run_id)]


def test_operator_deletes_branches_of_ended_runs_only_dry_run_first(jambo_project: Any) -> None:
    """Airflow 3's reader (the Task SDK); Airflow 2's ORM reader is not exercised here."""
    pytest.importorskip("airflow.sdk.exceptions", reason="Airflow 3: runs are read through the Task SDK")
    hook = JamboHook()
    pid, main = jambo_project.project_id, jambo_project.default_branch_id
    over = _create(hook, pid, "ci-over", main, annotations=run_tags("over"))
    live = _create(hook, pid, "ci-live", main, annotations=run_tags("live"))
    ti = RunStateTI({("d", "over"): "failed", ("d", "live"): "running"})

    def janitor(dry_run: bool) -> dict[str, Any]:
        return JamboDeleteStaleBranchesOperator(
            task_id="janitor", name_prefix="ci-", older_than=0, only_ended_runs=True, dry_run=dry_run
        ).execute({"ti": ti})  # type: ignore[arg-type]

    planned = janitor(True)
    assert [b["branch_id"] for b in planned["would_delete"]] == [over]
    assert {b.name for b in jambo_project.branches()} == {"main", "ci-over", "ci-live"}
    assert sorted(ti.asked) == [("d", "live"), ("d", "over")]  # one read per run
    done = janitor(False)
    assert [b["branch_id"] for b in done["deleted"]] == [over]
    assert [(b["branch_id"], b["reason"]) for b in done["kept"]] == [(live, "its run d/live is running")]
    assert {b.name for b in jambo_project.branches()} == {"main", "ci-live"}


def test_only_ended_runs_is_checked_at_parse() -> None:
    with pytest.raises(JamboConfigError, match="only_ended_runs"):
        JamboDeleteStaleBranchesOperator(task_id="j", name_prefix="p-", older_than=0, only_ended_runs="maybe")


def test_a_task_instance_that_cannot_read_runs_deletes_nothing() -> None:
    """Airflow 3 without the Task SDK's get_dagrun_state (no ORM in a worker either): every run's
    state is unknown, so every branch is kept."""
    from airflow import __version__ as airflow_version

    from airflow_provider_jambo.operators.janitor import run_state_reader

    if int(airflow_version.split(".")[0]) < 3:
        pytest.skip("Airflow 2 reads runs through the ORM")
    read = run_state_reader({"ti": object()})  # type: ignore[typeddict-item]
    assert read("d", "r") is None
