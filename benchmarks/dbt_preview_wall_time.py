"""Wall time of the dbt example under ``airflow dags test``, against the SQL preview example.

    .venv/bin/python benchmarks/dbt_preview_wall_time.py [--runs 3]

Both DAGs do the same thing to a branch of ``main`` (the demo data): create it, transform and test
on it, diff its schema, delete it. ``example_jambo_preview_environment`` does it with four SQL tasks;
``example_jambo_dbt_preview`` with a Cosmos task group running the real dbt (``.venv-dbt``: one
``dbt build`` per node, six dbt processes). Each run is ``airflow dags test`` (a fresh process, as a
user runs it) against one emulator with its data plane, in one migrated Airflow home; the runs
alternate preview, dbt, preview, dbt ... so both see the same machine, and each gets a freshly
seeded project. Printed: the median wall time of each (process start to exit), and the ratio.

Measured 2026-12-05 19:26 UTC (load 2.3-3.7 on 2 shared cores, 3 runs each; Airflow 3.3.2, Cosmos
1.15.1, dbt-core 1.11.16, dbt-postgres 1.11.0)::

    DAG (airflow dags test)              tasks  median s  ratio
    example_jambo_preview_environment        6       9.7   1.00
    example_jambo_dbt_preview               10      25.8   2.67

(runs: 9.8/8.8/9.7 s and 25.2/33.5/25.8 s). The dbt example's extra ~16 s is six dbt processes,
each ~2.5 s of dbt start-up and project parse before its SQL.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
# Before Airflow is imported: this process's own lookups never touch ~/airflow.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="jambo-bench-home-")

import shutil  # noqa: E402

from dags.runner import EXAMPLE_DAGS, AirflowHome, demo_project  # noqa: E402

from jambo_emulator import JamboEmulator  # noqa: E402

DBT = ROOT / ".venv-dbt" / "bin" / "dbt"
DAGS = {
    "example_jambo_preview_environment": EXAMPLE_DAGS / "example_jambo_preview_environment.py",
    "example_jambo_dbt_preview": EXAMPLE_DAGS / "example_jambo_dbt_preview.py",
}


def seeded_project(emu: JamboEmulator) -> dict[str, str]:
    # This process's hook seeds main through the same connection the DAG runs get.
    demo = demo_project(emu, "dbt-bench", os.environ.__setitem__)
    return {"AIRFLOW_CONN_JAMBO_DEFAULT": demo.conn_json}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each DAG (median taken)")
    args = parser.parse_args()
    if not DBT.exists():
        raise SystemExit("dbt's virtualenv is missing: run scripts/bootstrap")
    seconds: dict[str, list[float]] = {dag_id: [] for dag_id in DAGS}
    tasks: dict[str, int] = {}
    with JamboEmulator(api_key="dbt-bench-key", operation_duration=0.0, data_plane="auto") as emu:
        home = AirflowHome.create()
        shutil.copytree(EXAMPLE_DAGS / "sql", home.dags_folder / "sql", dirs_exist_ok=True)
        shutil.copytree(EXAMPLE_DAGS / "dbt", home.dags_folder / "dbt", dirs_exist_ok=True)
        for _ in range(args.runs):
            for dag_id, dag_file in DAGS.items():
                env = {
                    **seeded_project(emu),
                    "JAMBO_DBT_EXECUTABLE": str(DBT),
                    "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
                    "DO_NOT_TRACK": "1",
                }
                started = time.monotonic()
                result = home.run_dag(dag_file, env=env, timeout=600)
                elapsed = time.monotonic() - started
                if result.state != "success":
                    raise SystemExit(result.describe())
                seconds[dag_id].append(elapsed)
                tasks[dag_id] = len(result.task_states)
                print(f"{dag_id:<36} {elapsed:6.1f} s", flush=True)
    base = statistics.median(seconds["example_jambo_preview_environment"])
    print(f"\n{'DAG (airflow dags test)':<36} {'tasks':>5} {'median s':>9} {'ratio':>6}")
    for dag_id, values in seconds.items():
        median = statistics.median(values)
        print(f"{dag_id:<36} {tasks[dag_id]:>5} {median:9.1f} {median / base:6.2f}")


if __name__ == "__main__":
    main()
