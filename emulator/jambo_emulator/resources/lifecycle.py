"""One emulator instance's life: its bootstrap (the default organization, the configured keys and
the projects of project-scoped keys), the background tick (operations due, TTL expiry, recovery
windows ending, inactive computes suspended), the manual clock's advance, and reset.

It sits above every resource (it calls their periodic jobs), so no resource needs to call up.
"""

from __future__ import annotations

from jambo_emulator.dataplane.base import DataPlane
from jambo_emulator.resources import branches, endpoints, organizations, projects, recovery, snapshots
from jambo_emulator.resources.context import EmulatorContext
from jambo_emulator.state.config import EmulatorConfig

DEFAULT_ORGANIZATION_NAME = "Jambo Emulator"


def new_context(config: EmulatorConfig, data_plane: DataPlane) -> EmulatorContext:
    """A fresh, bootstrapped instance."""
    ctx = EmulatorContext(config, data_plane)
    bootstrap(ctx)
    return ctx


def bootstrap(ctx: EmulatorContext) -> None:
    """What the config asks for at start (and after every reset)."""
    organizations.add_organization(ctx, DEFAULT_ORGANIZATION_NAME, org_id=ctx.default_org_id)
    keys = list(ctx.config.api_keys)
    if not keys and not ctx.config.project_scoped_keys:
        if ctx.generated_key is None:
            ctx.generated_key = ctx.ids.api_key()
        keys = [ctx.generated_key]
    for index, key in enumerate(keys, start=1):
        organizations.add_api_key(ctx, key, name=f"emulator-key-{index}")
    for key, project_id in ctx.config.project_scoped_keys.items():
        if project_id not in ctx.store.projects:
            spec = projects.ProjectSpec(name=project_id, org_id=ctx.default_org_id)
            projects.create_project(ctx, spec, project_id=project_id)
        organizations.add_api_key(ctx, key, name=f"project-key-{project_id}", project_id=project_id)
    # Bootstrap work (the scoped keys' projects) is done, not in flight.
    ctx.finish_all()


def tick(ctx: EmulatorContext) -> None:
    """Background work: operations due, expired branches and snapshots, scheduled snapshots, the
    end of recovery windows, inactive computes (the sweeper calls this; so do the control API's
    advance and operation reads)."""
    ctx.engine.advance()
    branches.delete_expired_branches(ctx)
    snapshots.take_scheduled(ctx)
    snapshots.delete_expired(ctx)
    recovery.purge_expired(ctx)
    endpoints.suspend_inactive_endpoints(ctx)
    ctx.engine.advance()


def advance(ctx: EmulatorContext, seconds: float) -> float:
    """Move the manual clock on and do what became due; returns the new time."""
    ctx.clock.advance(seconds)
    tick(ctx)
    return ctx.clock.now()


def reset(ctx: EmulatorContext) -> None:
    """Back to the configured start: no faults, logs or projects other than the bootstrap ones."""
    ctx.clear()
    bootstrap(ctx)
