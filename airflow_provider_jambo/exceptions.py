"""Every error the provider raises, grouped by who decided.

::

    JamboError (AirflowException)
    ├── JamboConfigError (ValueError)  the provider, before any request: bad argument or connection
    ├── JamboAPIError                  the service: it answered with an error status
    │   ├── JamboAuthError             401 / 403
    │   ├── JamboNotFoundError         404
    │   ├── JamboConflictError         409
    │   ├── JamboLockedError           423
    │   ├── JamboRateLimitedError      429
    │   └── JamboServerError           5xx (incl. the CDN's 524)
    ├── JamboTransportError            nobody: no answer (connect/read error, timeout, dropped)
    │   └── JamboTLSError              the TLS handshake failed (never retried)
    ├── JamboLookupError               the provider, after reading: what was named is not there
    │   └── JamboBranchNotFound        no branch with that id or exact name
    ├── JamboRefusedError              the provider, after reading: it will not do what was asked
    │   └── JamboBranchConflict        the existing branch is not the one asked for (not adopted)
    ├── JamboOperationFailedError      the service's operations ended in failure
    └── JamboOperationTimeoutError     the operations were still pending at the deadline

Only ``JamboAPIError`` and its subclasses stand for a real response: they carry its status, the
service's code and message, the request id and the call (``METHOD /path``), so a log line says what
failed and how to find it on the service side. Lookups and refusals are the provider's own
decisions and say so; they carry no status or path of a request that was never made.

Errors of a request (``JamboAPIError``, ``JamboTransportError``) also say where it went: the
connection id and the base URL it used (an :class:`ApiTarget`), and what to check when the answer
points at the connection (a 401, a 403, no answer at all).

No error ever carries the API key or a role password: messages are built from the response body,
the concrete path, the connection id and its base URL only, and :func:`redact` removes any known
secret defensively.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from airflow.providers.common.compat.sdk import AirflowException


class OperationRecord(Protocol):
    """What an error keeps of an operation (``api_models.Operation`` is one). A protocol, so this
    module, the bottom of the provider, names no module above it."""

    @property
    def id(self) -> str: ...

    @property
    def action(self) -> str: ...

    @property
    def error(self) -> str | None: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class ApiTarget:
    """Where a request went: the Airflow connection and the API base URL it gave (never the key).

    ``default_url`` is True when the connection has no host, so the service's public URL was used:
    the first thing to know when a request to it fails from a machine meant to use an emulator.
    """

    conn_id: str
    base_url: str
    default_url: bool = False

    def describe(self) -> str:
        if self.default_url:
            return (
                f"connection {self.conn_id!r} has no host, so it uses the service's default URL "
                f"{self.base_url}"
            )
        return f"connection {self.conn_id!r} at {self.base_url}"

    def unreachable_hint(self) -> str:
        """What to check when nothing answered at this target."""
        if self.default_url:
            return (
                "check this machine's network access to it (DNS, proxy, firewall), or set the "
                "connection's host to the API you meant (for a local emulator: http://127.0.0.1:PORT)"
            )
        return (
            "check the connection's host and port, and that the server is running and reachable "
            "from this machine"
        )


#: What to check when the service refused the connection's credentials, by status.
_STATUS_HINTS: dict[int, str] = {
    401: "check the API key in the connection's password",
    403: "the API key is not allowed to do this: check its scope (personal, organization or project "
    "key) and the connection's org_id",
}


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every non-empty secret in ``text`` with ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class JamboError(AirflowException):
    """Base class of every error this provider raises."""


class JamboConfigError(JamboError, ValueError):
    """Bad connection settings or arguments, raised before any request is sent."""


class JamboAPIError(JamboError):
    """The service answered with an error status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str = "",
        request_id: str | None = None,
        method: str = "",
        path: str = "",
        retry_after: float | None = None,
        target: ApiTarget | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.method = method
        self.path = path
        #: Seconds the service asked us to wait (``Retry-After``), when it said so.
        self.retry_after = retry_after
        #: The connection and base URL the request went to (None for errors built without one).
        self.target = target
        super().__init__(self._text())

    def _text(self) -> str:
        call = f"{self.method} {self.path} -> " if self.method else ""
        code = f" [{self.code}]" if self.code else ""
        rid = f" (request id {self.request_id})" if self.request_id else ""
        where = ""
        if self.target is not None:
            hint = _STATUS_HINTS.get(self.status)
            where = f"; {self.target.describe()}" + (f": {hint}" if hint else "")
        return f"{call}{self.status} {self.message}{code}{rid}{where}"

    def __str__(self) -> str:
        return self._text()

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments: the default exception pickling would lose them.
        return (
            _rebuild_api_error,
            (
                type(self),
                self.status,
                self.message,
                self.code,
                self.request_id,
                self.method,
                self.path,
                self.retry_after,
                self.target,
            ),
        )


def _rebuild_api_error(
    cls: type[JamboAPIError],
    status: int,
    message: str,
    code: str,
    request_id: str | None,
    method: str,
    path: str,
    retry_after: float | None,
    target: ApiTarget | None = None,
) -> JamboAPIError:
    return cls(
        status,
        message,
        code=code,
        request_id=request_id,
        method=method,
        path=path,
        retry_after=retry_after,
        target=target,
    )


class JamboAuthError(JamboAPIError):
    """401 (missing or bad API key) or 403 (not allowed for this key or plan)."""


class JamboNotFoundError(JamboAPIError):
    """404: the project, branch, endpoint, ... does not exist (or the key cannot see it)."""


class JamboConflictError(JamboAPIError):
    """409: e.g. ``branch already exists``."""


class JamboLockedError(JamboAPIError):
    """423: the project has a conflicting operation in flight; always safe to retry."""


class JamboRateLimitedError(JamboAPIError):
    """429: too many requests; ``retry_after`` holds the service's hint when it sent one."""


class JamboServerError(JamboAPIError):
    """5xx, including the CDN's 524 origin timeout."""


class JamboTransportError(JamboError):
    """No response: connect/read error, timeout, or a connection closed without an answer.

    ``sent`` is False only when the request certainly never reached the service (connect
    failures); otherwise the outcome of a POST/PATCH is unknown and it must not be re-sent blindly.
    """

    def __init__(
        self,
        method: str,
        path: str,
        reason: str,
        *,
        request_id: str | None,
        sent: bool,
        target: ApiTarget | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.reason = reason
        self.request_id = request_id
        self.sent = sent
        self.target = target
        rid = f" (request id {request_id})" if request_id else ""
        where = f"; {target.describe()}: {self._hint(target)}" if target is not None else ""
        super().__init__(f"{method} {path} -> no response: {reason}{rid}{where}")

    def _hint(self, target: ApiTarget) -> str:
        return target.unreachable_hint()

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_transport_error,
            (self.method, self.path, self.reason, self.request_id, self.sent, self.target),
        )


class JamboTLSError(JamboTransportError):
    """The TLS handshake failed (e.g. https to a server that speaks plain http, or an untrusted
    certificate). Never retried: it does not heal by trying again."""

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_tls_error, (self.method, self.path, self.reason, self.request_id, self.target))

    def __init__(
        self,
        method: str,
        path: str,
        reason: str,
        *,
        request_id: str | None = None,
        sent: bool = False,
        target: ApiTarget | None = None,
    ) -> None:
        super().__init__(method, path, reason, request_id=request_id, sent=sent, target=target)

    def _hint(self, target: ApiTarget) -> str:
        # The reason already says what to check about TLS; where it went is what it lacks.
        return "check the scheme (http or https) of the connection's host"


def _rebuild_transport_error(
    method: str, path: str, reason: str, request_id: str | None, sent: bool, target: ApiTarget | None = None
) -> JamboTransportError:
    return JamboTransportError(method, path, reason, request_id=request_id, sent=sent, target=target)


def _rebuild_tls_error(
    method: str, path: str, reason: str, request_id: str | None, target: ApiTarget | None
) -> JamboTLSError:
    return JamboTLSError(method, path, reason, request_id=request_id, target=target)


class JamboLookupError(JamboError):
    """The provider looked for something by name (after reading the service's lists) and it is not
    there. Not a 404: no request for that resource was made."""


class JamboBranchNotFound(JamboLookupError):
    """No branch with that id or exact name in the project."""

    def __init__(self, message: str, *, name: str = "", project_id: str = "") -> None:
        self.name = name
        self.project_id = project_id
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_branch_not_found, (str(self), self.name, self.project_id))


def _rebuild_branch_not_found(message: str, name: str, project_id: str) -> JamboBranchNotFound:
    return JamboBranchNotFound(message, name=name, project_id=project_id)


class JamboRefusedError(JamboError):
    """The provider refused to act on what it read from the service: e.g. the default or a
    protected branch named for deletion, or a branch with children. Nothing was changed."""


class JamboBranchConflict(JamboRefusedError):
    """A branch of the requested name exists but is not what was asked for (another parent, not
    a schema-only root, or ``if_exists='fail'``), so it is not adopted."""


class JamboOperationFailedError(JamboError):
    """One or more operations ended in failure; ``operations`` holds all of them."""

    def __init__(self, message: str, operations: Sequence[OperationRecord] = ()) -> None:
        self.operations = list(operations)
        super().__init__(message)


class JamboOperationTimeoutError(JamboError):
    """Operations were still in flight when the timeout or deadline passed."""

    def __init__(self, message: str, operations: Sequence[OperationRecord] = ()) -> None:
        self.operations = list(operations)
        super().__init__(message)


#: Exception class per HTTP status (5xx handled separately).
STATUS_ERRORS: dict[int, type[JamboAPIError]] = {
    401: JamboAuthError,
    403: JamboAuthError,
    404: JamboNotFoundError,
    409: JamboConflictError,
    423: JamboLockedError,
    429: JamboRateLimitedError,
}


def error_class_for(status: int) -> type[JamboAPIError]:
    if status >= 500:
        return JamboServerError
    return STATUS_ERRORS.get(status, JamboAPIError)


__all__ = [
    "ApiTarget",
    "JamboAPIError",
    "JamboAuthError",
    "JamboBranchConflict",
    "JamboBranchNotFound",
    "JamboConfigError",
    "JamboConflictError",
    "JamboError",
    "JamboLockedError",
    "JamboLookupError",
    "JamboNotFoundError",
    "JamboOperationFailedError",
    "JamboOperationTimeoutError",
    "JamboRateLimitedError",
    "JamboRefusedError",
    "JamboServerError",
    "JamboTLSError",
    "JamboTransportError",
    "error_class_for",
    "redact",
]
