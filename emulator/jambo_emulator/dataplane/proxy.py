"""One TCP proxy for all endpoints in front of the branches' servers (one asyncio loop, own thread).

A client connects to the one port with the logical names from the API's URIs (user
``neondb_owner``, database ``neondb``) and the endpoint's host as TLS server name (SNI; libpq
sends it for a host name even with ``hostaddr``), as the real service routes; without SNI the
endpoint comes from ``options=endpoint=<id>`` as on the service. The proxy:

1. answers GSSENCRequest with 'N' and SSLRequest with 'S' and TLS (self-signed; see ``tls``);
   plain connections are accepted too;
2. verifies the branch role's password with SCRAM-SHA-256 itself (passwords are per branch);
3. connects to the Unix socket (trust) of the server of the endpoint's branch, with the user name
   rewritten for read-only endpoints (``neondb_owner~ro``), then relays bytes both ways. The
   server's AuthenticationOk, parameters and everything after flow through unchanged.

CancelRequests are forwarded to every branch server (the backend key data the client holds is
one server's; the others ignore a key that is not theirs).
Suspending or deleting an endpoint drops its open sessions (``drop_sessions``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import jambo_emulator.dataplane.pgwire as pgwire
from jambo_emulator.dataplane.base import DataPlaneError
from jambo_emulator.dataplane.scram import (
    MECHANISM,
    MECHANISM_PLUS,
    ScramError,
    ScramExchange,
)
from jambo_emulator.dataplane.tls import ServerTls

_MAX_STARTUP = 10_000
_AUTH_SASL, _AUTH_SASL_CONTINUE, _AUTH_SASL_FINAL = 10, 11, 12
# The real service reads the endpoint from `options=endpoint=ep-...` when a client sends no SNI.
_ENDPOINT_OPTION = re.compile(r"(^|\s)(--)?endpoint=(\S*)")

T = TypeVar("T")
_CLIENT_GONE = (ConnectionError, OSError, asyncio.IncompleteReadError, ssl.SSLError)


@dataclass(frozen=True)
class Route:
    """Where a login goes: ``password`` None = no such role on the branch (auth fails);
    ``database`` None = no such database on the branch (reported after a good password)."""

    database: str | None
    password: str | None = field(repr=False)
    read_only: bool
    #: The role the session logs into the server as (the branch's role, ``~ro`` when read-only).
    user: str = ""
    #: The endpoint's key (its sessions are dropped together); ``running`` False: refused.
    key: str = ""
    running: bool = True
    #: The Unix socket of the server holding the branch's databases.
    socket: str = ""


#: (endpoint id, logical user, logical database) -> Route, or None when there is no such endpoint.
Resolver = Callable[[str, str, str], "Route | None"]
#: The sockets of every server a CancelRequest may be meant for.
Sockets = Callable[[], list[str]]


class _Refused(Exception):
    def __init__(self, sqlstate: str, text: str) -> None:
        super().__init__(text)
        self.sqlstate = sqlstate
        self.text = text


class ProxyHub:
    def __init__(
        self,
        tls: ServerTls,
        resolve: Resolver,
        sockets: Sockets,
        *,
        bind_host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._sockets = sockets
        self._ssl = tls.context
        self._ssl.sni_callback = self._remember_sni
        self._end_point = tls.end_point
        self._resolve = resolve
        self._bind = (bind_host, port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="jambo-dataplane-proxy", daemon=True
        )
        self._sock: socket.socket | None = None
        self._accept_task: asyncio.Task[None] | None = None
        self._sessions: dict[str, set[asyncio.Task[None]]] = {}  # endpoint key -> sessions (loop)
        self._pending: set[asyncio.Task[None]] = set()  # not routed yet (loop thread)
        self._sni: dict[int, str] = {}  # id(SSLObject) -> server name, during a handshake

    @property
    def port(self) -> int:
        if self._sock is None:
            raise DataPlaneError("the data-plane proxy is not listening (call start() first)")
        port: int = self._sock.getsockname()[1]
        return port

    def start(self) -> None:
        family = socket.AF_INET6 if ":" in self._bind[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(self._bind)
            sock.listen(512)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise DataPlaneError(
                f"cannot listen for the data plane on {self._bind[0]}:{self._bind[1]}: {exc}"
            ) from exc
        self._sock = sock
        self._thread.start()
        self._call(self._start_accepting())

    def stop(self) -> None:
        if self._thread.is_alive():
            self._call(self._close_all())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()
        if self._sock is not None:
            self._sock.close()

    def drop_sessions(self, key: str) -> None:
        """Close every open session of endpoint ``key`` (suspend, delete, moved to a branch)."""
        self._call(self._drop(key))

    def _remember_sni(self, ssl_object: Any, server_name: str | None, _context: ssl.SSLContext) -> None:
        if server_name:
            self._sni[id(ssl_object)] = server_name

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    async def _start_accepting(self) -> None:
        self._accept_task = asyncio.create_task(self._accept())

    async def _drop(self, key: str) -> None:
        tasks = list(self._sessions.pop(key, set()))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _close_all(self) -> None:
        tasks = [t for t in (self._accept_task, *self._pending) if t is not None]
        for key in list(self._sessions):
            tasks.extend(self._sessions.pop(key))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._sock is not None
        while True:
            conn, _ = await loop.sock_accept(self._sock)
            # Small protocol messages must not wait for delayed ACKs (Nagle): ~40 ms per login.
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = asyncio.create_task(self._session(conn))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    def _track(self, key: str) -> None:
        """Move the current session from pending to its endpoint's set."""
        task = asyncio.current_task()
        assert task is not None
        self._pending.discard(task)
        sessions = self._sessions.setdefault(key, set())
        sessions.add(task)
        task.add_done_callback(sessions.discard)

    async def _session(self, conn: socket.socket) -> None:
        writers: list[asyncio.StreamWriter] = []
        try:
            streams = await self._negotiate(conn)
            if streams is None:
                return
            reader, writer, packet, server_name = streams
            writers.append(writer)
            try:
                backend = await self._login(server_name, reader, writer, packet)
            except _Refused as refusal:
                writer.write(pgwire.error_response(refusal.sqlstate, refusal.text))
                await _close_gracefully(writer)  # abort() could drop the error still in TLS buffers
                return
            if backend is None:
                return
            writers.append(backend[1])
            await _relay(reader, writer, *backend)
        except _CLIENT_GONE:
            pass  # a client that hangs up mid-handshake is not an error of the emulator
        finally:
            for w in writers:
                w.transport.abort()
            conn.close()

    async def _negotiate(
        self, conn: socket.socket
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes, str | None] | None:
        """Handle SSL/GSS requests and cancels; streams plus the first real packet, or None."""
        loop = asyncio.get_running_loop()
        while True:
            head = await _recv_exact(loop, conn, 8)
            length, code = struct.unpack("!II", head)
            if code == pgwire.GSSENC_REQUEST:
                await loop.sock_sendall(conn, b"N")
                continue
            if code == pgwire.SSL_REQUEST:
                await loop.sock_sendall(conn, b"S")
                reader, writer = await _streams(conn, self._ssl)
                server_name = self._sni.pop(id(writer.get_extra_info("ssl_object")), None)
                size = struct.unpack("!I", await reader.readexactly(4))[0]
                if not 8 <= size <= _MAX_STARTUP:
                    return None
                packet = struct.pack("!I", size) + await reader.readexactly(size - 4)
            else:
                if not 8 <= length <= _MAX_STARTUP:
                    return None
                packet = head + await _recv_exact(loop, conn, length - 8)
                reader, writer = await _streams(conn, None)
                server_name = None
            if struct.unpack("!I", packet[4:8])[0] == pgwire.CANCEL_REQUEST:
                await self._forward_cancel(packet)
                # A clean close (TLS close_notify included): libpq reports an abort as a failure.
                await _close_gracefully(writer)
                return None
            return reader, writer, packet, server_name

    async def _login(
        self,
        server_name: str | None,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        packet: bytes,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        protocol = struct.unpack("!I", packet[4:8])[0]
        if protocol >> 16 != 3:
            raise _Refused("0A000", f"unsupported frontend protocol {protocol >> 16}.{protocol & 0xFFFF}")
        params = pgwire.parse_startup_params(packet[8:])
        user = params.get("user", "")
        if not user:
            raise _Refused("28000", "no PostgreSQL user name specified in startup packet")
        if "replication" in params:
            raise _Refused("28000", "replication connections are not supported by the emulator")
        database = params.get("database") or user
        endpoint_id = _endpoint_id(server_name, params.get("options", ""))
        if endpoint_id is None:
            raise _Refused("08004", _NO_ENDPOINT)
        route = self._resolve(endpoint_id, user, database)
        if route is None:
            raise _Refused("08004", f'endpoint "{endpoint_id}" not found')
        if not route.running:
            raise _Refused(
                "57P03",
                f'endpoint "{endpoint_id}" is not running: connection refused until its compute starts',
            )
        self._track(route.key)
        tls = writer.get_extra_info("ssl_object") is not None
        if not await _authenticate(reader, writer, route.password, self._end_point if tls else None):
            raise _Refused("28P01", f'password authentication failed for user "{user}"')
        if route.database is None:
            raise _Refused("3D000", f'database "{database}" does not exist')
        params["database"] = route.database
        params["user"] = route.user or user
        options = _ENDPOINT_OPTION.sub(" ", params.get("options", "")).strip()
        if options:
            params["options"] = options
        else:
            params.pop("options", None)
        if route.read_only:
            params["default_transaction_read_only"] = "on"
        try:
            backend_reader, backend_writer = await asyncio.open_unix_connection(route.socket)
        except OSError as exc:
            raise _Refused("57P03", "the database server behind this endpoint is not available") from exc
        backend_writer.write(pgwire.startup_message(params, protocol))
        return backend_reader, backend_writer

    async def _forward_cancel(self, packet: bytes) -> None:
        for path in self._sockets():
            with contextlib.suppress(*_CLIENT_GONE):
                _, writer = await asyncio.open_unix_connection(path)
                writer.write(packet)
                await writer.drain()
                writer.close()


_NO_ENDPOINT = (
    "Endpoint ID is not specified. Either please upgrade the postgres client library (libpq) for "
    "SNI support or pass the endpoint ID (first part of the domain name) as a parameter: "
    "'?options=endpoint%3D<endpoint-id>'"
)


def _endpoint_id(server_name: str | None, options: str) -> str | None:
    """The endpoint a login is for: the first label of the TLS server name (``ep-x`` or
    ``ep-x-pooler``), else ``options=endpoint=<id>``."""
    if server_name:
        first = server_name.split(".", 1)[0]
        return first.removesuffix("-pooler")
    match = _ENDPOINT_OPTION.search(options)
    return match.group(3) if match and match.group(3) else None


async def _close_gracefully(writer: asyncio.StreamWriter) -> None:
    """Flush, say goodbye (TLS close_notify) and close; the caller aborts whatever is left."""
    writer.close()
    with contextlib.suppress(*_CLIENT_GONE, asyncio.TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 5)


async def _authenticate(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    password: str | None,
    end_point: bytes | None,
) -> bool:
    """SCRAM-SHA-256 towards the client, also -PLUS when ``end_point`` (TLS) is given; True when
    the password is right."""
    offered = [MECHANISM_PLUS, MECHANISM] if end_point is not None else [MECHANISM]
    names = b"".join(name.encode() + b"\x00" for name in offered) + b"\x00"
    writer.write(pgwire.message(b"R", struct.pack("!I", _AUTH_SASL) + names))
    await writer.drain()
    try:
        kind, payload = await _read_message(reader)
        if kind != b"p":
            raise _Refused("08P01", "expected SASL response")
        mechanism, _, rest = payload.partition(b"\x00")
        if mechanism.decode(errors="replace") not in offered:
            raise _Refused("28000", "client selected an invalid SASL authentication mechanism")
        exchange = ScramExchange(password, mechanism.decode(), end_point)
        size = struct.unpack("!i", rest[:4])[0]
        server_first = exchange.server_first(rest[4 : 4 + size])
        writer.write(pgwire.message(b"R", struct.pack("!I", _AUTH_SASL_CONTINUE) + server_first))
        await writer.drain()
        kind, payload = await _read_message(reader)
        if kind != b"p":
            raise _Refused("08P01", "expected SASL response")
        server_final = exchange.server_final(payload)
    except (ScramError, UnicodeDecodeError, struct.error) as exc:
        raise _Refused("08P01", f"malformed SCRAM message: {exc}") from exc
    if server_final is None:
        return False
    writer.write(pgwire.message(b"R", struct.pack("!I", _AUTH_SASL_FINAL) + server_final))
    await writer.drain()
    return True


async def _relay(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    backend_reader: asyncio.StreamReader,
    backend_writer: asyncio.StreamWriter,
) -> None:
    tasks = [
        asyncio.create_task(_pipe(client_reader, backend_writer)),
        asyncio.create_task(_pipe(backend_reader, client_writer)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(*_CLIENT_GONE):
        while True:
            data = await reader.read(65536)
            if not data:
                return
            writer.write(data)
            await writer.drain()


async def _read_message(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    header = await reader.readexactly(5)
    length = struct.unpack("!I", header[1:5])[0]
    if not 4 <= length <= _MAX_STARTUP:
        raise _Refused("08P01", "invalid message length during authentication")
    return header[:1], await reader.readexactly(length - 4)


async def _recv_exact(loop: asyncio.AbstractEventLoop, conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await loop.sock_recv(conn, size - len(data))
        if not chunk:
            raise ConnectionResetError("client closed the connection")
        data += chunk
    return data


async def _streams(
    conn: socket.socket, context: ssl.SSLContext | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Stream reader/writer over an accepted socket, optionally after a server-side TLS handshake.

    Built by hand (as ``asyncio.open_connection`` does) because ``StreamWriter.start_tls`` needs
    Python 3.11 and the TLS upgrade happens after plain-text negotiation.
    """
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**16)
    protocol = asyncio.StreamReaderProtocol(reader)
    if context is None:
        transport, _ = await loop.connect_accepted_socket(lambda: protocol, conn)
    else:
        transport, _ = await loop.connect_accepted_socket(
            lambda: protocol, conn, ssl=context, ssl_handshake_timeout=15
        )
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)
