"""A private, throw-away PostgreSQL server: initdb in a temp dir, Unix socket only, trust auth.

No TCP listener at all: clients reach data only through the per-endpoint proxies, which check the
branch role's password; the admin client, pg_dump and pg_restore use the socket directly. When the
emulator runs as root the server runs as the unprivileged ``postgres`` user (initdb refuses root).

Orphan guard: the postmaster is started by a small ``sh`` watchdog that blocks on a pipe from this
process. When this process ends in any way (even SIGKILL) the pipe closes, and the watchdog stops
the server (fast shutdown) and removes the temp dir. The same watchdog pauses and resumes the
server on request (``pause``/``resume``): a paused server has no processes but its files.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jambo_emulator.dataplane.base import DataPlaneError
from jambo_emulator.dataplane.pgwire import AdminConnection

ADMIN_USER = "jambo_admin"
MIN_MAJOR_VERSION = 14  # DROP DATABASE ... WITH (FORCE): 13; pg_read_all_data: 14
_REQUIRED = ("initdb", "postgres", "pg_dump", "pg_restore", "pg_basebackup", "pg_resetwal")
#: 1 MB WAL segments (initdb's default is 16): every branch has a server, and each keeps a
#: current segment, an archive and a base backup in memory-backed storage.
_WAL_SEGMENT_MB = 1
_WAL_SEGMENT_BYTES = _WAL_SEGMENT_MB * 1024**2
_MIN_TMPFS_BYTES = 2 * 1024**3  # a container's default 64 MB /dev/shm is too small
_SOCKET_PORT = 5432  # only names the socket file; the server listens on no TCP port

# Runs as the server's user. $1 = data dir, $2 = dir to remove afterwards, rest = postgres argv.
_WATCHDOG = r"""
data="$1"; base="$2"; shift 2
"$@" &
pid=$!
# Lines from the emulator: `pause` stops the server (its files stay), `resume` starts it again.
# Until the emulator closes our stdin (stop() or the emulator process died).
while read -r command; do
    case "$command" in
        pause) kill -INT "$pid" 2>/dev/null; wait "$pid"; pid="" ;;
        resume) [ -n "$pid" ] || { "$@" & pid=$!; } ;;
    esac
done
[ -z "$pid" ] || { kill -INT "$pid" 2>/dev/null; wait "$pid"; }
rm -rf "$base"
"""


@dataclass(frozen=True)
class Binaries:
    bindir: Path
    major: int

    def tool(self, name: str) -> str:
        return str(self.bindir / name)


def find_binaries() -> Binaries | None:
    """The newest usable PostgreSQL server binaries: Debian's layout, then PATH.

    ``$JAMBO_PG_BINDIR``, when set, is the only place looked at: it picks one installation among
    several, and pointing it at an empty directory runs the emulator as on a machine without
    PostgreSQL (``auto`` then falls back to the control plane alone).
    """
    candidates: list[Path] = []
    if os.environ.get("JAMBO_PG_BINDIR"):
        candidates.append(Path(os.environ["JAMBO_PG_BINDIR"]))
    else:
        debian = sorted(
            glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: _major_from_path(p) or 0, reverse=True
        )
        candidates.extend(Path(p) for p in debian)
        on_path = shutil.which("initdb")
        if on_path:
            candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in _REQUIRED):
            major = _major_from_path(str(bindir)) or _major_from_binary(bindir)
            if major is not None and major >= MIN_MAJOR_VERSION:
                return Binaries(bindir, major)
    return None


def unavailable_reason() -> str | None:
    """Why a real data plane cannot run here, or None when it can."""
    if find_binaries() is None:
        return (
            f"no PostgreSQL {MIN_MAJOR_VERSION}+ server binaries (initdb, postgres, pg_dump, pg_restore) "
            f"found in {_searched()}"
        )
    if os.geteuid() == 0 and _postgres_user() is None:
        return "running as root, and there is no 'postgres' user to run the server as (initdb refuses root)"
    return None


def _searched() -> str:
    bindir = os.environ.get("JAMBO_PG_BINDIR")
    return (
        f"$JAMBO_PG_BINDIR ({bindir})"
        if bindir
        else "/usr/lib/postgresql/*/bin or PATH ($JAMBO_PG_BINDIR unset)"
    )


def _major_from_path(path: str) -> int | None:
    parts = Path(path).parts
    if len(parts) >= 2 and parts[-2].isdigit():
        return int(parts[-2])
    return None


def _major_from_binary(bindir: Path) -> int | None:
    out = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False
    ).stdout
    for word in out.split():
        head = word.split(".")[0]
        if head.isdigit():
            return int(head)
    return None


def _postgres_user() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return None


class PostgresServer:
    """One running server. ``start()`` takes a few tenths of a second (a copy of the cached initdb
    result, then a base backup; the first initdb on a machine takes about a second).

    ``history=True`` (each branch's server) archives its WAL into ``wal_archive`` and takes a base
    backup at start, so ``recovery_server`` can bring back any moment since then.
    ``seed`` (a recovery server) fills the data dir instead of a fresh cluster; ``settings`` are
    added to the server's command line. ``wal_start``: a fresh cluster's WAL begins at the first
    segment at or after this position (LSN), so its positions come after another server's.
    """

    def __init__(
        self,
        binaries: Binaries,
        *,
        history: bool = False,
        seed: Callable[[str], None] | None = None,
        settings: dict[str, str] | None = None,
        wal_start: int = 0,
    ) -> None:
        self.binaries = binaries
        self.wal_start = wal_start
        self.base_dir = ""
        self._history = history
        self._seed = seed
        self._settings = dict(settings or {})
        self._process: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._run_as: pwd.struct_passwd | None = _postgres_user() if os.geteuid() == 0 else None

    @property
    def data_dir(self) -> str:
        return os.path.join(self.base_dir, "data")

    @property
    def wal_archive(self) -> str:
        return os.path.join(self.base_dir, "wal_archive")

    @property
    def base_backup_dir(self) -> str:
        return os.path.join(self.base_dir, "base_backup")

    @property
    def socket_dir(self) -> str:
        return self.base_dir

    @property
    def socket_path(self) -> str:
        return os.path.join(self.base_dir, f".s.PGSQL.{_SOCKET_PORT}")

    @property
    def pid(self) -> int | None:
        """The watchdog's pid (the postmaster is its child)."""
        return self._process.pid if self._process else None

    def conninfo(self, database: str) -> str:
        """libpq connection string for the admin user (used by pg_dump/pg_restore)."""
        return (
            f"host={self.socket_dir} port={_SOCKET_PORT} user={ADMIN_USER} "
            f"dbname='{_conninfo_escape(database)}'"
        )

    def start(self, timeout: float = 30.0) -> None:
        # A short path: Unix socket paths are limited to ~107 bytes.
        self.base_dir = tempfile.mkdtemp(prefix="jambo-pg-", dir=_scratch_root())
        data_dir = self.data_dir
        if self._run_as is not None:
            os.chown(self.base_dir, self._run_as.pw_uid, self._run_as.pw_gid)
        try:
            if self._seed is not None:
                self._seed(data_dir)
                if self._run_as is not None:
                    _chown_tree(data_dir, self._run_as.pw_uid, self._run_as.pw_gid)
            else:
                self._prepare_data_dir(data_dir)
                if self.wal_start:
                    self._move_wal_start(data_dir)
            if self._history:
                os.mkdir(self.wal_archive, 0o700)
                if self._run_as is not None:
                    os.chown(self.wal_archive, self._run_as.pw_uid, self._run_as.pw_gid)
            self._launch(data_dir)
            self._wait_ready(timeout)
            if self._history:
                self._take_base_backup()
        except BaseException:
            self.stop()
            raise

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self, timeout: float = 15.0) -> None:
        """Stop the server's processes (fast shutdown: sessions end) but keep its files; the
        watchdog stays, so they still go with the emulator. ``resume()`` starts it again."""
        if self._process is None or self._process.stdin is None or self._paused:
            return
        self._process.stdin.write(b"pause\n")
        self._process.stdin.flush()
        self._paused = True
        deadline = time.monotonic() + timeout
        while os.path.exists(os.path.join(self.data_dir, "postmaster.pid")):
            if time.monotonic() > deadline:
                raise DataPlaneError(f"PostgreSQL server did not stop in {timeout:.0f} s: {self._log_tail()}")
            time.sleep(0.01)

    def resume(self, timeout: float = 30.0) -> None:
        """Start a paused server again (a few tenths of a second)."""
        if self._process is None or self._process.stdin is None or not self._paused:
            return
        self._process.stdin.write(b"resume\n")
        self._process.stdin.flush()
        self._paused = False
        self._wait_ready(timeout)

    def stop(self, timeout: float = 15.0) -> None:
        process, self._process = self._process, None
        self._paused = False
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()  # the watchdog stops the server and removes the dir
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                # Last resort: the whole session (watchdog and postmaster) at once.
                os.killpg(process.pid, 9)
                process.wait(timeout)
        if self.base_dir and os.path.isdir(self.base_dir):
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def admin(self, database: str = "postgres") -> AdminConnection:
        return AdminConnection(self.socket_path, ADMIN_USER, database)

    def run_tool(self, argv: list[str], stdin: bytes | None = None, *, as_server_user: bool = False) -> bytes:
        """Run a PostgreSQL tool (pg_dump, pg_restore; initdb, pg_resetwal as the server's user);
        raise with its stderr.
        ``as_server_user``: files it writes belong to the server's user (whose watchdog removes them)."""
        result = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            check=False,
            cwd=self.base_dir or None,
            user=self._uid if as_server_user else None,
            group=self._gid if as_server_user else None,
            extra_groups=self._extra_groups if as_server_user else None,
        )
        if result.returncode != 0:
            err = result.stderr.decode("utf-8", "replace").strip()
            raise DataPlaneError(f"{os.path.basename(argv[0])} failed: {err[-2000:]}")
        return result.stdout

    def recovery_server(self, target: dict[str, str]) -> PostgresServer:
        """A not yet started server that recovers this one's base backup plus archived WAL up to
        ``target`` (``recovery_target_time`` or ``recovery_target_lsn`` and options), then
        promotes. Its ``start()`` returns once recovery has finished; stop it when done."""
        if not self._history:
            raise DataPlaneError("this server keeps no history (started without history=True)")
        backup = self.base_backup_dir

        def seed(data_dir: str) -> None:
            shutil.copytree(backup, data_dir, symlinks=True)
            os.chmod(data_dir, 0o700)
            Path(data_dir, "recovery.signal").touch()

        # Archived segments first; the segment being written (and finished ones not archived yet)
        # only exist in pg_wal. Both are read-only for the recovering server.
        restore = (
            f"cp {_sh_quote(self.wal_archive)}/%f %p 2>/dev/null || "
            f"cp {_sh_quote(os.path.join(self.data_dir, 'pg_wal'))}/%f %p"
        )
        settings = {
            "restore_command": restore,
            "recovery_target_action": "promote",
            "archive_mode": "off",
            "hot_standby": "off",  # no connection before recovery has ended: start() waits for it
            **target,
        }
        return PostgresServer(self.binaries, seed=seed, settings=settings)

    def _take_base_backup(self) -> None:
        # Streams the WAL it needs (-X stream), so the backup is consistent on its own.
        self.run_tool(
            [
                self.binaries.tool("pg_basebackup"),
                "-D",
                self.base_backup_dir,
                "-h",
                self.socket_dir,
                "-p",
                str(_SOCKET_PORT),
                "-U",
                ADMIN_USER,
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ],
            as_server_user=True,
        )

    @property
    def _uid(self) -> int | None:
        return self._run_as.pw_uid if self._run_as else None

    @property
    def _gid(self) -> int | None:
        return self._run_as.pw_gid if self._run_as else None

    @property
    def _extra_groups(self) -> list[int] | None:
        return [] if self._run_as else None  # drop root's supplementary groups too

    def _prepare_data_dir(self, data_dir: str) -> None:
        """A fresh cluster: a copy of a cached pristine initdb result (~0.1 s) when there is one,
        else initdb (~0.7 s), whose result is then cached for the next start."""
        cached = _initdb_cache_path(self.binaries)
        if cached is not None and (cached / "PG_VERSION").is_file():
            try:
                shutil.copytree(cached, data_dir, symlinks=True)
                os.chmod(data_dir, 0o700)
                if self._run_as is not None:
                    _chown_tree(data_dir, self._run_as.pw_uid, self._run_as.pw_gid)
                return
            except OSError:
                shutil.rmtree(data_dir, ignore_errors=True)  # a broken cache: fall back to initdb
        self._initdb(data_dir)
        if cached is not None:
            _store_in_cache(data_dir, cached)

    def _move_wal_start(self, data_dir: str) -> None:
        """``pg_resetwal -l``: the (cleanly shut down, never started) cluster's next WAL segment
        is the one holding ``wal_start``, rounded up (segment names: timeline, then the segment
        number split into 4 GB units and the segment within the unit)."""
        segment = -(-self.wal_start // _WAL_SEGMENT_BYTES)
        per_unit = 0x1_0000_0000 // _WAL_SEGMENT_BYTES
        name = f"{1:08X}{segment // per_unit:08X}{segment % per_unit:08X}"
        self.run_tool([self.binaries.tool("pg_resetwal"), "-l", name, "-D", data_dir], as_server_user=True)

    def _initdb(self, data_dir: str) -> None:
        argv = [
            self.binaries.tool("initdb"),
            "-D",
            data_dir,
            "-U",
            ADMIN_USER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            f"--wal-segsize={_WAL_SEGMENT_MB}",
            "--no-sync",
        ]
        self.run_tool(argv, as_server_user=True)

    def _launch(self, data_dir: str) -> None:
        postgres_argv = [
            self.binaries.tool("postgres"),
            "-D",
            data_dir,
            "-p",
            str(_SOCKET_PORT),
            "-k",
            self.socket_dir,
            "-c",
            "listen_addresses=",
            "-c",
            "unix_socket_permissions=0700",
            # Throw-away data: durability costs time and buys nothing here. Commits stay synchronous
            # (a write(), no fsync): `pg_current_wal_lsn()` after a commit then covers it, so an
            # LSN a client reads can be branched from.
            "-c",
            "fsync=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=300",
            "-c",
            "log_min_messages=warning",
        ]
        settings = dict(self._settings)
        if self._history:
            # WAL kept for point-in-time recovery: copied atomically (a recovering server must
            # never read a half-copied segment).
            archive = _sh_quote(self.wal_archive)
            settings.update(
                wal_level="replica",
                archive_mode="on",
                archive_command=(
                    f"test ! -f {archive}/%f && cp %p {archive}/%f.tmp && mv {archive}/%f.tmp {archive}/%f"
                ),
            )
        for name, value in settings.items():
            postgres_argv += ["-c", f"{name}={value}"]
        log = open(os.path.join(self.base_dir, "server.log"), "wb")  # noqa: SIM115 - child keeps it
        try:
            self._process = subprocess.Popen(
                ["/bin/sh", "-c", _WATCHDOG, "jambo-pg-watchdog", data_dir, self.base_dir, *postgres_argv],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base_dir,
                # Own session: a Ctrl-C in the emulator's terminal must not hit the server directly;
                # stop() shuts it down in order.
                start_new_session=True,
                user=self._uid,
                group=self._gid,
                extra_groups=self._extra_groups,
            )
        finally:
            log.close()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise DataPlaneError(f"PostgreSQL server exited at start: {self._log_tail()}")
            if os.path.exists(self.socket_path):
                try:
                    self.admin().close()
                    return
                except (OSError, DataPlaneError):
                    pass  # still starting up ("the database system is starting up")
            if time.monotonic() > deadline:
                raise DataPlaneError(
                    f"PostgreSQL server did not start in {timeout:.0f} s: {self._log_tail()}"
                )
            time.sleep(0.02)

    def _log_tail(self) -> str:
        try:
            return Path(self.base_dir, "server.log").read_text(errors="replace")[-1500:].strip()
        except OSError:
            return "(no server log)"


def _scratch_root() -> str | None:
    """Where the throw-away cluster lives: $JAMBO_PG_TMPDIR, else a roomy tmpfs (/dev/shm; creating
    the ~1000 files of a cluster there takes a tenth of the time it takes on a busy disk), else the
    system temp dir."""
    override = os.environ.get("JAMBO_PG_TMPDIR")
    if override:
        return override
    try:
        shm = os.statvfs("/dev/shm")
    except OSError:
        return None
    roomy = shm.f_bavail * shm.f_frsize >= _MIN_TMPFS_BYTES
    return "/dev/shm" if roomy and os.access("/dev/shm", os.W_OK | os.X_OK) else None


def _initdb_cache_path(binaries: Binaries) -> Path | None:
    """Per-user cache of a pristine cluster, keyed by the exact server binary and initdb options."""
    try:
        binary = Path(binaries.tool("postgres")).resolve()
        info = binary.stat()
    except OSError:
        return None
    key = hashlib.sha256(
        f"{binary}|{info.st_size}|{info.st_mtime_ns}|{ADMIN_USER}|UTF8|C.UTF-8|trust|wal{_WAL_SEGMENT_MB}|v1".encode()
    ).hexdigest()[:16]
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root, "jambo-emulator", f"pgdata-{binaries.major}-{key}")


def _store_in_cache(data_dir: str, cached: Path) -> None:
    """Copy a freshly made (cleanly shut down) cluster into the cache; atomic, best effort."""
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cached.parent))
        try:
            shutil.copytree(data_dir, staging / "data", symlinks=True)
            os.rename(staging / "data", cached)  # loses to a concurrent writer harmlessly
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError:
        pass  # no cache (read-only home, a concurrent writer won): the next start runs initdb


def _chown_tree(top: str, uid: int, gid: int) -> None:
    os.chown(top, uid, gid)
    for root, dirs, files in os.walk(top):
        for name in (*dirs, *files):
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def _sh_quote(path: str) -> str:
    return "'" + path.replace("'", "'\\''") + "'"


def _conninfo_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")
