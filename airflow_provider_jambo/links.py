"""JamboConsoleLink: the "Jambo Console" button of a task, pointing at its branch's console page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from airflow.providers.common.compat.sdk import BaseOperatorLink, XCom

from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.get_provider_info import DEFAULT_BASE_URL

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import BaseOperator, TaskInstanceKey

#: The task return value's XCom key (``airflow.models.xcom`` would pull in the ORM).
RETURN_KEY = "return_value"
CONSOLE_BRANCH_URL = "https://console.neon.tech/app/projects/{project_id}/branches/{branch_id}"
#: The console only knows branches of the real service.
REAL_API_HOST = urlsplit(DEFAULT_BASE_URL).hostname
_NOT_RUN_HERE = object()


def console_url(project_id: str, branch_id: str) -> str:
    return CONSOLE_BRANCH_URL.format(
        project_id=quote(project_id, safe=""), branch_id=quote(branch_id, safe="")
    )


def console_link(project_id: Any, branch_id: Any, base_url: str | None) -> str:
    """The console page of a branch, or "" when there is none to show: no ids, or an API that is
    not the real service (the local emulator, whose branches the console does not know)."""
    if not project_id or not branch_id or not base_url or urlsplit(base_url).hostname != REAL_API_HOST:
        return ""
    return console_url(str(project_id), str(branch_id))


class JamboConsoleLink(BaseOperatorLink):
    """Link to the branch page of the console.

    Every Jambo operator returns a dict with ``project_id`` and ``branch_id`` (compute operators
    return the compute's branch), so the link works for branches and computes alike. Empty when
    the task has none (yet), or when its connection targets another API than the real service.

    Airflow 3 builds links at the end of the task, on the operator that ran: it remembers what it
    returned (``console_target``), so a task that failed before returning anything costs no XCom
    lookup (which Airflow logs as an error when the XCom is missing). Airflow 2 asks from the
    webserver with a deserialized operator: then the task's return value is read from XCom.
    """

    name = "Jambo Console"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        target: Any = getattr(operator, "console_target", _NOT_RUN_HERE)
        if target is not _NOT_RUN_HERE:
            return console_link(*target) if target else ""
        value: Any = XCom.get_value(ti_key=ti_key, key=RETURN_KEY)
        if not isinstance(value, dict) or not value.get("project_id") or not value.get("branch_id"):
            return ""
        return console_link(value["project_id"], value["branch_id"], _connection_base_url(operator))


def _connection_base_url(operator: Any) -> str | None:
    from airflow_provider_jambo.hooks.jambo import JamboHook

    conn_id = getattr(operator, "jambo_conn_id", None) or JamboHook.default_conn_name
    try:
        return JamboHook(jambo_conn_id=str(conn_id)).settings.base_url
    except JamboConfigError:
        return None
