"""SQL on a branch: connect to a branch created earlier in the same DAG, at run time.

A create-branch task returns only non-secret coordinates in XCom (project id, branch id, database,
role, endpoint id). A downstream task turns them into a working database connection *when it
runs*: it asks the API for the connection URI (``GET .../connection_uri``), registers the password
with the secrets masker, and builds an Airflow ``Connection`` in memory. The password is never
stored in XCom, in a rendered template field, or in the metadata database.

Three ways in, from most to least Airflow-native:

* ``JamboBranchSQLOperator`` (``airflow_provider_jambo.operators.sql``): ``SQLExecuteQueryOperator``
  with ``branch=create_branch.output`` instead of a ``conn_id``.
* ``JamboPostgresHook(branch=...)``: a ``PostgresHook`` for ``@task`` code (``get_records``,
  ``run``, ``get_conn`` for a raw psycopg connection, ``insert_rows``, ...).
* ``get_branch_connection(branch)``: the Airflow ``Connection`` itself, for any other client.

Needs the ``postgres`` extra (``pip install 'airflow-provider-jambo[postgres]'``); the rest of the
provider does not import this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from airflow.providers.common.compat.sdk import (
    AirflowOptionalProviderFeatureException,
    Connection,
    mask_secret,
)

from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.rules import DEFAULT_CONN_ID, ID_PATTERN

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

# Keys a branch mapping may carry that would mean someone put a secret where coordinates belong.
_SECRET_KEYS = frozenset({"password", "connection_uri", "connection_uris", "uri"})


@dataclass(frozen=True)
class BranchTarget:
    """Where to connect: the non-secret coordinates of one database on one branch.

    ``project_id`` None means the Jambo connection's default project; ``endpoint_id`` None lets the
    API pick the branch's read-write compute.
    """

    branch_id: str
    database: str
    role: str
    project_id: str | None = None
    endpoint_id: str | None = None
    pooled: bool = False

    def __post_init__(self) -> None:
        for field in ("branch_id", "project_id", "endpoint_id"):
            value = getattr(self, field)
            if value is None and field != "branch_id":
                continue
            if not isinstance(value, str) or not ID_PATTERN.match(value):
                raise JamboConfigError(
                    f"branch coordinates: {field} must be an id matching ^[a-z0-9-]{{1,60}}$, got {value!r}"
                )
        for field in ("database", "role"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value:
                raise JamboConfigError(
                    f"branch coordinates: {field} must be a non-empty name, got {value!r} "
                    f"(the branch has no compute, or pass {field}= explicitly)"
                )

    @classmethod
    def from_value(
        cls,
        branch: BranchTarget | Mapping[str, Any] | str,
        *,
        database: str | None = None,
        role: str | None = None,
        endpoint_id: str | None = None,
        project_id: str | None = None,
        pooled: bool | None = None,
    ) -> BranchTarget:
        """Coordinates from a create-branch task's XCom value (or a JSON string of it).

        Keyword arguments override what the mapping says, e.g. another ``database`` on the branch.
        """
        if isinstance(branch, BranchTarget):
            values: dict[str, Any] = {
                "branch_id": branch.branch_id,
                "database": branch.database,
                "role": branch.role,
                "project_id": branch.project_id,
                "endpoint_id": branch.endpoint_id,
                "pooled": branch.pooled,
            }
        else:
            mapping = _as_mapping(branch)
            secret = sorted(_SECRET_KEYS.intersection(mapping))
            if secret:
                raise JamboConfigError(
                    f"branch coordinates must not carry secrets; found key(s) {secret}. Pass the "
                    "create-branch task's XCom value, which holds ids and names only."
                )
            if "branch_id" not in mapping:
                raise JamboConfigError(
                    "branch coordinates: branch_id is missing; expected the create-branch task's XCom "
                    f"value with keys branch_id, database, role (got keys {sorted(mapping)})"
                )
            values = {
                "branch_id": mapping["branch_id"],
                "database": mapping.get("database"),
                "role": mapping.get("role"),
                "project_id": mapping.get("project_id"),
                "endpoint_id": mapping.get("endpoint_id"),
                "pooled": bool(mapping.get("pooled", False)),
            }
        overrides = {
            "database": database,
            "role": role,
            "endpoint_id": endpoint_id,
            "project_id": project_id,
            "pooled": pooled,
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


def _as_mapping(branch: Mapping[str, Any] | str) -> Mapping[str, Any]:
    if isinstance(branch, Mapping):
        return branch
    if isinstance(branch, str):
        # A Jinja template renders an XCom dict to a string unless the DAG renders native objects.
        try:
            parsed = json.loads(branch)
        except ValueError:
            parsed = None
        if isinstance(parsed, Mapping):
            return parsed
    raise JamboConfigError(
        f"branch must be the create-branch task's XCom value (a mapping), got {type(branch).__name__}; "
        "pass `create_branch.output` (an XComArg), not a Jinja string, or set "
        "render_template_as_native_obj=True on the DAG"
    )


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
        uri = api.get_connection_uri(
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
    :param database, role, endpoint_id, pooled: override the coordinates (e.g. another database).

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

    def __repr__(self) -> str:
        # Coordinates only: the connection (with its password) stays out of any repr.
        return (
            f"{type(self).__name__}(branch_id={self.target.branch_id!r}, database={self.target.database!r})"
        )
