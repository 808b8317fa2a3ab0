"""SQL on a branch: connect to a branch created earlier in the same DAG, at run time.

A create-branch task returns only non-secret coordinates in XCom (project id, branch id, database,
role, endpoint id). A downstream task turns them into a working database connection *when it
runs*: it asks the API for the connection URI (``GET .../connection_uri``), registers the password
with the secrets masker, and builds an Airflow ``Connection`` in memory. The password is never
stored in XCom, in a rendered template field, or in the metadata database.

Three ways in, from most to least Airflow-native:

* ``JamboBranchSQLOperator`` (``airflow_provider_jambo.operators.branch_sql_operator``):
  ``SQLExecuteQueryOperator`` with ``branch=create_branch.output`` instead of a ``conn_id``.
* ``JamboPostgresHook(branch=...)``: a ``PostgresHook`` for ``@task`` code (``get_records``,
  ``run``, ``get_conn`` for a raw psycopg connection, ``insert_rows``, ...).
* ``get_branch_connection(branch)``: the Airflow ``Connection`` itself, for any other client.

Needs the ``postgres`` extra (``pip install 'airflow-provider-jambo[postgres]'``); the rest of the
provider does not import this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from airflow.providers.common.compat.sdk import (
    AirflowOptionalProviderFeatureException,
    Connection,
    mask_secret,
)

from airflow_provider_jambo.branch_target import BranchTarget
from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.rules import DEFAULT_CONN_ID

if TYPE_CHECKING:
    # The API hook (and its HTTP client) is imported when a connection is built, not when a DAG
    # using the SQL operator is parsed.
    from airflow_provider_jambo.hooks.jambo import JamboHook

try:
    from airflow.providers.postgres.hooks.postgres import PostgresHook
except ImportError as err:  # pragma: no cover - only without the extra
    raise AirflowOptionalProviderFeatureException(
        "SQL on a Jambo branch needs the postgres provider: pip install 'airflow-provider-jambo[postgres]'"
    ) from err

__all__ = ["BranchTarget", "JamboPostgresHook", "get_branch_connection"]


def connection_from_uri(uri: str, *, conn_id: str) -> Connection:
    """An Airflow ``postgres`` Connection equivalent to a libpq URI (query parameters become extras).

    The password is registered with the secrets masker before anything else happens with it.
    """
    parts = urlsplit(uri)
    if parts.scheme not in ("postgres", "postgresql"):
        # Never echo the URI: it holds a password.
        raise JamboConfigError(f"connection URI: scheme must be postgres or postgresql, got {parts.scheme!r}")
    password = unquote(parts.password) if parts.password is not None else None
    if password:
        mask_secret(password)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    extra: dict[str, Any] = dict(params)
    if params:
        # libpq parameters (sslmode, hostaddr, options, ...) reach psycopg as connect arguments;
        # the SQLAlchemy URL (get_uri, get_sqlalchemy_engine, pandas) takes them from here.
        extra["sqlalchemy_query"] = params
    return Connection(
        conn_id=conn_id,
        conn_type="postgres",
        host=parts.hostname,
        port=parts.port,
        login=unquote(parts.username) if parts.username is not None else None,
        password=password,
        schema=unquote(parts.path.lstrip("/")) or None,
        extra=json.dumps(extra) if extra else None,
    )


def get_branch_connection(
    branch: BranchTarget | Mapping[str, Any] | str,
    *,
    jambo_conn_id: str = DEFAULT_CONN_ID,
    hook: JamboHook | None = None,
    **overrides: Any,
) -> Connection:
    """Build, at run time, an Airflow Connection to a branch's database (password masked).

    ``overrides`` are ``database``, ``role``, ``endpoint_id``, ``project_id``, ``pooled``.
    """
    from airflow_provider_jambo.hooks.jambo import JamboHook

    target = BranchTarget.from_value(branch, **overrides)
    api = hook or JamboHook(jambo_conn_id=jambo_conn_id)
    try:
        uri = api.branches.connection_uri(
            branch_id=target.branch_id,
            database=target.database,
            role=target.role,
            endpoint_id=target.endpoint_id,
            pooled=target.pooled,
            project_id=target.project_id,
        )
    finally:
        if hook is None:  # ours: release its HTTP client
            api.close()
    return connection_from_uri(uri, conn_id=f"jambo_branch_{target.branch_id}")


class JamboPostgresHook(PostgresHook):
    """A ``PostgresHook`` whose connection is a Jambo branch, resolved when first used.

    :param branch: the create-branch task's XCom value (``project_id``, ``branch_id``, ``database``,
        ``role``, ``endpoint_id``) or a :class:`BranchTarget`.
    :param jambo_conn_id: the Jambo API connection used to look up the connection URI.
    :param database: another database on the branch than the one in ``branch``.
    :param role: another role than the one in ``branch``.
    :param endpoint_id: another compute of the branch than the one in ``branch``.
    :param pooled: connect through the pooler host.

    Nothing is fetched at construction; the first ``get_conn``/``run``/``get_records`` asks the API.
    """

    hook_name = "Jambo branch (Postgres)"

    def __init__(
        self,
        *args: Any,
        branch: BranchTarget | Mapping[str, Any] | str,
        jambo_conn_id: str = DEFAULT_CONN_ID,
        database: str | None = None,
        role: str | None = None,
        endpoint_id: str | None = None,
        pooled: bool | None = None,
        **kwargs: Any,
    ) -> None:
        self.target = BranchTarget.from_value(
            branch, database=database, role=role, endpoint_id=endpoint_id, pooled=pooled
        )
        self.jambo_conn_id = jambo_conn_id
        # The conn id only names the in-memory connection in logs; nothing is looked up under it.
        kwargs.setdefault("postgres_conn_id", f"jambo_branch_{self.target.branch_id}")
        super().__init__(*args, **kwargs)
        self._connection: Connection | None = None

    # DbApiHook annotates the core Connection class; at run time it is the task SDK's (as here).
    @property  # type: ignore[override]
    def connection(self) -> Connection:
        if self._connection is None:
            self._connection = get_branch_connection(self.target, jambo_conn_id=self.jambo_conn_id)
        return self._connection

    @connection.setter
    def connection(self, value: Connection) -> None:
        self._connection = value

    @property
    def connection_resolved(self) -> bool:
        """Whether the connection was already built (asked of the API) by this hook."""
        return self._connection is not None

    def get_connection(self, conn_id: str | None) -> Connection:
        """This hook's own connection for its own conn id; any other id the usual way.

        The conn id names a connection that exists only in this object, so no secrets backend knows
        it. Code that asks for it by id gets it from here: above all the OpenLineage listener, which
        extracts lineage in a forked process where a connection lookup cannot reach the task's
        supervisor and blocks until the listener's timeout kills it.
        """
        if conn_id == self.postgres_conn_id:
            return self.connection
        return super().get_connection(conn_id)

    def __repr__(self) -> str:
        # Coordinates only: the connection (with its password) stays out of any repr.
        return (
            f"{type(self).__name__}(branch_id={self.target.branch_id!r}, database={self.target.database!r})"
        )
