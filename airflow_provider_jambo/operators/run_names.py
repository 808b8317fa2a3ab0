"""Branch names for DAG runs: the ``run_branch_name`` macro and the create operator's default name.

Pure (no hook, no request): DAG files use :func:`run_branch_name` as a template macro.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.rules import NAME_MAX, check_name

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

#: The service's longest branch name (the hook's ``check_name`` limit).
BRANCH_NAME_MAX = NAME_MAX
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def run_branch_name(run_id: str, prefix: str = "", *, max_len: int = BRANCH_NAME_MAX) -> str:
    """A branch name for a DAG run: ``prefix`` + the run id as ``[a-z0-9-]``.

    Built from the run id because it is the one identifier every run has: a manual run of Airflow 3
    has no logical date, so ``ts``/``ds`` and friends are undefined then. The same run (and so a
    retried task) always gets the same name, so the retry adopts its branch. When the slug loses
    information (case, punctuation, truncation) an 8-character hash of the run id is appended, so two
    run ids that only differ in punctuation still get different branches.
    Use it in templates as a macro: ``user_defined_macros={"run_branch_name": run_branch_name}``
    and ``branch_name="{{ run_branch_name(run_id, 'preview-') }}"``.
    """
    if not isinstance(run_id, str) or not run_id.strip():
        raise JamboConfigError(f"run_id must be a non-empty string, got {run_id!r}")
    if not isinstance(prefix, str):
        raise JamboConfigError(f"prefix must be a string, got {prefix!r}")
    slug = _NOT_SLUG.sub("-", run_id.lower()).strip("-")
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    room = max_len - len(prefix)
    if slug == run_id and len(slug) <= room:
        name = prefix + slug
    else:
        if room < len(digest) + 1:
            raise JamboConfigError(
                f"prefix {prefix!r} leaves no room for the run id in a branch name "
                f"of at most {max_len} characters"
            )
        keep = slug[: room - len(digest) - 1].rstrip("-")
        name = f"{prefix}{keep}-{digest}" if keep else prefix + digest
    check_name("branch_name", name)
    return name


def _task_prefix(context: Context) -> str:
    ti = context["ti"]
    prefix = f"{ti.dag_id}-{ti.task_id}-"
    map_index = getattr(ti, "map_index", None)
    if isinstance(map_index, int) and map_index >= 0:
        prefix += f"{map_index}-"
    return _NOT_SLUG.sub("-", prefix.lower()).lstrip("-")


def default_branch_name(context: Context) -> str:
    """The create operator's name when none is given: ``<dag_id>-<task_id>[-<map_index>]-<run id>``."""
    return run_branch_name(str(context["run_id"]), _task_prefix(context))


def default_snapshot_name(context: Context) -> str:
    """The snapshot operator's name when none is given, built as :func:`default_branch_name`: the
    same for every try and re-run of one run (a re-run adopts the snapshot instead of taking another)."""
    return run_branch_name(str(context["run_id"]), _task_prefix(context))
