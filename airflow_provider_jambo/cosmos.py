"""dbt on a branch made earlier in the run, with Astronomer Cosmos: :class:`JamboBranchProfileMapping`.

Cosmos finds dbt credentials through *profile mappings*, each reading an Airflow connection by id.
A branch created by the run has no connection id, so this mapping takes the Jambo API connection
and the branch (the create task's id, or its name) and builds the dbt ``postgres`` profile when a
Cosmos task runs::

    profile_config = ProfileConfig(
        profile_name="shop",
        target_name="preview",
        profile_mapping=JamboBranchProfileMapping(branch_task_id="create_branch"),
    )

* At parse time Cosmos renders its mock profile (``mock_value`` everywhere): nothing is looked up and
  no request is sent.
* At run time the mapping reads the create task's XCom (ids and names, never a password) or resolves
  the branch by name, and asks the API for the connection URI, as the SQL operator does
  (:func:`airflow_provider_jambo.hooks.branch_postgres.get_branch_connection`: one place for it).
* The password reaches dbt only through an environment variable of the dbt process
  (``DBT_ENV_SECRET_JAMBO_PASSWORD``: dbt scrubs ``DBT_ENV_SECRET_`` values from its logs and never
  writes them to ``target/``); ``profiles.yml`` holds ``{{ env_var(...) }}``, not the value.
* libpq parameters of the URI that a dbt ``postgres`` profile cannot carry (``hostaddr``,
  ``options``, ``channel_binding``) go into the dbt process's environment as libpq's own variables
  (``PGHOSTADDR``, ...). The profile keeps the endpoint's host name, so TLS's SNI still names the
  endpoint while ``PGHOSTADDR`` spares the DNS lookup (offline connections, the emulator).

Needs the ``cosmos`` extra (``pip install 'airflow-provider-jambo[cosmos]'``) and the ``postgres``
one; dbt itself (``dbt-postgres``) may live in another virtualenv (Cosmos's
``ExecutionConfig(dbt_executable_path=...)``). Without Cosmos this module still imports; using the
class raises an error saying what to install.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowOptionalProviderFeatureException,
    get_current_context,
)

from airflow_provider_jambo.exceptions import JamboConfigError, JamboLookupError, JamboRefusedError
from airflow_provider_jambo.rules import DEFAULT_CONN_ID, check_id, check_name

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Connection

    from airflow_provider_jambo.branch_target import BranchTarget

__all__ = ["LIBPQ_ENV", "JamboBranchProfileMapping"]

log = logging.getLogger(__name__)

#: Connection-URI parameters a dbt ``postgres`` profile has no field for, and the libpq environment
#: variable that carries each to the dbt process instead (``sslmode`` has a profile field).
LIBPQ_ENV: Mapping[str, str] = {
    "hostaddr": "PGHOSTADDR",
    "options": "PGOPTIONS",
    "channel_binding": "PGCHANNELBINDING",
}
#: Connection extras that are not libpq parameters (the postgres provider's own keys).
_NOT_LIBPQ = frozenset({"sslmode", "sqlalchemy_query"})

_INSTALL = "dbt with Cosmos needs the cosmos extra: pip install 'airflow-provider-jambo[cosmos]'"

try:
    from cosmos.profiles.postgres.user_pass import PostgresUserPasswordProfileMapping
except ImportError as _missing:  # only without the extra: the class below is then not defined
    _COSMOS_MISSING: ImportError | None = _missing
else:
    _COSMOS_MISSING = None

    class JamboBranchProfileMapping(PostgresUserPasswordProfileMapping):
        """A Cosmos profile mapping (dbt type ``postgres``) for a branch made earlier in the run.

        :param conn_id: the Jambo API connection (default ``jambo_default``), not a Postgres one.
        :param branch_task_id: the create-branch task's id (with its group prefix, e.g.
            ``preview.create_branch``); its XCom result says which branch, database and role.
        :param branch_name: instead of ``branch_task_id``: the branch's exact name or id, a Jinja
            template rendered with the running task's context (e.g. ``"preview-{{ run_id }}"``).
        :param database: the database on the branch (default: the create result's, or for a name the
            branch's first database).
        :param role: the role to connect as (default: the create result's, or the database's owner).
        :param pooled: connect through the pooler host.
        :param project_id: the project (default: the create result's, else the connection's).
        :param allow_default_or_protected: with ``branch_name``, allow the default or a protected
            branch (dbt writes to it); refused unless set.
        :param profile_args: extra dbt profile fields (``schema``, default ``public``; ``threads``,
            ...), as for any Cosmos mapping.
        :param dbt_config_vars: Cosmos's ``DbtProfileConfigVars`` for the profile's ``config`` block.

        The parameters are checked when the DAG is parsed; nothing is looked up then.
        """

        airflow_connection_type: str = "postgres"
        dbt_profile_type: str = "postgres"

        def __init__(
            self,
            conn_id: str = DEFAULT_CONN_ID,
            *,
            branch_task_id: str | None = None,
            branch_name: str | None = None,
            database: str | None = None,
            role: str | None = None,
            pooled: bool = False,
            project_id: str | None = None,
            allow_default_or_protected: bool = False,
            profile_args: dict[str, Any] | None = None,
            dbt_config_vars: Any = None,
        ) -> None:
            if (branch_task_id is None) == (branch_name is None):
                raise JamboConfigError(
                    "JamboBranchProfileMapping: pass exactly one of branch_task_id= (the create-branch "
                    "task's id) or branch_name= (the branch's exact name or id, templated); got "
                    f"branch_task_id={branch_task_id!r}, branch_name={branch_name!r}"
                )
            for param, value in (("branch_task_id", branch_task_id), ("branch_name", branch_name)):
                if value is not None and (not isinstance(value, str) or not value.strip()):
                    raise JamboConfigError(
                        f"JamboBranchProfileMapping: {param} must be a non-empty string, got {value!r}"
                    )
            for param, value in (("database", database), ("role", role)):
                if value is not None:
                    check_name(param, value)
            if project_id is not None:
                check_id("project_id", project_id)
            if not isinstance(pooled, bool):
                raise JamboConfigError(
                    f"JamboBranchProfileMapping: pooled must be True or False, got {pooled!r}"
                )
            if profile_args and "password" in profile_args:
                raise JamboConfigError(
                    "JamboBranchProfileMapping: profile_args must not carry a password; the branch's "
                    "password is looked up at run time and reaches dbt only through the environment"
                )
            # dbt's postgres profile requires a schema; a branch's default one is public.
            profile_args = {"schema": "public", **(profile_args or {})}
            super().__init__(conn_id=conn_id, profile_args=profile_args, dbt_config_vars=dbt_config_vars)
            self.branch_task_id = branch_task_id
            self.branch_name = branch_name
            self.database = database
            self.role = role
            self.pooled = pooled
            self.project_id = project_id
            self.allow_default_or_protected = allow_default_or_protected
            # One lookup per task instance: Cosmos reads the profile, its hash and the environment
            # separately. One mapping object serves every task of the group, so the connection is
            # kept with the task instance it was built for (and only the latest one is kept).
            self._resolved: tuple[tuple[Any, ...], Connection] | None = None

        @classmethod
        def get_env_var_name(cls, field_name: str) -> str:
            # dbt keeps DBT_ENV_SECRET_* values out of its logs, errors and artifacts.
            return f"DBT_ENV_SECRET_JAMBO_{field_name.upper()}"

        @property
        def conn(self) -> Connection:
            """The branch's connection, built for the running task (never at parse time)."""
            try:
                context = get_current_context()
            # Airflow 3 says RuntimeError, Airflow 2 AirflowException: no task is running.
            except (RuntimeError, AirflowException) as err:
                raise JamboConfigError(
                    "JamboBranchProfileMapping resolves its branch only inside a running task (Cosmos "
                    "uses the mock profile when a DAG is parsed)"
                ) from err
            ti = context["ti"]
            key = (ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1), ti.try_number)
            if self._resolved is None or self._resolved[0] != key:
                self._resolved = (key, self._lookup(context))
            return self._resolved[1]

        def _lookup(self, context: Any) -> Connection:
            from airflow_provider_jambo.hooks.branch_postgres import get_branch_connection
            from airflow_provider_jambo.hooks.jambo import JamboHook

            hook = JamboHook(jambo_conn_id=self.conn_id)
            try:
                target = self._target(context, hook)
                log.info(
                    "dbt profile: branch %s, database %s, role %s%s",
                    target.branch_id,
                    target.database,
                    target.role,
                    " (pooled)" if target.pooled else "",
                )
                return get_branch_connection(target, hook=hook)
            finally:
                hook.close()

        def _target(self, context: Any, hook: Any) -> BranchTarget:
            from airflow_provider_jambo.branch_target import BranchTarget
            from airflow_provider_jambo.operators.branch_operators import pick_database

            overrides: dict[str, Any] = {
                "database": self.database,
                "role": self.role,
                "pooled": self.pooled,
                "project_id": self.project_id,
            }
            if self.branch_task_id is not None:
                result = context["ti"].xcom_pull(task_ids=self.branch_task_id)
                if not result:
                    raise JamboLookupError(
                        f"JamboBranchProfileMapping: task {self.branch_task_id!r} left no XCom result in "
                        "this run; branch_task_id must name the create-branch task upstream of the dbt "
                        "tasks (with its group prefix)"
                    )
                return BranchTarget.from_value(result, **overrides)
            name = str(context["task"].render_template(self.branch_name, context))
            branch = hook.branches.resolve(name, project_id=self.project_id)
            if (branch.default or branch.protected) and not self.allow_default_or_protected:
                kind = "the default" if branch.default else "a protected"
                raise JamboRefusedError(
                    f"JamboBranchProfileMapping: branch {name!r} ({branch.id}) is {kind} branch and dbt "
                    "writes to it; pass allow_default_or_protected=True to build there"
                )
            database = self.database
            role = self.role
            if database is None or role is None:
                picked = pick_database(hook.databases.list(branch.id, project_id=self.project_id), database)
                if picked is None:
                    raise JamboLookupError(
                        f"JamboBranchProfileMapping: branch {name!r} ({branch.id}) has no database"
                    )
                database, role = picked.name, role or picked.owner_name
            return BranchTarget.from_value(
                {"branch_id": branch.id, "database": database, "role": role},
                pooled=self.pooled,
                project_id=self.project_id,
            )

        @property
        def env_vars(self) -> dict[str, str]:
            """Cosmos's (the password) plus the URI's libpq parameters that dbt has no field for."""
            env = dict(super().env_vars)
            for field in self.secret_fields:
                name = self.get_env_var_name(field)
                env[name] = _Secret(env[name])
            extras = self.conn.extra_dejson
            for param, value in extras.items():
                if param in LIBPQ_ENV:
                    env[LIBPQ_ENV[param]] = str(value)
                elif param not in _NOT_LIBPQ:
                    # Named, never valued: an unknown parameter could hold anything.
                    log.warning("dbt profile: connection parameter %r has no dbt field; not passed", param)
            return env


class _Secret(str):
    """A secret in dbt's environment: its value for the process that reads it, ``'***'`` for
    anything that prints its repr. Airflow 3.0 renders a failed task's traceback with every frame's
    local variables, Cosmos holds the environment in one, and the secrets masker does not reach
    them (a dbt test failing on 3.0 printed the password there)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


def __getattr__(name: str) -> Any:
    # Without Cosmos the module imports (provider discovery, docs); only using the class fails.
    if name == "JamboBranchProfileMapping" and _COSMOS_MISSING is not None:
        raise AirflowOptionalProviderFeatureException(_INSTALL) from _COSMOS_MISSING
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
