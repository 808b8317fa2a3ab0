"""Anonymized branches: their masking rules, their state machine, and the masking run.

States (``AnonymizedBranchStatusResponse.state``)::

    created --(create_branch finished)--> initialized --(anonymize)--> anonymizing --> anonymized
       \\--(create_branch failed)--> initialization_error            \\--> error

``anonymize`` is allowed in ``initialized``, ``error`` and ``anonymized`` (the spec's words); with
``start_anonymization: true`` the create starts it by itself once the branch is initialized. A run
starts no operation (the spec's ``OperationAction`` enum has no anonymization action): clients
poll ``anonymized_status``. It lasts the ``anonymize`` duration (``set_operation_durations(
anonymize=...)``, default: the default duration) and, with the data plane on, until the masking
SQL has run in the branch's own copy (``DataPlane.apply_masking``; the parent is never touched).

Rules are checked when they are set: a function the emulator cannot run is a 400 naming it.
Whether the named tables and columns exist is only known to the data plane: a run that cannot mask
one ends in ``error`` with the server's message as ``status_message``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jambo_emulator.dataplane.masking import MaskingError, MaskRule, parse_rule
from jambo_emulator.resources.branches import BranchSpec, Created, create_branch
from jambo_emulator.resources.context import EmulatorContext
from jambo_emulator.resources.operations import ANONYMIZE
from jambo_emulator.state.dataplane_runner import describe_failure, log_failure
from jambo_emulator.state.errors import bad_request
from jambo_emulator.state.records import Anonymization, Branch, Operation, Project, Run

#: States from which ``POST .../anonymize`` may start a run.
RUNNABLE = frozenset({"initialized", "error", "anonymized"})
#: The key of ``set_operation_durations`` that paces a masking run.
DURATION_KEY = ANONYMIZE


def rules_from(items: Sequence[Any]) -> list[MaskRule]:
    """Masking rules from request items (``MaskingRuleBody``); 400 naming the first bad one."""
    rules: list[MaskRule] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        rule = MaskRule(
            database=item.database_name,
            schema=item.schema_name,
            table=item.table_name,
            column=item.column_name,
            function=item.masking_function,
            value=item.masking_value,
        )
        for name in ("database_name", "schema_name", "table_name", "column_name"):
            if not getattr(item, name).strip():
                raise bad_request(f"invalid masking_rules[{index}].{name}: must not be empty")
        if rule.target in seen:
            raise bad_request(f"invalid masking_rules[{index}]: a second rule for column {rule.target}")
        seen.add(rule.target)
        try:
            parse_rule(rule)
        except MaskingError as err:
            raise bad_request(f"invalid masking_rules[{index}]: {err}") from None
        rules.append(rule)
    return rules


def of(branch: Branch) -> Anonymization:
    """The branch's anonymization, or a 400: these routes serve anonymized branches only."""
    anon = branch.anonymization
    if anon is None:
        raise bad_request(
            f"branch {branch.id} is not an anonymized branch "
            "(create one with POST /projects/{project_id}/branch_anonymized)"
        )
    return anon


def attach(
    ctx: EmulatorContext, project: Project, branch: Branch, rules: list[MaskRule], *, start: bool
) -> Anonymization:
    """Make the just-created ``branch`` anonymized: ``initialized`` when its create finishes."""
    now = ctx.clock.now()
    anon = Anonymization(created_at=now, updated_at=now, rules=rules, start_when_initialized=start)
    branch.anonymization = anon
    create_op = next(
        op
        for op in reversed(project.operations)
        if op.action == "create_branch" and op.branch_id == branch.id
    )
    finished, failed = create_op.on_finish, create_op.on_fail

    def initialized(op: Operation) -> None:
        if finished is not None:
            finished(op)
        _set(anon, "initialized", op.updated_at, "branch initialized: masking rules can be applied")
        if anon.start_when_initialized and project.branches.get(branch.id) is branch:
            start_run(ctx, project, branch, anon, at=op.updated_at)

    def initialization_failed(op: Operation) -> None:
        if failed is not None:
            failed(op)
        _set(anon, "initialization_error", op.updated_at, f"branch initialization failed: {op.error}")
        anon.failed_at = op.updated_at

    create_op.on_finish, create_op.on_fail = initialized, initialization_failed
    return anon


def start_run(
    ctx: EmulatorContext, project: Project, branch: Branch, anon: Anonymization, *, at: float | None = None
) -> None:
    """Start masking the branch's copy with the current rules (caller holds the store lock)."""
    now = ctx.clock.now() if at is None else at
    duration = ctx.engine.durations.get(DURATION_KEY, ctx.engine.default_duration)
    run = Run(started_at=now, due=now + duration, rules=tuple(anon.rules))
    anon.run, anon.failed_at = run, None
    tables = {(r.database, r.schema, r.table) for r in run.rules}
    _set(anon, "anonymizing", now, f"anonymizing {len(run.rules)} column(s) in {len(tables)} table(s)")
    missing = sorted({r.database for r in run.rules} - set(branch.databases))
    if missing:
        run.effect_error = f"database(s) {', '.join(missing)} do not exist on branch {branch.id}"
    elif ctx.runner.enabled and run.rules:
        run.effect_done = False
        dp, pid, bid = ctx.data_plane, project.id, branch.id
        future = ctx.runner.submit(lambda: dp.apply_masking(pid, bid, run.rules))
        future.add_done_callback(lambda fut: _effect_done(ctx, run, fut.exception(), bid))


def _effect_done(ctx: EmulatorContext, run: Run, exc: BaseException | None, branch_id: str) -> None:
    if exc is not None:
        log_failure("apply_masking", exc, branch_id)
    with ctx.store.lock:
        run.effect_done, run.effect_done_at = True, ctx.clock.now()
        run.effect_error = describe_failure(exc) if exc is not None else None


def refresh(ctx: EmulatorContext, anon: Anonymization) -> None:
    """Finish a run that is due (lazily, on every read; timestamps are the due times)."""
    run = anon.run
    now = ctx.clock.now()
    if anon.state != "anonymizing" or run is None or not run.effect_done or now < run.due:
        return
    at = min(max(run.due, run.effect_done_at), now)
    run.completed_at = at
    if run.effect_error is not None:
        _set(anon, "error", at, f"anonymization failed: {run.effect_error}")
        anon.failed_at = at
    else:
        _set(anon, "anonymized", at, f"anonymized {len(run.rules)} column(s)")


def _set(anon: Anonymization, state: str, at: float, message: str) -> None:
    anon.state, anon.status_message = state, message
    anon.updated_at = max(anon.updated_at, at)


def create_anonymized_branch(
    ctx: EmulatorContext, project: Project, spec: BranchSpec, rules: list[MaskRule], *, start: bool
) -> Created:
    """A branch create (same checks, operations and response) whose branch is then anonymized.
    Caller holds the store lock from the create to the marking, so no sweep can finish the
    branch's create before it is known to be anonymized."""
    created = create_branch(ctx, project, spec)
    attach(ctx, project, created.branch, rules, start=start)
    return created


def replace_rules(ctx: EmulatorContext, branch: Branch, rules: list[MaskRule]) -> Anonymization:
    """A run in progress keeps the rules it started with; these apply from the next one."""
    anon = of(branch)
    anon.rules = rules
    anon.updated_at = max(anon.updated_at, ctx.clock.now())
    return anon


def start(ctx: EmulatorContext, project: Project, branch: Branch) -> Anonymization:
    """``POST .../anonymize``: a new run, allowed in the ``RUNNABLE`` states only."""
    anon = status(ctx, branch)
    if anon.state not in RUNNABLE:
        raise bad_request(
            f"cannot start anonymization: branch {branch.id} is {anon.state} "
            f"(allowed in: {', '.join(sorted(RUNNABLE))})"
        )
    start_run(ctx, project, branch, anon)
    return anon


def status(ctx: EmulatorContext, branch: Branch) -> Anonymization:
    """The branch's anonymization, brought up to date (a due run finishes)."""
    anon = of(branch)
    refresh(ctx, anon)
    return anon
