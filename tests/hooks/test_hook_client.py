"""ApiRequest, base-URL normalisation, Retry-After parsing and response → error mapping."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from airflow_provider_jambo.exceptions import (
    JamboAPIError,
    JamboAuthError,
    JamboConfigError,
    JamboConflictError,
    JamboLockedError,
    JamboNotFoundError,
    JamboRateLimitedError,
    JamboServerError,
    JamboTransportError,
)
from airflow_provider_jambo.hooks.client import (
    DEFAULT_BASE_URL,
    ApiRequest,
    BearerAuth,
    error_from_response,
    normalize_base_url,
    parse_retry_after,
)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (None, DEFAULT_BASE_URL),
        ("", DEFAULT_BASE_URL),
        ("console.neon.tech", DEFAULT_BASE_URL),
        ("https://console.neon.tech", DEFAULT_BASE_URL),
        ("https://console.neon.tech/", DEFAULT_BASE_URL),
        ("https://console.neon.tech/api/v2/", DEFAULT_BASE_URL),
        ("HTTPS://console.neon.tech/api/v2", DEFAULT_BASE_URL),
        ("https://proxy.example.com:8443/jambo", "https://proxy.example.com:8443/jambo/api/v2"),
        ("http://127.0.0.1:8080/api/v2", "http://127.0.0.1:8080/api/v2"),
        ("127.0.0.1:8080", "http://127.0.0.1:8080/api/v2"),
        ("http://localhost:1234", "http://localhost:1234/api/v2"),
        ("http://[::1]:9000/api/v2", "http://[::1]:9000/api/v2"),
    ],
)
def test_normalize_base_url(host: str | None, expected: str) -> None:
    assert normalize_base_url(host) == expected


def test_normalize_base_url_uses_port_and_schema_of_uri_connections() -> None:
    # `jambo://:key@127.0.0.1:8080/api%2Fv2` splits into host, port and schema.
    assert normalize_base_url("127.0.0.1", port=8080, schema="api/v2") == "http://127.0.0.1:8080/api/v2"


@pytest.mark.parametrize("host", ["http://console.neon.tech", "http://10.0.0.5:80/api/v2", "example.org:80"])
def test_plain_http_refused_off_loopback(host: str) -> None:
    if "://" not in host:
        # Without a scheme a public host gets https: fine.
        assert normalize_base_url(host).startswith("https://")
        return
    with pytest.raises(JamboConfigError, match="plain http is only allowed for a loopback") as err:
        normalize_base_url(host, conn_id="my_conn")
    assert "my_conn" in str(err.value)


def test_other_schemes_refused() -> None:
    with pytest.raises(JamboConfigError, match="must use https"):
        normalize_base_url("ftp://console.neon.tech")


def test_api_request_formats_and_validates_path() -> None:
    req: ApiRequest[object] = ApiRequest(
        "get",
        "/projects/{project_id}/branches/{branch_id}/roles/{role_name}",
        {"project_id": "p-1", "branch_id": "br-a", "role_name": "we ird/name"},
        query={"limit": 5, "cursor": None, "pooled": True},
    )
    assert req.method == "GET"
    assert req.url_path == "/projects/p-1/branches/br-a/roles/we%20ird%2Fname"
    assert req.params == {"limit": "5", "pooled": "true"}
    assert req.safe_to_resend
    assert not ApiRequest("POST", "/projects").safe_to_resend
    assert ApiRequest("POST", "/x", idempotent=True).safe_to_resend
    assert not ApiRequest("DELETE", "/x", idempotent=False).safe_to_resend


@pytest.mark.parametrize("bad", ["", "UPPER", "../etc", "a" * 61, "br_x"])
def test_api_request_rejects_bad_ids_before_sending(bad: str) -> None:
    with pytest.raises(JamboConfigError, match="project_id must be a Jambo id"):
        ApiRequest("GET", "/projects/{project_id}", {"project_id": bad})


def test_api_request_needs_every_path_value() -> None:
    with pytest.raises(JamboConfigError, match="missing path values"):
        ApiRequest("GET", "/projects/{project_id}/branches/{branch_id}", {"project_id": "p"})


def test_parse_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3", now) == 3.0
    assert parse_retry_after(" 1.5 ", now) == 1.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=7), usegmt=True), now) == 7.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=7), usegmt=True), now) == 0.0
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("soon", now) is None


def _response(status: int, body: object = None, headers: dict[str, str] | None = None) -> httpx.Response:
    request = httpx.Request(
        "POST", "http://127.0.0.1/api/v2/projects/p/branches", headers={"X-Request-ID": "mine"}
    )
    if body is None:
        return httpx.Response(status, headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, JamboAuthError),
        (403, JamboAuthError),
        (404, JamboNotFoundError),
        (409, JamboConflictError),
        (423, JamboLockedError),
        (429, JamboRateLimitedError),
        (500, JamboServerError),
        (524, JamboServerError),
        (400, JamboAPIError),
        (422, JamboAPIError),
    ],
)
def test_error_mapping_types(status: int, cls: type[JamboAPIError]) -> None:
    err = error_from_response(ApiRequest("POST", "/x"), _response(status, {"code": "", "message": "m"}))
    assert type(err) is cls
    assert err.status == status


def test_error_text_names_call_status_message_and_request_id() -> None:
    req = ApiRequest("POST", "/projects/{project_id}/branches", {"project_id": "p"})
    err = error_from_response(
        req, _response(409, {"code": "", "message": "branch already exists", "request_id": "rid-1"})
    )
    assert str(err) == "POST /projects/p/branches -> 409 branch already exists (request id rid-1)"
    assert (err.method, err.path, err.code, err.request_id) == ("POST", "/projects/p/branches", "", "rid-1")


def test_error_request_id_falls_back_to_header_then_to_ours() -> None:
    req = ApiRequest("GET", "/x")
    from_header = error_from_response(req, _response(500, {"message": "m"}, {"x-neon-ret-request-id": "srv"}))
    assert from_header.request_id == "srv"
    assert error_from_response(req, _response(502)).request_id == "mine"


def test_error_without_json_body_uses_text_or_reason() -> None:
    request = httpx.Request("GET", "http://127.0.0.1/api/v2/x")
    err = error_from_response(
        ApiRequest("GET", "/x"), httpx.Response(524, text="<html>origin timeout</html>", request=request)
    )
    assert "origin timeout" in err.message
    err = error_from_response(ApiRequest("GET", "/x"), httpx.Response(503, request=request))
    assert err.message == "Service Unavailable"


def test_error_message_never_carries_a_known_secret() -> None:
    err = error_from_response(
        ApiRequest("GET", "/x"), _response(401, {"message": "bad key sk-123456"}), secrets=("sk-123456",)
    )
    assert "sk-123456" not in str(err)
    assert "***" in str(err)


def test_rate_limit_error_keeps_retry_after() -> None:
    err = error_from_response(
        ApiRequest("GET", "/x"), _response(429, {"message": "slow"}, {"Retry-After": "4"})
    )
    assert err.retry_after == 4.0


def test_errors_survive_pickling() -> None:
    err = JamboConflictError(409, "exists", code="c", request_id="r", method="POST", path="/p")
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is JamboConflictError
    assert str(copy) == str(err)
    terr = JamboTransportError("GET", "/x", "ReadTimeout", request_id="r", sent=True)
    tcopy = pickle.loads(pickle.dumps(terr))
    assert (tcopy.sent, str(tcopy)) == (True, str(terr))


def test_bearer_auth_repr_hides_key() -> None:
    auth = BearerAuth("sk-very-secret")
    assert "sk-very-secret" not in repr(auth)
    request = next(auth.auth_flow(httpx.Request("GET", "http://127.0.0.1/")))
    assert request.headers["Authorization"] == "Bearer sk-very-secret"
