"""What the operators return (their XCom values): TypedDicts of ids and names, never a password or
a connection URI."""

from __future__ import annotations

from typing import TypedDict


class BranchResult(TypedDict):
    """XCom of JamboCreateBranchOperator (never a password or a connection URI)."""

    project_id: str
    branch_id: str
    branch_name: str
    parent_id: str | None
    created: bool
    endpoint_id: str | None
    host: str | None
    pooler_host: str | None
    database: str | None
    role: str | None
    expires_at: str | None


class AnonymizedBranchResult(BranchResult):
    """XCom of JamboCreateAnonymizedBranchOperator: the create's, plus how many columns are masked."""

    masked_columns: int


class DeletedBranchResult(TypedDict):
    """XCom of JamboDeleteBranchOperator; ``branch_id`` None when there was nothing to delete."""

    project_id: str
    branch_id: str | None
    branch_name: str | None
    deleted: bool


class ResetBranchResult(TypedDict):
    """XCom of JamboResetBranchOperator."""

    project_id: str
    branch_id: str
    branch_name: str
    source_id: str
    expires_at: str | None


class ComputeResult(TypedDict, total=False):
    """XCom of the compute operators (``created`` only from JamboCreateComputeOperator)."""

    project_id: str
    branch_id: str | None
    endpoint_id: str
    type: str
    host: str | None
    pooler_host: str | None
    created: bool


class DeletedComputeResult(TypedDict):
    """XCom of JamboDeleteComputeOperator; ``branch_id`` None when the compute was already gone."""

    project_id: str
    branch_id: str | None
    endpoint_id: str
    deleted: bool


class SnapshotResult(TypedDict):
    """XCom of JamboCreateSnapshotOperator; ``created`` False when an earlier run's was adopted."""

    project_id: str
    snapshot_id: str
    snapshot_name: str
    branch_id: str
    created: bool
    timestamp: str | None
    lsn: str | None
    expires_at: str | None


class RestoredBranchResult(BranchResult):
    """XCom of JamboRestoreSnapshotOperator: the create operator's coordinates, plus the snapshot."""

    snapshot_id: str
    restored_as: str | None


class FinalizedRestoreResult(TypedDict):
    """XCom of JamboFinalizeRestoreOperator."""

    project_id: str
    branch_id: str
    branch_name: str
    replaced_branch_id: str | None
    finalized: bool


class DeletedSnapshotResult(TypedDict):
    """XCom of JamboDeleteSnapshotOperator; ``snapshot_id`` None when there was nothing to delete."""

    project_id: str
    snapshot_id: str | None
    snapshot_name: str | None
    deleted: bool


class BackupScheduleResult(TypedDict):
    """XCom of JamboSetBackupScheduleOperator: the schedule as set."""

    project_id: str
    branch_id: str
    schedule: list[dict[str, int | str]]
