"""Janitor: delete stale branches, children first; never the default or a protected branch.

A branch is stale when its name starts with ``name_prefix``, it carries every annotation in
``annotations`` (the create-branch operator tags branches with the ``dag_id`` that made them), and
it is older than ``max_age_hours``. Preview branches normally go in their DAG's teardown and expire
by TTL; this catches whatever leaked anyway (a killed worker, a branch created by hand).

``dry_run`` (a DAG param, default **on**) lists what would be deleted and touches nothing; a real
cleanup needs ``{"dry_run": false}`` in the run's conf:
``airflow dags test example_jambo_janitor --conf '{"dry_run": false}'``. The DAG is also paused when
it is first deployed, so unpausing it (daily schedule) starts dry runs, never a surprise deletion.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.providers.common.compat.sdk import DAG, Param

from airflow_provider_jambo.operators.janitor import JamboDeleteStaleBranchesOperator

with DAG(
    dag_id="example_jambo_janitor",
    description="Delete stale preview branches (by name prefix, annotation and age), children first.",
    schedule="@daily",
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    is_paused_upon_creation=True,
    # Params keep their types (bool, int, dict) when rendered into the operator's fields.
    render_template_as_native_obj=True,
    params={
        "name_prefix": Param("preview-", type="string", minLength=1),
        "annotations": Param(
            {"dag_id": "example_jambo_preview_environment"},
            type="object",
            description="Annotation values a branch must all carry to be deleted ({} for none).",
        ),
        "max_age_hours": Param(24, type="number", minimum=0),
        "dry_run": Param(True, type="boolean", description="List what would be deleted; delete nothing."),
    },
    tags=["jambo", "example"],
) as dag:
    JamboDeleteStaleBranchesOperator(
        task_id="delete_stale_branches",
        name_prefix="{{ params.name_prefix }}",
        annotations="{{ params.annotations }}",  # a dict once rendered (native rendering)
        older_than="{{ params.max_age_hours * 3600 }}",
        dry_run="{{ params.dry_run }}",
    )
