"""dbt preview: build and test the shop's dbt project on a throw-away copy of production.

    create_branch (setup) -> inject_bad_row -> dbt (Cosmos: seed, models, tests) -> schema_diff
                                                                 delete_branch (teardown)

* ``create_branch`` copies ``main`` (data and schema) into ``dbt-preview-<run id>``; its XCom holds
  ids and names only.
* ``dbt`` is a Cosmos ``DbtTaskGroup`` over ``dbt/shop`` (``ExecutionMode.LOCAL``, one ``dbt build``
  per seed and model, which runs the node's tests with it). Its profile is
  :class:`~airflow_provider_jambo.cosmos.JamboBranchProfileMapping`: the branch's connection is asked
  of the API when each task runs, and its password reaches dbt only through the environment.
* ``schema_diff`` logs and returns the branch's schema against ``main``: what dbt built.
* ``delete_branch`` is a teardown: it runs whatever happened before, so no branch leaks.

dbt runs from its own virtualenv (``scripts/bootstrap`` makes ``.venv-dbt``); ``JAMBO_DBT_EXECUTABLE``
names it (default: ``dbt`` on the PATH). The task group is rendered from ``dbt/shop/dbt_ls.json``
(``scripts/dbt_ls_file.py`` writes it), so parsing this file runs no dbt and looks nothing up.

Trigger with ``{"inject_bad_data": true}`` to see a dbt test fail and the branch still be deleted:
``airflow dags test example_jambo_dbt_preview --conf '{"inject_bad_data": true}'``.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import DAG, Param, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior, TestIndirectSelection

from airflow_provider_jambo.cosmos import JamboBranchProfileMapping
from airflow_provider_jambo.decorators import jambo_branch_group
from airflow_provider_jambo.operators.branch_sql_operator import JamboBranchSQLOperator
from airflow_provider_jambo.operators.run_names import run_branch_name

log = logging.getLogger(__name__)

DBT_PROJECT = Path(__file__).parent / "dbt" / "shop"
DBT_EXECUTABLE = os.environ.get("JAMBO_DBT_EXECUTABLE", "dbt")

#: A refund booked as a negative order: the project's ``assert_order_amounts_are_positive`` fails.
INJECT_BAD_ROW = """
{% if params.inject_bad_data %}
INSERT INTO orders (id, customer_id, amount, ordered_at) VALUES (1001, 1, -35.50, now());
{% else %}
SELECT 1;
{% endif %}
"""


@task
def schema_diff(branch: dict[str, Any]) -> str:
    """The branch's schema against its parent's (main), as a unified diff (logged and returned)."""
    from airflow_provider_jambo.hooks.jambo import JamboHook

    diff = JamboHook().branches.compare_schema(
        branch["branch_id"], database=branch["database"], project_id=branch["project_id"]
    )
    log.info("Schema diff of %s against its parent:\n%s", branch["branch_name"], diff or "(no changes)")
    return diff


with (
    DAG(
        dag_id="example_jambo_dbt_preview",
        description="Branch main, build and test the dbt project on it with Cosmos, diff the schema, delete.",
        schedule=None,
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        user_defined_macros={"run_branch_name": run_branch_name},
        params={
            "parent": Param("main", type="string", description="Branch to copy (id or exact name)."),
            "inject_bad_data": Param(
                False,
                type="boolean",
                description="Insert a negative order on the branch so a dbt test fails.",
            ),
        },
        tags=["jambo", "example", "dbt"],
    ) as dag,
    jambo_branch_group(
        "preview",
        branch_name="{{ run_branch_name(run_id, 'dbt-preview-') }}",
        parent="{{ params.parent }}",
        ttl=timedelta(hours=6),
        suspend_timeout_seconds=300,
        prefix_group_id=False,
    ) as preview,
):
    inject_bad_row = JamboBranchSQLOperator(
        task_id="inject_bad_row", branch=preview.branch, sql=INJECT_BAD_ROW, do_xcom_push=False
    )

    dbt = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(DBT_PROJECT),
        profile_config=ProfileConfig(
            profile_name="shop",
            target_name="preview",
            # The create task's id: the branch it made is read from its XCom when each dbt task runs.
            profile_mapping=JamboBranchProfileMapping(
                branch_task_id=preview.create.task_id, profile_args={"schema": "analytics"}
            ),
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=DBT_EXECUTABLE,
            # A node's build runs only the tests of that node alone (see should_detach_... below).
            test_indirect_selection=TestIndirectSelection.CAUTIOUS,
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_LS_FILE,
            dbt_ls_path=DBT_PROJECT / "dbt_ls.json",
            # One `dbt build` per node: the model and its tests together, so a failing test stops
            # everything downstream of the model.
            test_behavior=TestBehavior.BUILD,
            # A test of two models (a relationship) runs once both are built, as its own task.
            should_detach_multiple_parents_tests=True,
        ),
        # dbt's own retries would only repeat a failing test.
        default_args={"retries": 0},
    )

    inject_bad_row >> dbt >> schema_diff(preview.branch)
