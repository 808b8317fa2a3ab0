"""Anonymized branches: create, masking rules (get/replace), start anonymization, status.

The rules and the state machine live in ``resources/anonymization.py``; a create is a branch
create (same checks, operations and response) that is then marked anonymized.
"""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from jambo_emulator.api import serialize
from jambo_emulator.api.bodies import BranchAnonymizedCreateBody, MaskingRulesUpdateBody
from jambo_emulator.api.gate import api_router
from jambo_emulator.api.routes.helpers import BranchId, ProjectId, ctx_of, key_of, respond
from jambo_emulator.resources import anonymization

router = api_router()


@router.post("/projects/{project_id}/branch_anonymized")
async def create_anonymized_branch(
    request: Request, project_id: ProjectId, body: BranchAnonymizedCreateBody
) -> Response:
    rules = anonymization.rules_from(body.masking_rules or [])  # a bad rule creates nothing
    spec = body.branch_spec()
    ctx = ctx_of(request)
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        created = anonymization.create_anonymized_branch(
            ctx, project, spec, rules, start=bool(body.start_anonymization)
        )
        return respond(serialize.branch_created(created, ctx.clock.now()), 201)


@router.get("/projects/{project_id}/branches/{branch_id}/masking_rules")
async def get_masking_rules(request: Request, project_id: ProjectId, branch_id: BranchId) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        _, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        anon = anonymization.of(branch)
        return respond({"masking_rules": [serialize.mask_rule(r) for r in anon.rules]})


@router.patch("/projects/{project_id}/branches/{branch_id}/masking_rules")
async def update_masking_rules(
    request: Request, project_id: ProjectId, branch_id: BranchId, body: MaskingRulesUpdateBody
) -> Response:
    rules = anonymization.rules_from(body.masking_rules)
    ctx = ctx_of(request)
    with ctx.store.lock:
        _, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        anon = anonymization.replace_rules(ctx, branch, rules)
        return respond({"masking_rules": [serialize.mask_rule(r) for r in anon.rules]})


@router.post("/projects/{project_id}/branches/{branch_id}/anonymize")
async def start_anonymization(request: Request, project_id: ProjectId, branch_id: BranchId) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        anon = anonymization.start(ctx, project, branch)
        return respond(serialize.anonymized_status(project.id, branch.id, anon, ctx.owner_id))


@router.get("/projects/{project_id}/branches/{branch_id}/anonymized_status")
async def get_anonymized_status(request: Request, project_id: ProjectId, branch_id: BranchId) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        anon = anonymization.status(ctx, branch)
        return respond(serialize.anonymized_status(project.id, branch.id, anon, ctx.owner_id))
