"""Anonymized branches: create, masking rules (get/replace), start anonymization, status.

The rules and the state machine live in ``emulator/anonymization.py``; a create is a branch create
(``routes/branches.py``, same checks, operations and response) that is then marked anonymized.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Request
from pydantic import Field
from starlette.responses import Response

from jambo_emulator.api.bodies import Body, BranchCreateBody
from jambo_emulator.api.gate import api_router
from jambo_emulator.api.routes import branch_routes as branches
from jambo_emulator.api.routes.helpers import BranchId, ProjectId, ctx_of, key_of, respond
from jambo_emulator.resources import anonymization
from jambo_emulator.state.errors import bad_request

router = api_router()


class MaskingRuleBody(Body):
    database_name: str
    schema_name: str
    table_name: str
    column_name: str
    masking_function: str | None = None
    masking_value: str | None = None


class BranchAnonymizedCreateBody(Body):
    annotation_value: Annotated[dict[str, str], Field(max_length=50)] | None = None
    branch_create: BranchCreateBody | None = None
    masking_rules: list[MaskingRuleBody] | None = None
    start_anonymization: bool | None = None


class MaskingRulesUpdateBody(Body):
    masking_rules: list[MaskingRuleBody]


@router.post("/projects/{project_id}/branch_anonymized")
async def create_anonymized_branch(
    request: Request, project_id: ProjectId, body: BranchAnonymizedCreateBody
) -> Response:
    rules = anonymization.rules_from(body.masking_rules or [])  # a bad rule creates nothing
    inner = body.branch_create or BranchCreateBody()
    if body.annotation_value is not None:
        inner = inner.model_copy(update={"annotation_value": body.annotation_value})
    ctx = ctx_of(request)
    # One hold of the store lock from the create to the marking, so no sweep can finish the
    # branch's create before it is known to be anonymized (the handler awaits nothing).
    with ctx.store.lock:
        response = await branches.create_branch(request, project_id, inner)
        branch_id = json.loads(bytes(response.body))["branch"]["id"]
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        anonymization.attach(ctx, project, branch, rules, start=bool(body.start_anonymization))
    return response


@router.get("/projects/{project_id}/branches/{branch_id}/masking_rules")
async def get_masking_rules(request: Request, project_id: ProjectId, branch_id: BranchId) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        _, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        anon = anonymization.of(branch)
        return respond({"masking_rules": [anonymization.rule_body(r) for r in anon.rules]})


@router.patch("/projects/{project_id}/branches/{branch_id}/masking_rules")
async def update_masking_rules(
    request: Request, project_id: ProjectId, branch_id: BranchId, body: MaskingRulesUpdateBody
) -> Response:
    rules = anonymization.rules_from(body.masking_rules)
    ctx = ctx_of(request)
    with ctx.store.lock:
        _, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        anon = anonymization.of(branch)
        # A run in progress keeps the rules it started with; these apply from the next one.
        anon.rules = rules
        anon.updated_at = max(anon.updated_at, ctx.clock.now())
        return respond({"masking_rules": [anonymization.rule_body(r) for r in anon.rules]})


@router.post("/projects/{project_id}/branches/{branch_id}/anonymize")
async def start_anonymization(request: Request, project_id: ProjectId, branch_id: BranchId) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        anon = anonymization.of(branch)
        anonymization.refresh(ctx, anon)
        if anon.state not in anonymization.RUNNABLE:
            raise bad_request(
                f"cannot start anonymization: branch {branch.id} is {anon.state} "
                f"(allowed in: {', '.join(sorted(anonymization.RUNNABLE))})"
            )
        anonymization.start_run(ctx, project, branch, anon)
        return respond(anonymization.status_body(ctx, project, branch, anon))


@router.get("/projects/{project_id}/branches/{branch_id}/anonymized_status")
async def get_anonymized_status(request: Request, project_id: ProjectId, branch_id: BranchId) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        anon = anonymization.of(branch)
        anonymization.refresh(ctx, anon)
        return respond(anonymization.status_body(ctx, project, branch, anon))
