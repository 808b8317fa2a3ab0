"""Task decorators (``@task.jambo_branch``) and the ephemeral-branch task group."""

from __future__ import annotations

from airflow_provider_jambo.decorators.branch_group import JamboBranchGroup, jambo_branch_group
from airflow_provider_jambo.decorators.jambo_branch import jambo_branch_task

__all__ = ["JamboBranchGroup", "jambo_branch_group", "jambo_branch_task"]
