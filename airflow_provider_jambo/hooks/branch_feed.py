"""Listings of a project's branches for the branch watchers: one poll per project, however many watch.

A listing is every branch of the project, soft-deleted ones included (``include_deleted=true``: a
branch created and deleted between two polls is still seen while it is recoverable), all pages, one
request per page (up to :data:`BRANCH_PAGE_LIMIT` branches), through the hook's async client and so
through the account's request budget (``hooks/budget.py``).

:func:`poll_listings` is the poll (one listing every ``interval`` seconds, forever). Sibling watchers
share it two ways, whichever Airflow offers:

- Airflow 3.3's shared streams (``BaseEventTrigger.shared_stream_key``): the triggerer runs one
  :func:`poll_listings` per key and fans its listings out;
- elsewhere (3.0-3.2, or a trigger's ``run()`` driven directly), :func:`shared_listings`: one
  :class:`BranchFeed` per (connection, project, interval) per event loop, as ``hooks/poller.py``
  does for operations; created by the first watcher, gone with the last.

A watcher slower than the poll sees only the newest listing: a listing is a whole state, and the
rules (``branch_events.py``) compare states, so a skipped one hides only what it alone showed.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from airflow_provider_jambo.branch_events import BranchListing, ListedBranch
from airflow_provider_jambo.exceptions import (
    JamboError,
    JamboLockedError,
    JamboRateLimitedError,
    JamboServerError,
    JamboTransportError,
)
from airflow_provider_jambo.hooks.client import ApiRequest, page_of

#: Branches per page of a listing (the service allows up to 10000).
BRANCH_PAGE_LIMIT = 1000
#: Errors a poll outlives (after the hook's own retries): the next poll tries again.
TRANSIENT_ERRORS = (JamboServerError, JamboTransportError, JamboRateLimitedError, JamboLockedError)


class ListingHook(Protocol):
    """What a feed needs of a hook (``JamboHook`` is one)."""

    @property
    def log(self) -> Any: ...

    async def arequest(self, req: ApiRequest[Any]) -> Any: ...

    async def aresolve_project_id(self, project_id: str | None) -> str: ...

    async def aclose(self) -> None: ...


async def list_branches(hook: ListingHook, project_id: str) -> BranchListing:
    """Every branch of ``project_id``, soft-deleted ones too when the service lists them."""
    branches: list[ListedBranch] = []
    cursor: str | None = None
    seen: set[str] = set()
    taken_at = datetime.now(UTC).isoformat()
    while True:
        body = await hook.arequest(
            ApiRequest(
                "GET",
                "/projects/{project_id}/branches",
                {"project_id": project_id},
                query={"limit": BRANCH_PAGE_LIMIT, "cursor": cursor, "include_deleted": True},
            )
        )
        items, cursor = page_of(body, "branches", BRANCH_PAGE_LIMIT)
        annotations = body.get("annotations") if isinstance(body, dict) else None
        annotations = annotations if isinstance(annotations, dict) else {}
        branches.extend(ListedBranch.from_api(item, annotations.get(item.get("id"))) for item in items)
        if cursor is None or cursor in seen:
            return BranchListing(project_id, tuple(branches), taken_at)
        seen.add(cursor)


async def poll_listings(
    hook: ListingHook,
    project_id: str | None,
    interval: float,
    *,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> AsyncIterator[BranchListing]:
    """A listing now and every ``interval`` seconds after, forever; ``project_id`` None = the
    connection's. A transient failure (the hook's retries spent) skips one poll; any other error
    (bad key, no such project) ends the poll with it."""
    pid = await hook.aresolve_project_id(project_id)
    while True:
        try:
            listing = await list_branches(hook, pid)
        except TRANSIENT_ERRORS as err:
            hook.log.warning(
                "Listing the branches of project %s failed, next poll in %s s: %s", pid, interval, err
            )
        else:
            yield listing
        await sleep(interval)


FeedKey = tuple[str, str, float]  # (connection id, project id or "" for the connection's, interval)


class BranchFeed:
    """The shared poll of one :data:`FeedKey` in one event loop, fanned out to its watchers."""

    def __init__(self, key: FeedKey, hook: ListingHook) -> None:
        self.key = key
        self.hook = hook
        self.closed = False
        #: Listings taken so far (tests and benchmarks).
        self.polls = 0
        self._queues: set[asyncio.Queue[BranchListing | BaseException]] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def watchers(self) -> int:
        return len(self._queues)

    def join(self) -> asyncio.Queue[BranchListing | BaseException]:
        queue: asyncio.Queue[BranchListing | BaseException] = asyncio.Queue(maxsize=1)
        self._queues.add(queue)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"jambo-branches-{self.key[1]}"
            )
        return queue

    def leave(self, queue: asyncio.Queue[BranchListing | BaseException]) -> None:
        self._queues.discard(queue)
        if not self._queues and self._task is not None:
            self._close()
            self._task.cancel()

    def _offer(self, item: BranchListing | BaseException) -> None:
        for queue in list(self._queues):
            if queue.full():  # a slow watcher needs only the newest listing (module docstring)
                queue.get_nowait()
            queue.put_nowait(item)

    async def _run(self) -> None:
        failure: BaseException | None = None
        try:
            async for listing in poll_listings(self.hook, self.key[1] or None, self.key[2]):
                self.polls += 1
                self._offer(listing)
        except JamboError as err:
            failure = err  # handed to every watcher below, as each would have met it alone
        except BaseException as err:  # a bug or a cancelled loop: no watcher may wait on a dead poll
            failure = err
            raise
        finally:
            self._close()
            if not isinstance(failure, asyncio.CancelledError):
                self._offer(failure or RuntimeError(f"the branch poll of project {self.key[1]} stopped"))
            await self.hook.aclose()

    def _close(self) -> None:
        self.closed = True
        loop_feeds = _feeds.get(asyncio.get_running_loop(), {})
        if loop_feeds.get(self.key) is self:
            del loop_feeds[self.key]


_feeds: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[FeedKey, BranchFeed]] = (
    weakref.WeakKeyDictionary()
)


async def shared_listings(key: FeedKey, make_hook: Callable[[], ListingHook]) -> AsyncIterator[BranchListing]:
    """The listings of the running loop's feed for ``key`` (created, with a hook from ``make_hook``,
    if needed), from the next poll on; leaving (also when cancelled) may end the feed."""
    loop_feeds = _feeds.setdefault(asyncio.get_running_loop(), {})
    feed = loop_feeds.get(key)
    if feed is None or feed.closed:
        feed = loop_feeds[key] = BranchFeed(key, make_hook())
    queue = feed.join()
    try:
        while True:
            item = await queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        with contextlib.suppress(RuntimeError):  # the loop is already closing
            feed.leave(queue)


def active_feeds() -> list[BranchFeed]:
    """The running loop's feeds (tests and benchmarks)."""
    return list(_feeds.get(asyncio.get_running_loop(), {}).values())
