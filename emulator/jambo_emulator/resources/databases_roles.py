"""Databases and roles of a branch: what creating, changing or deleting one does (an
``apply_config`` operation, then a restart of a running compute) and the data-plane calls.
"""

from __future__ import annotations

from typing import Any

from jambo_emulator.resources.context import EmulatorContext
from jambo_emulator.resources.endpoints import suspend_op
from jambo_emulator.state.records import Branch, Operation, Project


def config_ops(
    ctx: EmulatorContext, project: Project, branch: Branch, effect: Any, effect_name: str
) -> list[Operation]:
    """Role/database changes: ``apply_config`` then, for a running compute, ``suspend_compute``."""
    ctx.check_lock(project)
    endpoints = project.branch_endpoints(branch.id)
    target = next((e for e in endpoints if e.type == "read_write"), endpoints[0] if endpoints else None)
    apply = ctx.engine.create(
        project,
        "apply_config",
        branch_id=branch.id,
        endpoint_id=target.id if target else None,
        effect=effect,
        effect_name=effect_name,
    )
    ops = [apply]
    if target is not None and target.current_state == "active" and target.pending_state is None:
        ops.append(suspend_op(ctx, project, target, after=apply, real=False))
    return ops
