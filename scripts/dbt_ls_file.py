"""Write (or check) the example dbt project's ``dbt ls`` file, which Cosmos reads to render its tasks.

The dbt example DAG renders its Cosmos task group from this file (``LoadMode.DBT_LS_FILE``), so parsing
the DAG runs no dbt and reads no profile. Run after changing the project (needs ``.venv-dbt``, made by
``scripts/bootstrap``)::

    .venv/bin/python scripts/dbt_ls_file.py            # rewrite example_dags/dbt/shop/dbt_ls.json
    .venv/bin/python scripts/dbt_ls_file.py --check    # exit 1 if it is stale

``dbt ls`` needs a profile but connects nowhere: the one written here is a placeholder.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "example_dags" / "dbt" / "shop"
LS_FILE = PROJECT / "dbt_ls.json"
DBT = ROOT / ".venv-dbt" / "bin" / "dbt"
#: The keys Cosmos asks ``dbt ls`` for when it runs it itself (cosmos.dbt.graph.DbtGraph.run_dbt_ls).
OUTPUT_KEYS = ("name", "unique_id", "resource_type", "depends_on", "original_file_path", "tags", "config")
OUTPUT_KEYS += ("freshness", "fqn")
PLACEHOLDER_PROFILE = """\
shop:
  target: ls
  outputs:
    ls: {type: postgres, host: localhost, user: ls, password: ls, dbname: ls, schema: public, port: 5432}
"""


def dbt_ls() -> str:
    """The project's nodes as ``dbt ls --output json`` prints them, one JSON object a line."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "profiles.yml").write_text(PLACEHOLDER_PROFILE)
        proc = subprocess.run(
            [
                *(str(DBT), "--no-use-colors", "--quiet", "ls", "--project-dir", str(PROJECT)),
                *("--profiles-dir", tmp, "--target-path", f"{tmp}/target", "--log-path", f"{tmp}/logs"),
                *("--output", "json", "--output-keys", *OUTPUT_KEYS),
            ],
            env={**os.environ, "DO_NOT_TRACK": "1"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    if proc.returncode != 0:
        raise SystemExit(f"dbt ls failed:\n{proc.stdout}\n{proc.stderr}")
    return "".join(line + "\n" for line in proc.stdout.splitlines() if line.startswith("{"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from dbt ls")
    args = parser.parse_args()
    current = dbt_ls()
    if args.check:
        if not LS_FILE.exists() or LS_FILE.read_text() != current:
            print(f"{LS_FILE.relative_to(ROOT)} is stale: run scripts/dbt_ls_file.py", file=sys.stderr)
            return 1
        return 0
    LS_FILE.write_text(current)
    print(f"wrote {LS_FILE.relative_to(ROOT)} ({current.count(chr(10))} nodes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
