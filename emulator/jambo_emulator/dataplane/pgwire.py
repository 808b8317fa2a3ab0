"""Just enough of the PostgreSQL wire protocol (v3) for the proxy and a tiny admin client.

The admin client speaks the simple-query protocol over the server's private Unix socket with
``trust`` authentication. It keeps the emulator free of a database-driver dependency: the data
plane only runs DDL and a few catalog queries.
"""

from __future__ import annotations

import contextlib
import socket
import struct

from jambo_emulator.dataplane.base import DataPlaneError

PROTOCOL_3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102

# SQLSTATEs the data plane reacts to.
OBJECT_IN_USE = "55006"
DUPLICATE_OBJECT = "42710"
UNDEFINED_OBJECT = "42704"
DEPENDENT_OBJECTS_STILL_EXIST = "2BP01"


class PgServerError(DataPlaneError):
    """An ErrorResponse from the server; ``sqlstate`` is its five-character code."""

    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(f"{message} (SQLSTATE {sqlstate})")
        self.sqlstate = sqlstate
        self.pg_message = message


def quote_ident(name: str) -> str:
    """Quote an identifier for SQL text (names come from API requests, so always quote)."""
    if "\x00" in name:
        raise DataPlaneError("names must not contain NUL characters")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote a string literal (the server runs with standard_conforming_strings = on)."""
    if "\x00" in value:
        raise DataPlaneError("strings must not contain NUL characters")
    return "'" + value.replace("'", "''") + "'"


def message(kind: bytes, payload: bytes) -> bytes:
    """Frame one protocol message: type byte, int32 length (including itself), payload."""
    return kind + struct.pack("!I", len(payload) + 4) + payload


def startup_message(params: dict[str, str], protocol: int = PROTOCOL_3) -> bytes:
    body = struct.pack("!I", protocol)
    for key, value in params.items():
        body += key.encode() + b"\x00" + value.encode() + b"\x00"
    body += b"\x00"
    return struct.pack("!I", len(body) + 4) + body


def parse_startup_params(body: bytes) -> dict[str, str]:
    """Parameters of a StartupMessage body (after the length and protocol words)."""
    parts = body.split(b"\x00")
    params: dict[str, str] = {}
    for i in range(0, len(parts) - 1, 2):
        if not parts[i]:
            break
        params[parts[i].decode("utf-8", "replace")] = parts[i + 1].decode("utf-8", "replace")
    return params


def error_response(sqlstate: str, text: str, severity: str = "FATAL") -> bytes:
    fields = b""
    for code, value in (("S", severity), ("V", severity), ("C", sqlstate), ("M", text)):
        fields += code.encode() + value.encode() + b"\x00"
    return message(b"E", fields + b"\x00")


def parse_error_fields(payload: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in payload.split(b"\x00"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return fields


class AdminConnection:
    """A blocking simple-query connection over a Unix socket (``trust`` auth). Not thread-safe."""

    def __init__(self, socket_path: str, user: str, database: str, timeout: float = 60.0) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        self._buffer = b""
        try:
            self._sock.connect(socket_path)
            self._sock.sendall(startup_message({"user": user, "database": database}))
            self._read_until_ready()
        except BaseException:
            self._sock.close()
            raise

    def execute(self, sql: str) -> list[tuple[str | None, ...]]:
        """Run ``sql`` (one or more statements); rows of the last result as text, or raise."""
        self._sock.sendall(message(b"Q", sql.encode() + b"\x00"))
        return self._read_until_ready()

    def close(self) -> None:
        # The server may already be gone; closing is all that is left then.
        with contextlib.suppress(OSError):
            self._sock.sendall(message(b"X", b""))
        self._sock.close()

    def _read_until_ready(self) -> list[tuple[str | None, ...]]:
        rows: list[tuple[str | None, ...]] = []
        error: PgServerError | None = None
        while True:
            kind, payload = self._read_message()
            if kind == b"Z":
                if error is not None:
                    raise error
                return rows
            if kind == b"T":
                rows = []
            elif kind == b"D":
                rows.append(_parse_data_row(payload))
            elif kind == b"E":
                fields = parse_error_fields(payload)
                error = PgServerError(fields.get("C", "XX000"), fields.get("M", "unknown error"))
            elif kind == b"R" and struct.unpack("!I", payload[:4])[0] != 0:
                raise DataPlaneError("the private server asked the admin client for a password")
            # Other messages (ParameterStatus, BackendKeyData, notices, CommandComplete) carry
            # nothing the admin client needs.

    def _read_message(self) -> tuple[bytes, bytes]:
        header = self._read_exact(5)
        length = struct.unpack("!I", header[1:5])[0]
        return header[:1], self._read_exact(length - 4)

    def _read_exact(self, size: int) -> bytes:
        while len(self._buffer) < size:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise DataPlaneError("the private PostgreSQL server closed the admin connection")
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def _parse_data_row(payload: bytes) -> tuple[str | None, ...]:
    count = struct.unpack("!H", payload[:2])[0]
    offset = 2
    values: list[str | None] = []
    for _ in range(count):
        length = struct.unpack("!i", payload[offset : offset + 4])[0]
        offset += 4
        if length < 0:
            values.append(None)
        else:
            values.append(payload[offset : offset + length].decode())
            offset += length
    return tuple(values)
