"""The official TypeScript SDK and the official CLI, run unchanged against the emulator, judge it.

Both are npm packages pinned by ``official_clients/package-lock.json`` (``@neondatabase/api-client``
2.7.3, the CLI ``neon`` 6.2.3) and installed by ``scripts/node-clients`` into ``.cache/`` on first
use; an install failure fails these tests. The emulator runs on a real clock with zero-length
operations, the lock rule (423) on and, when PostgreSQL is installed, its data plane: what a user
gets from ``jambo-emulator --postgres auto``. Only rate limits are off (the CLI's steps are many and
quick, and 429 handling has its own tests).

Each client's lifecycle reports every step; a step fails when the client raises or exits non-zero,
or when the answer lacks what the step checks, and each lifecycle ends by checking that every
operation finished (both clients return once the API accepted a change). Steps left out are named
below with the reason (a spec operation the emulator does not emulate yet). No bug of
either client blocks a step. Their quirks, which the steps allow for: ``connection-string`` and
``branches schema-diff`` print plain text whatever ``--output`` says; ``branches create`` without
a compute prints the bare branch, with one ``{"branch", "endpoints", ...}``; and the CLI builds
connection strings from the endpoint's host alone (no port, no ``hostaddr``), so against the
emulator's data plane they name the service's host, not the emulator's PostgreSQL port.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jambo_emulator import JamboEmulator

_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parents[2]
_CLIENTS = _HERE / "official_clients"
_NODE = shutil.which("node")

#: TypeScript SDK steps not run, with the reason.
SDK_SKIPPED: dict[str, str] = {}

#: CLI steps not run, with the reason.
CLI_SKIPPED: dict[str, str] = {}


@pytest.fixture(scope="module")
def node_modules() -> Path:
    if _NODE is None:
        pytest.skip("node is not installed: the official TypeScript SDK and CLI need Node.js 20.19+")
    result = subprocess.run(
        ["bash", str(_ROOT / "scripts" / "node-clients")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"scripts/node-clients failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def module_emu() -> Iterator[JamboEmulator]:
    with JamboEmulator(
        api_key="official-node-clients-key", operation_duration=0.0, rate_limits=False, data_plane="auto"
    ) as emulator:
        yield emulator


@pytest.fixture
def emu(module_emu: JamboEmulator) -> JamboEmulator:
    """The module's emulator as new: each client starts on a fresh account (the CLI's first step
    lists no projects), whatever the other left behind (a recovered project, say)."""
    module_emu.reset()
    return module_emu


def test_the_vendored_spec_is_the_pinned_packages_file(node_modules: Path) -> None:
    # emulator/spec/ is a copy of this file of the pinned package (its README says so): prove it.
    shipped = node_modules / "@neondatabase" / "api-client" / "public-v2-for-users.gen.yaml"
    assert (_ROOT / "emulator" / "spec" / "jambo-api-v2.openapi.yaml").read_bytes() == shipped.read_bytes()


def _node_env(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment: nothing of the developer's (NEON_* keys, npm config) leaks in."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "CI": "1", "NO_COLOR": "1"}
    env.update(extra)
    return env


# -- the TypeScript SDK ----------------------------------------------------------------------------
def test_typescript_sdk_lifecycle(node_modules: Path, emu: JamboEmulator, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(_NODE), str(_CLIENTS / "sdk_lifecycle.cjs")],
        env=_node_env(
            tmp_path,
            NODE_PATH=str(node_modules),
            JAMBO_BASE_URL=emu.base_url,
            JAMBO_API_KEY=emu.api_key,
            JAMBO_SKIP_STEPS=json.dumps(sorted(SDK_SKIPPED)),
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    steps: list[dict[str, Any]] = json.loads(result.stdout)["steps"]
    names = [s["name"] for s in steps]
    assert len(names) == len(set(names)), "step names must be unique"
    assert set(SDK_SKIPPED) <= set(names), "a skipped step is no longer in the script"
    assert {s["name"] for s in steps if s.get("skipped")} == set(SDK_SKIPPED)
    failed = [f"{s['name']}: {s['error']}" for s in steps if not s["ok"] and not s.get("skipped")]
    assert not failed, "\n".join(failed)
    assert len(steps) == 73


# -- the CLI ---------------------------------------------------------------------------------------
@dataclass
class Cli:
    """The ``neon`` binary against the emulator, one answer per command, every step recorded."""

    node_modules: Path
    emu: JamboEmulator
    home: Path
    results: list[tuple[str, str | None]] = field(default_factory=list)

    def run(self, name: str, *args: str, check: Any = None, text: bool = False) -> Any:
        """Runs ``neon <args> --output json`` and records the step as passed or why it failed.

        ``check`` gets the answer (parsed JSON, or the stripped stdout when ``text``: the commands
        that print one string ignore ``--output``) and returns a problem or ``None``. The answer
        is returned either way (``None`` after a failure), so later steps go on and record their own.
        """
        if name in CLI_SKIPPED:
            self.results.append((name, "skipped"))
            return None
        command = [
            str(_NODE),
            str(self.node_modules / "neon" / "dist" / "cli.js"),
            *args,
            "--output",
            "json",
            "--no-analytics",
            "--config-dir",
            str(self.home / "config"),
            "--context-file",
            str(self.home / "context.json"),
        ]
        env = _node_env(
            self.home, NEON_API_HOST=self.emu.base_url, NEON_API_KEY=self.emu.api_key, NO_UPDATE_NOTIFIER="1"
        )
        # In its home: ``link`` writes ``.env.local`` (and a ``.gitignore`` line) into the cwd.
        proc = subprocess.run(
            command, env=env, cwd=self.home, capture_output=True, text=True, timeout=60, check=False
        )
        if proc.returncode != 0:
            self.results.append((name, f"exit {proc.returncode}: {proc.stderr.strip()[-600:]}"))
            return None
        try:
            answer = proc.stdout.strip() if text else json.loads(proc.stdout)
        except json.JSONDecodeError:
            self.results.append((name, f"not JSON: {proc.stdout[:300]!r}"))
            return None
        problem = check(answer) if check is not None else None
        self.results.append(
            (
                name,
                None
                if problem is None
                else f"wrong answer: {problem} in {answer!r:.300} (stderr: {proc.stderr.strip()[-600:]})",
            )
        )
        return answer


def _expect(condition: bool, problem: str) -> str | None:
    return None if condition else problem


def _get(answer: Any, *path: str | int) -> Any:
    """``answer[p0][p1]...``, or ``None`` when a part is missing (as after a failed step)."""
    for part in path:
        try:
            answer = answer[part]
        except (KeyError, IndexError, TypeError):
            return None
    return answer


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _names(answer: Any) -> list[str]:
    return sorted(x["name"] for x in answer or [])


def _operations_all_finished(cli: Cli, name: str, p: tuple[str, str]) -> None:
    """The data-plane work behind every step ran: a CLI exits 0 once the API accepted a change,
    and an operation failing afterwards shows only here.

    So first wait (at most a minute) until nothing is in flight: the CLI's last change may still be
    running (a point-in-time copy takes seconds of real PostgreSQL work), which is no failure."""
    deadline = time.monotonic() + 60
    with cli.emu.client() as api:
        while time.monotonic() < deadline:
            ops = api.get(f"/projects/{p[1]}/operations").json().get("operations", [])
            if not any(op["status"] in ("scheduling", "running") for op in ops):
                break
            time.sleep(0.2)
    cli.run(
        name,
        "operations",
        "list",
        *p,
        check=lambda a: _expect(
            bool(a) and all(op["status"] == "finished" for op in a),
            f"not all finished: {sorted({(op['action'], op['status']) for op in a or []})}",
        ),
    )


def _account(cli: Cli, org_id: str) -> None:
    """API keys: personal, then organization (the project-scoped one is in ``_branches``)."""
    key = cli.run(
        "api-keys create", "api-keys", "create", "--name", "cli", check=lambda a: _expect("key" in a, "key")
    )
    key_id = _get(key, "id")
    cli.run(
        "api-keys list",
        "api-keys",
        "list",
        check=lambda a: _expect(key_id in [k["id"] for k in a], "not listed"),
    )
    cli.run(
        "api-keys revoke",
        "api-keys",
        "revoke",
        str(key_id),
        check=lambda a: _expect(_get(a, "revoked") is True, "not revoked"),
    )
    org_key = cli.run(
        "api-keys create --org-id", "api-keys", "create", "--org-id", org_id, "--name", "cli-org"
    )
    cli.run(
        "api-keys list --org-id",
        "api-keys",
        "list",
        "--org-id",
        org_id,
        check=lambda a: _expect(_get(org_key, "id") in [k["id"] for k in a], "org key not listed"),
    )


def _branches(cli: Cli) -> None:
    """A project through its branch lifecycle, then deleted (and recovered, once emulated)."""
    created = cli.run(
        "projects create",
        "projects",
        "create",
        "--name",
        "cli-branches",
        check=lambda a: _expect(bool(_get(a, "connection_uris", 0, "connection_uri")), "no connection URI"),
    )
    project_id = _get(created, "project", "id")
    p = ("--project-id", str(project_id))
    cli.run(
        "projects get",
        "projects",
        "get",
        str(project_id),
        check=lambda a: _expect(a["id"] == project_id, "id"),
    )
    cli.run(
        "projects update",
        "projects",
        "update",
        str(project_id),
        "--name",
        "cli-renamed",
        check=lambda a: _expect(a["name"] == "cli-renamed", "name not updated"),
    )
    main = cli.run(
        "branches list", "branches", "list", *p, check=lambda a: _expect(_names(a) == ["main"], "names")
    )
    main_id = _get(main, 0, "id")
    dev = cli.run(
        "branches create",
        "branches",
        "create",
        *p,
        "--name",
        "dev",
        check=lambda a: _expect(
            _get(a, "branch", "parent_id") == main_id and bool(a["endpoints"]), "no parent/compute"
        ),
    )
    dev_id = _get(dev, "branch", "id")
    cli.run("branches get", "branches", "get", "dev", *p, check=lambda a: _expect(a["id"] == dev_id, "id"))
    cli.run(
        "branches rename",
        "branches",
        "rename",
        "dev",
        "dev2",
        *p,
        check=lambda a: _expect(a["name"] == "dev2", "name"),
    )
    cli.run(
        "branches set-default",
        "branches",
        "set-default",
        "dev2",
        *p,
        check=lambda a: _expect(a["default"] is True, "not default"),
    )
    cli.run("branches set-default (back)", "branches", "set-default", "main", *p)
    cli.run(
        "branches add-compute",
        "branches",
        "add-compute",
        "dev2",
        "--type",
        "read_only",
        *p,
        check=lambda a: _expect(a["type"] == "read_only", "type"),
    )
    cli.run("branches reset --parent", "branches", "reset", "dev2", "--parent", *p)
    cli.run(
        "branches restore --preserve-under-name",
        "branches",
        "restore",
        "dev2",
        "main",
        "--preserve-under-name",
        "dev2-backup",
        *p,
        # The service's rule: the backup becomes the parent of the restored branch.
        check=lambda a: _expect(
            _get(a, "restored_branch", "parent_id") == _get(a, "backup_branch", "id") is not None,
            "the restored branch's parent is not the backup",
        ),
    )
    cli.run(
        "branches list (after restore)",
        "branches",
        "list",
        *p,
        check=lambda a: _expect(_names(a) == ["dev2", "dev2-backup", "main"], "names"),
    )
    cli.run(
        "branches schema-diff",
        "branches",
        "schema-diff",
        "main",
        "dev2",
        *p,
        text=True,
        check=lambda a: _expect(a.startswith("--- Database: neondb"), "not a diff"),
    )
    cli.run(
        "api-keys create --project-id",
        "api-keys",
        "create",
        *p,
        "--name",
        "cli-project",
        check=lambda a: _expect(a["project_id"] == project_id, "not project-scoped"),
    )
    _operations_all_finished(cli, "operations list (branches)", p)
    # ``link`` prints text whatever ``--output`` says, and pulls the branch's env vars into
    # ``.env.local``: it reads the branch's buckets, functions, credentials, Neon Auth and Data API.
    cli.run(
        "link",
        "link",
        *p,
        "--branch",
        "main",
        text=True,
        check=lambda a: _expect(
            f"projectId: {project_id}" in a
            and 'DATABASE_URL="postgresql://' in _read(cli.home / ".env.local")
            and "NEON_BRANCH=main" in _read(cli.home / ".env.local"),
            "not linked, or no DATABASE_URL pulled",
        ),
    )
    cli.run(
        "status",
        "status",
        check=lambda a: _expect(
            _get(a, "project", "id") == project_id and _get(a, "branch", "name") == "main", "not the link"
        ),
    )
    # The backup is dev2's parent now, so dev2 goes first.
    cli.run("branches delete", "branches", "delete", "dev2", *p)
    cli.run("branches delete (backup)", "branches", "delete", "dev2-backup", *p)
    cli.run(
        "projects delete",
        "projects",
        "delete",
        str(project_id),
        check=lambda a: _expect(a["id"] == project_id, "id"),
    )
    cli.run("projects recover", "projects", "recover", str(project_id))


def _snapshots(cli: Cli) -> None:
    """Issue 21: a snapshot of main through its life (restore, finalize, schedule, delete), and the
    LSN a branch create answers passed back to the service (a parent and a snapshot point)."""
    created = cli.run("projects create (snapshots)", "projects", "create", "--name", "cli-snapshots")
    project_id = _get(created, "project", "id")
    p = ("--project-id", str(project_id))
    child = cli.run("branches create (for its lsn)", "branches", "create", *p, "--name", "lsn-source")
    lsn = str(_get(child, "branch", "parent_lsn"))
    cli.run(
        "branches create --parent <lsn>",
        "branches",
        "create",
        *p,
        "--name",
        "at-lsn",
        "--parent",
        lsn,
        check=lambda a: _expect(_get(a, "branch", "parent_lsn") == lsn, "not at the answered lsn"),
    )
    expires = (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cli.run(
        "snapshots create",
        "snapshots",
        "create",
        *p,
        "--branch",
        "main",
        "--name",
        "cli-nightly",
        "--expires-at",
        expires,
        check=lambda a: _expect(a["name"] == "cli-nightly" and a.get("expires_at") == expires, "name/expiry"),
    )
    cli.run(
        "snapshots create --lsn",
        "snapshots",
        "create",
        *p,
        "--branch",
        "main",
        "--name",
        "cli-at-lsn",
        "--lsn",
        lsn,
        check=lambda a: _expect(a["lsn"] == lsn, "not at the lsn"),
    )
    cli.run(
        "snapshots list",
        "snapshots",
        "list",
        *p,
        check=lambda a: _expect(_names(a) == ["cli-at-lsn", "cli-nightly"], "names"),
    )
    cli.run(
        "snapshots update",
        "snapshots",
        "update",
        "cli-nightly",
        *p,
        "--name",
        "cli-kept",
        "--clear-expiration",
        check=lambda a: _expect(a["name"] == "cli-kept" and "expires_at" not in a, "not renamed/kept"),
    )
    cli.run(
        "snapshots get",
        "snapshots",
        "get",
        "cli-kept",
        *p,
        check=lambda a: _expect(a["manual"], "not manual"),
    )
    cli.run(
        "snapshots restore",
        "snapshots",
        "restore",
        "cli-kept",
        *p,
        "--name",
        "cli-restored",
        # Two parts (branch, operations), keyed by their titles in snake case.
        check=lambda a: _expect(
            _get(a, "restored_branch", "restore_status") == "restored" and bool(_get(a, "operations")),
            "not a preview restore",
        ),
    )
    cli.run("snapshots finalize", "snapshots", "finalize", "cli-restored", *p, "--name", "main-before")
    cli.run(
        "branches list (finalized)",
        "branches",
        "list",
        *p,
        check=lambda a: _expect(
            [(x["name"], x.get("restore_status")) for x in a if x["default"]] == [("main", "finalized")],
            "the restored branch is not the default main",
        ),
    )
    cli.run(
        "snapshots schedule set",
        "snapshots",
        "schedule",
        "set",
        *p,
        "--branch",
        "main",
        "--frequency",
        "weekly",
        "--day",
        "7",
        "--retention",
        "604800",
    )
    cli.run(
        "snapshots schedule get",
        "snapshots",
        "schedule",
        "get",
        *p,
        "--branch",
        "main",
        check=lambda a: _expect(
            a == [{"frequency": "weekly", "hour": 0, "day": 7, "retention_seconds": 604800}], "schedule"
        ),
    )
    cli.run("snapshots delete", "snapshots", "delete", "cli-kept", *p)
    _operations_all_finished(cli, "operations list (snapshots)", p)
    cli.run("projects delete (snapshots)", "projects", "delete", str(project_id))


def _data(cli: Cli, org_id: str) -> None:
    """A second project for databases, roles, connection strings and operations."""
    created = cli.run(
        "projects create --org-id", "projects", "create", "--name", "cli-data", "--org-id", org_id
    )
    project_id = _get(created, "project", "id")
    p = ("--project-id", str(project_id))
    cli.run(
        "projects list --org-id",
        "projects",
        "list",
        "--org-id",
        org_id,
        check=lambda a: _expect(project_id in [x["id"] for x in a], "not listed under its organization"),
    )
    cli.run("databases create", "databases", "create", "--name", "app", *p)
    cli.run(
        "databases list",
        "databases",
        "list",
        *p,
        check=lambda a: _expect(_names(a) == ["app", "neondb"], "names"),
    )
    cli.run("roles create", "roles", "create", "--name", "clirole", *p)
    cli.run(
        "roles list",
        "roles",
        "list",
        *p,
        check=lambda a: _expect(_names(a) == ["clirole", "neondb_owner"], "names"),
    )
    cli.run(
        "connection-string",
        "connection-string",
        "--role-name",
        "clirole",
        "--database-name",
        "app",
        *p,
        text=True,
        check=lambda a: _expect(
            a.startswith("postgresql://clirole:") and "/app?" in a, "not clirole's URI to app"
        ),
    )
    cli.run(
        "connection-string --pooled",
        "connection-string",
        "main",
        "--pooled",
        "--role-name",
        "neondb_owner",
        "--database-name",
        "neondb",
        *p,
        text=True,
        check=lambda a: _expect(a.startswith("postgresql://neondb_owner:") and "-pooler." in a, "not pooled"),
    )
    cli.run("roles delete", "roles", "delete", "clirole", *p)
    cli.run(
        "databases delete",
        "databases",
        "delete",
        "app",
        *p,
        check=lambda a: _expect(a["name"] == "app", "name"),
    )
    # Branches from a point in time and of other kinds, then the default branch back to its start.
    created_at = str(_get(created, "project", "created_at"))
    cli.run(
        "branches create --parent <timestamp>",
        "branches",
        "create",
        "--name",
        "pit",
        "--parent",
        created_at,
        *p,
        check=lambda a: _expect(_get(a, "branch", "parent_timestamp") == created_at, "parent_timestamp"),
    )
    cli.run(
        "branches create --schema-only",
        "branches",
        "create",
        "--name",
        "schema",
        "--schema-only",
        *p,
        check=lambda a: _expect(_get(a, "branch", "init_source") == "schema-only", "init_source"),
    )
    expires = datetime.fromisoformat(created_at) + timedelta(days=1)
    cli.run(
        "branches create --expires-at",
        "branches",
        "create",
        "--name",
        "ttl",
        "--compute",
        "false",
        "--expires-at",
        expires.isoformat(),
        *p,
        check=lambda a: _expect(_get(a, "ttl_interval_seconds") is not None, "no TTL"),
    )
    later = (expires + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cli.run(
        "branches set-expiration",
        "branches",
        "set-expiration",
        "ttl",
        "--expires-at",
        later,
        *p,
        check=lambda a: _expect(_get(a, "expires_at") == later, "expires_at"),
    )
    cli.run(
        "branches restore ^self@<timestamp>",
        "branches",
        "restore",
        "main",
        f"^self@{created_at}",
        "--preserve-under-name",
        "main-before",
        *p,
        check=lambda a: _expect(
            _get(a, "restored_branch", "parent_id") == _get(a, "backup_branch", "id") is not None,
            "the restored branch's parent is not the backup",
        ),
    )
    _operations_all_finished(cli, "operations list", p)
    cli.run("projects delete (data)", "projects", "delete", str(project_id))


def test_cli_lifecycle(node_modules: Path, emu: JamboEmulator, tmp_path: Path) -> None:
    """Three independent chains (account keys, branches on one project, data on another) run at
    once: each CLI start costs ~0.7 s of CPU (Node 20 has no compile cache), so a serial run is
    twice as long. Each chain has its own config dir; projects never share a lock."""
    clis = {
        name: Cli(node_modules, emu, tmp_path / name)
        for name in ("setup", "account", "branches", "data", "snapshots")
    }
    for cli in clis.values():
        (cli.home / "config").mkdir(parents=True)
    setup = clis["setup"]
    setup.run("me", "me", check=lambda a: _expect(a["email"] == "emulator@example.com", "email"))
    # On a fresh setup the CLI asks for the user's organizations before it lists projects.
    setup.run(
        "projects list (fresh)",
        "projects",
        "list",
        check=lambda a: _expect(a == {"projects": [], "shared_with_you": []}, "not empty"),
    )
    orgs = setup.run("orgs list", "orgs", "list", check=lambda a: _expect(len(a) == 1, "one organization"))
    org_id = str(_get(orgs, 0, "id"))

    with ThreadPoolExecutor(max_workers=3) as pool:
        chains = [
            pool.submit(_account, clis["account"], org_id),
            pool.submit(_branches, clis["branches"]),
            pool.submit(_data, clis["data"], org_id),
            pool.submit(_snapshots, clis["snapshots"]),
        ]
        for chain in chains:
            chain.result()
    setup.run(
        "projects list --recoverable-only",
        "projects",
        "list",
        "--recoverable-only",
        # The data and snapshot chains' projects are deleted; the branches chain recovered its own.
        check=lambda a: _expect(
            sorted(x["name"] for x in a) == ["cli-data", "cli-snapshots"], "only cli-data, cli-snapshots"
        ),
    )

    results = [result for cli in clis.values() for result in cli.results]
    failed = [f"{name}: {why}" for name, why in results if why not in (None, "skipped")]
    assert not failed, "\n".join(failed)
    names = [name for name, _ in results]
    assert len(names) == len(set(names)) == 48 + 16
    assert {name for name, why in results if why == "skipped"} == set(CLI_SKIPPED)
