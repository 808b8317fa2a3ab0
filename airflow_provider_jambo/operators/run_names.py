"""Branch names for DAG runs: the ``run_branch_name`` macro, the create operator's default name, and
how long a run-named branch may outlive a run that died (its safety expiry).

Pure (no hook, no request): DAG files use :func:`run_branch_name` as a template macro.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from airflow.providers.common.compat.sdk import conf

from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.rules import MAX_EXPIRY, NAME_MAX, check_name, check_ttl, seconds

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
    digest = _run_digest(run_id)
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


def _run_digest(run_id: str) -> str:
    return hashlib.sha256(run_id.encode()).hexdigest()[:8]


#: The shortest run id a name's ending is matched against as it is (the length of the hash).
MIN_RUN_ID_MATCH = 8


def is_run_branch_name(name: str, run_id: str) -> bool:
    """Whether ``name`` is one :func:`run_branch_name` builds for ``run_id`` (with any prefix).

    :func:`run_branch_name` ends every name with the run id itself (when it is a valid name part)
    or with the run id's 8-character hash, so a name ending so was built from this run: a name
    written as ``"preview-{{ run_branch_name(run_id) }}"`` or ``"ci-{{ run_id }}"`` counts, a
    fixed ``"staging"`` or a date-built ``"ci-{{ ds }}"`` does not. A run id shorter than
    :data:`MIN_RUN_ID_MATCH` characters (a custom one, e.g. ``"1"``) ends too many fixed names by
    chance (``"release-1"``), so only its hash counts then.
    """
    if not run_id:
        return False
    return (len(run_id) >= MIN_RUN_ID_MATCH and name.endswith(run_id)) or name.endswith(_run_digest(run_id))


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


# --- the safety expiry of run-named branches ----------------------------------------------------

#: How long a run-named branch lives when neither the DAG's ``dagrun_timeout`` nor the task's
#: ``execution_timeout`` says longer; ``[jambo] run_branch_ttl_seconds``
#: (``AIRFLOW__JAMBO__RUN_BRANCH_TTL_SECONDS``) overrides it.
RUN_BRANCH_TTL = timedelta(days=1)
#: Added to a timeout: the teardowns and a retry's cleanup still need the branch after it.
RUN_BRANCH_GRACE = timedelta(hours=1)
RUN_BRANCH_TTL_SETTING = "[jambo] run_branch_ttl_seconds"
#: The longest safety expiry: the service's 30 days, less a margin for the clocks' difference (an
#: expiry a second beyond 30 days by the service's clock is refused, and the create with it).
SAFETY_TTL_MAX = MAX_EXPIRY - timedelta(minutes=5)


def run_branch_ttl_setting() -> timedelta:
    """The configured default life of a run-named branch (checked: positive, at most 30 days)."""
    text = conf.get("jambo", "run_branch_ttl_seconds", fallback=None)
    if text is None:
        return RUN_BRANCH_TTL
    return check_ttl(RUN_BRANCH_TTL_SETTING, seconds(RUN_BRANCH_TTL_SETTING, text, allow_text=True))


@dataclass(frozen=True)
class SafetyTTL:
    """How long a run-named branch is given, and why (logged when the branch gets it)."""

    ttl: timedelta
    reason: str


def safety_ttl(
    *, dagrun_timeout: timedelta | None, execution_timeout: timedelta | None, default: timedelta
) -> SafetyTTL:
    """The expiry a run-named branch gets, long enough for its run.

    - The DAG's ``dagrun_timeout`` bounds the whole run: that plus :data:`RUN_BRANCH_GRACE`.
    - Else the create task's ``execution_timeout`` bounds only that task (the run goes on after
      it), so it is a lower bound: that plus the grace when it is longer than ``default``.
    - Else ``default`` (:func:`run_branch_ttl_setting`).

    Capped at the service's 30 days (the reason says so: a run that lasts longer loses its branch).
    """
    if dagrun_timeout is not None:
        ttl, reason = dagrun_timeout + RUN_BRANCH_GRACE, f"the DAG's dagrun_timeout ({dagrun_timeout}) + 1 h"
    elif execution_timeout is not None and execution_timeout + RUN_BRANCH_GRACE > default:
        ttl = execution_timeout + RUN_BRANCH_GRACE
        reason = f"the task's execution_timeout ({execution_timeout}) + 1 h"
    else:
        ttl, reason = default, f"the default for run-named branches ({RUN_BRANCH_TTL_SETTING}: {default})"
    if ttl > SAFETY_TTL_MAX:
        ttl, reason = SAFETY_TTL_MAX, f"{reason}, capped at the service's limit of 30 days"
    return SafetyTTL(ttl, reason)
