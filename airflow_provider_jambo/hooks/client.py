"""The HTTP layer: one description of an API call, sent once by either an httpx client.

``ApiRequest`` says everything about a call (method, path template and values, query, body,
whether re-sending it is safe, how to parse the answer). ``send_sync``/``send_async`` perform a
single attempt and turn every failure into a typed error (``exceptions.py``); retries wrap them
(``retry.py``). Nothing here logs or formats the API key: it lives only in ``BearerAuth``.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from airflow_provider_jambo.exceptions import (
    ApiTarget,
    JamboAPIError,
    JamboConfigError,
    JamboRateLimitedError,
    JamboTLSError,
    JamboTransportError,
    error_class_for,
    redact,
)
from airflow_provider_jambo.get_provider_info import DEFAULT_BASE_URL
from airflow_provider_jambo.hooks.budget import Ticket
from airflow_provider_jambo.hooks.round_trips import round_trips_for
from airflow_provider_jambo.rules import check_id

T = TypeVar("T")

API_PREFIX = "/api/v2"
#: Methods whose repetition cannot change the outcome (a repeated DELETE answers 204).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "DELETE"})
REQUEST_ID_HEADER = "X-Request-ID"
#: Header the service uses to echo its request id (observed).
RESPONSE_REQUEST_ID_HEADERS = ("x-neon-ret-request-id", "x-request-id")


#: What an API key may contain: visible ASCII, no whitespace. Anything else cannot travel in an HTTP
#: header, and h11 rejects such a header with an error that quotes it (key included), so it is
#: refused before any request is built.
API_KEY_PATTERN = re.compile(r"[\x21-\x7e]+")


def _identity(body: Any) -> Any:
    return body


def check_api_key(api_key: str, *, conn_id: str = "") -> str:
    """Refuse a key an HTTP header cannot carry; the message never shows the key."""
    if not API_KEY_PATTERN.fullmatch(api_key):
        where = f"connection {conn_id!r}: " if conn_id else ""
        raise JamboConfigError(
            f"{where}the API key contains whitespace, control or non-ASCII characters, which an HTTP "
            "header cannot carry; paste the key again (it is not shown here)"
        )
    return api_key


@dataclass(frozen=True)
class ApiRequest(Generic[T]):
    """One API call, described once and sent by the sync or the async client.

    ``path`` is the spec's template (``/projects/{project_id}/branches``); ``path_params`` fill
    it. Parameters named ``*_id`` are validated as ids; other values (role and database names) are
    percent-encoded. ``parse`` turns the decoded JSON body (``None`` for an empty body, e.g. a 204)
    into the result. ``idempotent`` defaults to True for GET/HEAD/DELETE: only those are re-sent
    after a 5xx or a lost response.
    """

    method: str
    path: str
    path_params: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None
    idempotent: bool | None = None
    parse: Callable[[Any], T] = field(default=_identity, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", self.method.upper())
        for name, value in self.path_params.items():
            if name.endswith("_id"):
                check_id(name, value)
            elif not isinstance(value, str) or not value:
                raise JamboConfigError(f"{name} must be a non-empty string, got {value!r}")
        missing = set(re.findall(r"{(\w+)}", self.path)) - set(self.path_params)
        if missing:
            raise JamboConfigError(f"{self.method} {self.path}: missing path values {sorted(missing)}")

    @property
    def safe_to_resend(self) -> bool:
        return self.idempotent if self.idempotent is not None else self.method in IDEMPOTENT_METHODS

    @property
    def url_path(self) -> str:
        """The concrete path relative to the base URL, e.g. ``/projects/p/branches``."""
        return self.path.format(**{k: quote(v, safe="") for k, v in self.path_params.items()})

    @property
    def params(self) -> dict[str, str]:
        """Query parameters without ``None`` values; booleans as the API spells them."""
        out: dict[str, str] = {}
        for key, value in self.query.items():
            if value is None:
                continue
            out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return out

    def describe(self) -> str:
        return f"{self.method} {self.url_path}"


class BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer <key>``; the key never appears in its repr."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.headers["Authorization"] = f"Bearer {self._api_key}"
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(***)"


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_base_url(
    host: str | None, *, port: int | None = None, schema: str | None = None, conn_id: str = ""
) -> str:
    """Turn a connection's host (and optional port/schema) into the API base URL.

    Empty → the public URL. ``console.neon.tech``, ``https://console.neon.tech`` and
    ``https://console.neon.tech/api/v2/`` all give ``https://console.neon.tech/api/v2``. A host
    without scheme is https unless it is a loopback address (the local emulator). Plain http is
    refused for anything but loopback, so a key never crosses a network unencrypted.
    """
    text = (host or "").strip()
    if not text:
        return DEFAULT_BASE_URL
    where = f"connection {conn_id!r}: " if conn_id else ""
    if "://" not in text:
        bare_host = urlsplit(f"//{text}").hostname or ""
        text = f"{'http' if _is_loopback(bare_host) else 'https'}://{text}"
    parts = urlsplit(text)
    # Dropped silently, these would send the key somewhere else than the user thinks.
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise JamboConfigError(
            f"{where}host must be an API URL without a query or fragment (e.g. "
            f"https://console.neon.tech/api/v2), got {host!r}"
        )
    if "@" in parts.netloc:
        raise JamboConfigError(
            f"{where}host must not carry user info (user:password@); the API key goes in the "
            "connection's password"
        )
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise JamboConfigError(f"{where}API base URL must use https (got scheme {parts.scheme!r})")
    hostname = parts.hostname
    if not hostname:
        raise JamboConfigError(f"{where}API base URL {host!r} has no host name")
    if scheme == "http" and not _is_loopback(hostname):
        raise JamboConfigError(
            f"{where}plain http is only allowed for a loopback emulator (127.0.0.1, ::1, localhost); "
            f"use https://{hostname}"
        )
    try:
        url_port = parts.port
    except ValueError as err:
        raise JamboConfigError(f"{where}API base URL {host!r} has an invalid port") from err
    port = url_port or port
    netloc = f"[{hostname}]" if ":" in hostname else hostname
    if port:
        netloc += f":{port}"
    path = parts.path.rstrip("/")
    if not path and schema:
        path = "/" + schema.strip("/")
    if not path.endswith(API_PREFIX):
        path += API_PREFIX
    return f"{scheme}://{netloc}{path}"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date); ``None`` when absent/invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def error_from_response(
    req: ApiRequest[Any],
    response: httpx.Response,
    *,
    secrets: tuple[str, ...] = (),
    target: ApiTarget | None = None,
) -> JamboAPIError:
    """Map an error response to the typed exception, keeping code, message and request id, and
    where the request went (``target``)."""
    code = ""
    message = ""
    request_id: str | None = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        code = str(body.get("code") or "")
        message = str(body.get("message") or "")
        request_id = str(body["request_id"]) if body.get("request_id") else None
    if not message:
        # Redact before truncating: a cut through a secret would leave its beginning behind.
        text = redact(response.text.strip(), secrets)
        message = text[:200] if text else (response.reason_phrase or "error")
    if request_id is None:
        for header in RESPONSE_REQUEST_ID_HEADERS:
            if response.headers.get(header):
                request_id = response.headers[header]
                break
    if request_id is None:
        request_id = response.request.headers.get(REQUEST_ID_HEADER)
    cls = error_class_for(response.status_code)
    return cls(
        response.status_code,
        redact(message, secrets),
        code=code,
        request_id=request_id,
        method=req.method,
        path=req.url_path,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        target=target,
    )


def _ssl_cause(err: BaseException) -> ssl.SSLError | None:
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ssl.SSLError):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def transport_error(
    req: ApiRequest[Any],
    err: httpx.RequestError,
    request_id: str,
    secrets: tuple[str, ...] = (),
    target: ApiTarget | None = None,
) -> JamboTransportError:
    """No answer: the typed error, naming where the request went and what to check there."""
    tls = _ssl_cause(err) if isinstance(err, httpx.ConnectError) else None
    if tls is not None:
        hint = (
            "the server does not speak TLS: if it is plain http (such as the local emulator), "
            "put an http:// URL in the connection's host"
            if "WRONG_VERSION_NUMBER" in str(tls)
            else "check the server's certificate and the connection's host"
        )
        reason = redact(f"TLS handshake failed ({type(tls).__name__}: {tls}); {hint}", secrets)
        return JamboTLSError(req.method, req.url_path, reason, request_id=request_id, target=target)
    # Connect failures (including a pool or connect timeout) never reached the service.
    sent = not isinstance(err, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
    reason = redact(f"{type(err).__name__}: {err}", secrets) if str(err) else type(err).__name__
    return JamboTransportError(
        req.method, req.url_path, reason, request_id=request_id, sent=sent, target=target
    )


def _build(client: httpx.Client | httpx.AsyncClient, req: ApiRequest[Any]) -> httpx.Request:
    headers = {REQUEST_ID_HEADER: str(uuid.uuid4())}
    if req.json is not None:
        headers["Content-Type"] = "application/json"
    return client.build_request(
        req.method,
        req.url_path.lstrip("/"),
        params=req.params,
        json=req.json,
        headers=headers,
    )


def _result(
    req: ApiRequest[T], response: httpx.Response, secrets: tuple[str, ...], target: ApiTarget | None
) -> T:
    if response.status_code >= 400:
        raise error_from_response(req, response, secrets=secrets, target=target)
    if response.status_code == 204 or not response.content:
        return req.parse(None)
    try:
        body = response.json()
    except ValueError as err:
        raise JamboTransportError(
            req.method,
            req.url_path,
            f"{response.status_code} answer is not JSON",
            request_id=response.request.headers.get(REQUEST_ID_HEADER),
            sent=True,
            target=target,
        ) from err
    return req.parse(body)


def _budgeted(ticket: Ticket | None, result: Callable[[], T]) -> T:
    """Run ``result``; a 429 it raises pauses the account's budget (everyone waits for it)."""
    try:
        return result()
    except JamboRateLimitedError as err:
        if ticket is not None:
            ticket.rate_limited(err.retry_after)
        raise


def send_sync(
    client: httpx.Client,
    req: ApiRequest[T],
    *,
    secrets: tuple[str, ...] = (),
    ticket: Ticket | None = None,
    sleep: Callable[[float], None] = time.sleep,
    target: ApiTarget | None = None,
) -> T:
    """One attempt with the sync client, after waiting for the account's budget (``ticket``);
    errors name ``target`` (the connection and its base URL)."""
    if ticket is not None:
        ticket.acquire(sleep)
    request = _build(client, req)
    try:
        response = client.send(request)
    except httpx.RequestError as err:
        raise transport_error(req, err, request.headers[REQUEST_ID_HEADER], secrets, target) from err
    round_trips_for(str(client.base_url)).record(response.elapsed.total_seconds())
    return _budgeted(ticket, lambda: _result(req, response, secrets, target))


async def send_async(
    client: httpx.AsyncClient,
    req: ApiRequest[T],
    *,
    secrets: tuple[str, ...] = (),
    ticket: Ticket | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    target: ApiTarget | None = None,
) -> T:
    """One attempt with the async client; the budget is awaited, never slept on."""
    if ticket is not None:
        await ticket.aacquire(sleep)
    request = _build(client, req)
    try:
        response = await client.send(request)
    except httpx.RequestError as err:
        raise transport_error(req, err, request.headers[REQUEST_ID_HEADER], secrets, target) from err
    round_trips_for(str(client.base_url)).record(response.elapsed.total_seconds())
    return _budgeted(ticket, lambda: _result(req, response, secrets, target))


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process: building one loads the CA bundle (~25 ms), which
    would otherwise dominate the cost of every short-lived hook. SSLContext is thread-safe."""
    return httpx.create_ssl_context()


def client_kwargs(
    base_url: str, api_key: str, *, timeout: float, connect_timeout: float, user_agent: str
) -> dict[str, Any]:
    """Settings shared by the sync and the async client."""
    return {
        "base_url": base_url.rstrip("/") + "/",
        "auth": BearerAuth(api_key),
        "headers": {"Accept": "application/json", "User-Agent": user_agent},
        "timeout": httpx.Timeout(timeout, connect=connect_timeout),
        "follow_redirects": False,
        "verify": shared_ssl_context(),
    }


def page_of(body: Any, key: str, limit: int) -> tuple[list[Mapping[str, Any]], str | None]:
    """Items and the next cursor of one page, for both pagination styles of the spec.

    Branches use ``pagination.next`` (opaque, absent on the last page). Projects and operations
    use ``pagination.cursor`` (the last item's key) with ``limit``: a short page is the last one.
    """
    data = body if isinstance(body, Mapping) else {}
    items = [item for item in data.get(key) or [] if isinstance(item, Mapping)]
    pagination = data.get("pagination")
    pagination = pagination if isinstance(pagination, Mapping) else {}
    if "next" in pagination:
        nxt = pagination.get("next")
        return items, (str(nxt) if nxt and items else None)
    cursor = pagination.get("cursor")
    if cursor and len(items) >= limit:
        return items, str(cursor)
    return items, None
