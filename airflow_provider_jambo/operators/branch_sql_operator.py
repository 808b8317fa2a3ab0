"""``JamboBranchSQLOperator``: ``SQLExecuteQueryOperator`` on a branch created earlier in the DAG.

Needs the ``postgres`` extra. See :mod:`airflow_provider_jambo.hooks.branch_postgres` for how the
connection is built at run time without a password in XCom or rendered fields.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

from airflow_provider_jambo.branch_target import BranchTarget
from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.rules import DEFAULT_CONN_ID, is_known

if importlib.util.find_spec("airflow.providers.postgres") is None:
    # Fail the DAG file now, with hooks/branch_postgres.py's message saying what to install.
    import airflow_provider_jambo.hooks.branch_postgres  # noqa: F401

if TYPE_CHECKING:
    # The OpenLineage provider is optional; its classes are imported when lineage is extracted.
    from airflow.providers.openlineage.extractors import OperatorLineage

    # The postgres provider (and psycopg, ~50 ms) is imported when the task runs, not at parse.
    from airflow_provider_jambo.hooks.branch_postgres import JamboPostgresHook

__all__ = ["JamboBranchSQLOperator"]


class JamboBranchSQLOperator(SQLExecuteQueryOperator):
    """Run SQL (a string, a list, or a templated ``.sql`` file) on a Jambo branch's database.

    Everything ``SQLExecuteQueryOperator`` takes works (``parameters``, ``handler``,
    ``split_statements``, ``return_last``, ``autocommit``, ...), except ``conn_id``: the database is
    named by ``branch``. Its ``database`` (templated) picks another database on the branch than the
    one in ``branch``.

    :param branch: the create-branch task's XCom value, e.g. ``create_branch.output`` (templated).
        Holds ids and names only; the password is fetched from the API when the task runs.
    :param jambo_conn_id: the Jambo API connection (templated).
    :param role: another role than the one in ``branch`` (templated).
    :param pooled: connect through the pooler host.
    """

    template_fields: Sequence[str] = (
        *SQLExecuteQueryOperator.template_fields,
        "branch",
        "jambo_conn_id",
        "role",
    )
    ui_color = "#e9f5ee"

    def __init__(
        self,
        *,
        branch: BranchTarget | Mapping[str, Any] | str,
        jambo_conn_id: str = DEFAULT_CONN_ID,
        role: str | None = None,
        pooled: bool = False,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("conn_id") is not None:
            raise JamboConfigError(
                "JamboBranchSQLOperator: conn_id is not allowed; the database is named by branch= "
                "(the create-branch task's output) and reached through jambo_conn_id"
            )
        super().__init__(**kwargs)
        self.branch = branch
        self.jambo_conn_id = jambo_conn_id
        self.role = role
        self.pooled = pooled
        # Coordinates given literally are checked while the DAG is parsed; an XComArg or a template
        # only when rendered (still before any API call).
        if isinstance(branch, BranchTarget) or (isinstance(branch, Mapping) and is_known(branch)):
            BranchTarget.from_value(branch, role=role)

    @cached_property
    def _branch_hook(self) -> JamboPostgresHook:
        from airflow_provider_jambo.hooks.branch_postgres import JamboPostgresHook

        return JamboPostgresHook(
            branch=self.branch,
            jambo_conn_id=self.jambo_conn_id,
            database=self.database,
            role=self.role,
            pooled=self.pooled,
            **self.hook_params,
        )

    def get_db_hook(self) -> JamboPostgresHook:
        return self._branch_hook

    def get_openlineage_facets_on_start(self) -> OperatorLineage | None:
        """The SQL alone until the task has connected; the datasets once it has.

        The OpenLineage listener calls this in a forked process: before ``execute`` (the START
        event), and after it through ``get_openlineage_facets_on_complete``. Before ``execute`` the
        branch's connection is not built yet, and building it there would look up the Jambo API
        connection and call the API from a process that can reach neither promptly. So the START
        event carries the SQL, and the COMPLETE event (the connection built by ``execute`` is in
        the forked copy of this object) names the inputs and outputs on the branch's endpoint.
        """
        if self._branch_hook.connection_resolved:
            return super().get_openlineage_facets_on_start()
        try:
            from airflow.providers.common.compat.openlineage.facet import SQLJobFacet
            from airflow.providers.openlineage.extractors import OperatorLineage
            from airflow.providers.openlineage.sqlparser import SQLParser
        except ImportError:
            return None
        statements = [self.sql] if isinstance(self.sql, str) else list(self.sql or [])
        query = SQLParser.normalize_sql([s for s in statements if isinstance(s, str) and s.strip()])
        return OperatorLineage(job_facets={"sql": SQLJobFacet(query=query)} if query else {})
