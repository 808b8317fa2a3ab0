"""JamboConsoleLink: the "Jambo Console" button of a task, pointing at its branch's console page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.providers.common.compat.sdk import BaseOperatorLink, XCom

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import BaseOperator, TaskInstanceKey

#: The task return value's XCom key (``airflow.models.xcom`` would pull in the ORM).
RETURN_KEY = "return_value"
CONSOLE_BRANCH_URL = "https://console.neon.tech/app/projects/{project_id}/branches/{branch_id}"


def console_url(project_id: str, branch_id: str) -> str:
    return CONSOLE_BRANCH_URL.format(
        project_id=quote(project_id, safe=""), branch_id=quote(branch_id, safe="")
    )


class JamboConsoleLink(BaseOperatorLink):
    """Link to the branch page of the console, read from the task's return value.

    Every Jambo operator returns a dict with ``project_id`` and ``branch_id`` (compute operators
    return the compute's branch), so the link works for branches and computes alike. Empty when
    the task has not pushed one yet.
    """

    name = "Jambo Console"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        value: Any = XCom.get_value(ti_key=ti_key, key=RETURN_KEY)
        if not isinstance(value, dict):
            return ""
        project_id, branch_id = value.get("project_id"), value.get("branch_id")
        if not project_id or not branch_id:
            return ""
        return console_url(str(project_id), str(branch_id))
