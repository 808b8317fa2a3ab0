"""Branchable object-storage buckets: every bucket rule of the emulator here (the route module only
parses and serializes).

The spec (tag ``Buckets``): a bucket is created on a branch, its name "unique within a branch";
listing shows the buckets "visible on the specified branch, including those inherited from ancestor
branches", an inherited one with "the ancestor's creation time (the branch fork never re-creates the
bucket)"; a delete removes the named bucket "from the specified branch". So a branch sees what its
parent had at the fork, copy-on-write:

- walking up from the branch, each ancestor counts only as it was at the fork of the branch below
  it (``parent_timestamp``: a point-in-time branch sees its parent as of that time);
- deleting a bucket records it on that branch: an inherited one is hidden there (and in the
  children forked later) only, and children forked earlier still see their own copy;
- a name visible on the branch, own or inherited, cannot be created again (409).

Buckets carry no operations and no 423 rule (the spec answers a bare ``BucketResponse``; the
storage service is not the compute's). They are part of their branch: a soft-deleted branch or
project keeps them and brings them back on recovery; a purge drops them. Reset and restore leave
a branch's own buckets as they are, and inheritance follows the branch's current parent. Objects
are not emulated (those operations answer 501).
"""

from __future__ import annotations

from jambo_emulator.resources.context import EmulatorContext
from jambo_emulator.resources.recovery import check_not_deleted
from jambo_emulator.state.errors import ApiError, not_found
from jambo_emulator.state.records import ApiKey, Branch, Bucket, Project

#: The spec's ``BucketCreateRequest.access_level`` default.
DEFAULT_ACCESS_LEVEL = "private"

_Moment = tuple[float, int]
_ALWAYS: _Moment = (float("inf"), 0)


def _fork(branch: Branch) -> _Moment:
    """The moment the branch forked from its parent (what of the parent it sees)."""
    at = branch.parent_timestamp if branch.parent_timestamp is not None else branch.created_at
    return at, branch.seq


def _lineage(project: Project, branch: Branch) -> list[tuple[Branch, _Moment]]:
    """The branch, then each ancestor, each with the moment up to which it is seen from below."""
    chain = [(branch, _ALWAYS)]
    cutoff, seen = _ALWAYS, {branch.id}
    while branch.parent_id is not None:
        cutoff = min(cutoff, _fork(branch))
        parent = project.branches.get(branch.parent_id)
        if parent is None or parent.id in seen:  # a deleted ancestor's storage is not reachable
            break
        seen.add(parent.id)
        chain.append((parent, cutoff))
        branch = parent
    return chain


def _resolve(project: Project, branch: Branch, name: str) -> Bucket | None:
    """The bucket ``name`` as the branch sees it: the latest thing that happened to the name on the
    nearest level that has one before its cutoff (a create or a delete) decides."""
    for level, cutoff in _lineage(project, branch):
        seen = [bucket for moment, bucket in level.buckets.get(name, ()) if moment <= cutoff]
        if seen:
            return seen[-1]
    return None


def visible(project: Project, branch: Branch) -> list[Bucket]:
    """The branch's buckets, own and inherited, by name."""
    names = {name for level, _ in _lineage(project, branch) for name in level.buckets}
    found = (_resolve(project, branch, name) for name in sorted(names))
    return [bucket for bucket in found if bucket is not None]


def create(
    ctx: EmulatorContext, key: ApiKey, project_id: str, branch_id: str, name: str, access_level: str | None
) -> Bucket:
    """A new bucket on the branch. 410 for a deleted project (the spec lists it), 404 for an
    unknown one or branch, 409 for a name the branch already sees. Caller holds the store lock."""
    check_not_deleted(ctx, key, project_id)
    project, branch = ctx.project_branch(key, project_id, branch_id)
    if _resolve(project, branch, name) is not None:
        raise ApiError(409, f"bucket already exists: {name!r} is already a bucket on branch {branch.id}")
    now = ctx.clock.now()
    bucket = Bucket(name, access_level or DEFAULT_ACCESS_LEVEL, now)
    branch.buckets.setdefault(name, []).append(((now, ctx.store.next_seq()), bucket))
    return bucket


def list_for(ctx: EmulatorContext, key: ApiKey, project_id: str, branch_id: str) -> list[Bucket]:
    project, branch = ctx.project_branch(key, project_id, branch_id)
    return visible(project, branch)


def delete(ctx: EmulatorContext, key: ApiKey, project_id: str, branch_id: str, name: str) -> None:
    """Gone from this branch (and the children forked after); 404 when the branch does not see it.
    An ancestor's bucket stays the ancestor's."""
    project, branch = ctx.project_branch(key, project_id, branch_id)
    if _resolve(project, branch, name) is None:
        raise not_found("bucket")
    branch.buckets.setdefault(name, []).append(((ctx.clock.now(), ctx.store.next_seq()), None))
