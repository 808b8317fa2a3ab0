"""Server side of SCRAM-SHA-256 (RFC 5802/7677), as PostgreSQL and the real service speak it.

The proxy verifies a branch role's password itself (passwords are per branch), so clients
authenticate exactly as against the real service. Over TLS both ``SCRAM-SHA-256-PLUS`` (channel
binding ``tls-server-end-point``, RFC 5929, so ``channel_binding=require`` works) and plain
``SCRAM-SHA-256`` are offered, as PostgreSQL does; without TLS only the plain one.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

MECHANISM = "SCRAM-SHA-256"
MECHANISM_PLUS = "SCRAM-SHA-256-PLUS"
CHANNEL_BINDING_TYPE = "tls-server-end-point"
ITERATIONS = 4096


class ScramError(Exception):
    """The client's SCRAM message is malformed (a protocol violation, not a wrong password)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _attributes(text: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for part in text.split(","):
        if len(part) < 2 or part[1] != "=":
            raise ScramError(f"malformed SCRAM attribute {part[:10]!r}")
        attrs[part[0]] = part[2:]
    return attrs


@functools.lru_cache(maxsize=4096)
def _salted_password(password: str) -> tuple[bytes, bytes]:
    """Salt and SaltedPassword, fixed per password as PostgreSQL stores them per role.

    Cached: PBKDF2 costs milliseconds of the proxies' event loop on every login otherwise.
    """
    salt = secrets.token_bytes(16)
    return salt, hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, ITERATIONS)


class ScramExchange:
    """One authentication attempt. ``password`` None makes every proof fail (unknown role) while
    the exchange looks the same to the client, as PostgreSQL does.

    ``mechanism`` is what the client chose; ``end_point`` the certificate's channel-binding data
    when the connection is TLS (PLUS was offered), None otherwise."""

    def __init__(
        self, password: str | None, mechanism: str = MECHANISM, end_point: bytes | None = None
    ) -> None:
        if mechanism not in (MECHANISM, MECHANISM_PLUS) or (
            mechanism == MECHANISM_PLUS and end_point is None
        ):
            raise ScramError(f"client selected an invalid SASL authentication mechanism {mechanism!r}")
        secret = password if password is not None else secrets.token_hex(16)
        self._salt, self._salted = _salted_password(secret)
        self._known = password is not None
        self._plus = mechanism == MECHANISM_PLUS
        self._end_point = end_point
        self._binding = b""
        self._nonce = ""
        self._gs2_header = ""
        self._client_first_bare = ""
        self._server_first = ""

    def server_first(self, client_first: bytes) -> bytes:
        text = client_first.decode("utf-8")
        try:
            cbind_flag, _authzid, bare = text.split(",", 2)
        except ValueError as exc:
            raise ScramError("malformed SCRAM client-first message") from exc
        if self._plus:
            if cbind_flag != f"p={CHANNEL_BINDING_TYPE}":
                raise ScramError(f"{MECHANISM_PLUS} needs channel binding {CHANNEL_BINDING_TYPE}")
            assert self._end_point is not None
            self._binding = self._end_point
        elif cbind_flag.startswith("p="):
            raise ScramError(f"channel binding was requested with {MECHANISM}; use {MECHANISM_PLUS}")
        elif cbind_flag == "y" and self._end_point is not None:
            # The client could bind but believes the server cannot, yet PLUS was offered: a
            # downgrade in between (RFC 5802 6).
            raise ScramError("channel binding downgrade detected (PLUS was offered)")
        elif cbind_flag not in ("n", "y"):
            raise ScramError(f"malformed SCRAM channel-binding flag {cbind_flag[:20]!r}")
        attrs = _attributes(bare)
        if "r" not in attrs:
            raise ScramError("SCRAM client-first message has no nonce")
        self._gs2_header = f"{cbind_flag},{_authzid},"
        self._client_first_bare = bare
        self._nonce = attrs["r"] + _b64(secrets.token_bytes(18))
        self._server_first = f"r={self._nonce},s={_b64(self._salt)},i={ITERATIONS}"
        return self._server_first.encode("ascii")

    def server_final(self, client_final: bytes) -> bytes | None:
        """The server-final message when the proof is right, None when the password is wrong."""
        text = client_final.decode("utf-8")
        without_proof, sep, proof_b64 = text.rpartition(",p=")
        if not sep:
            raise ScramError("SCRAM client-final message has no proof")
        attrs = _attributes(without_proof)
        if attrs.get("r") != self._nonce:
            raise ScramError("SCRAM nonce mismatch")
        if attrs.get("c") != _b64(self._gs2_header.encode("utf-8") + self._binding):
            raise ScramError("SCRAM channel-binding data mismatch")
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        client_key = hmac.new(self._salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        try:
            proof = base64.b64decode(proof_b64, validate=True)
        except ValueError as exc:
            raise ScramError("SCRAM proof is not base64") from exc
        if len(proof) != len(signature):
            return None
        recovered = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        if not self._known or not hmac.compare_digest(hashlib.sha256(recovered).digest(), stored_key):
            return None
        server_key = hmac.new(self._salted, b"Server Key", hashlib.sha256).digest()
        server_signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
        return f"v={_b64(server_signature)}".encode("ascii")
