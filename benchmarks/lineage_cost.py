"""What OpenLineage adds to each task: the same DAG with the OpenLineage provider off and on.

    .venv/bin/python benchmarks/lineage_cost.py [--runs 3]

The DAG is the three tasks of the lineage report (``tests/dags/dag_files/jambo_lineage_sql.py``):
create a branch, ``create table t2 as select * from orders where amount > 10`` on it, delete it as a
teardown. Each run is ``airflow dags test`` against an emulator with its data plane (real
PostgreSQL), in one migrated Airflow home; the runs alternate off, on, off, on ... so both see the
same machine. "On" is the OpenLineage provider with a file transport, as a user would configure it;
"off" is the same install with ``[openlineage] disabled = True``. Printed per task: the median task
duration (Airflow's own ``task_instance.duration``) of each, the difference, and how many of the
listener's processes expired (each expiry is a lineage extraction that blocked until it was killed).

Before the fix (Airflow 3.3.2, OpenLineage provider 2.20.3, 2026-12-05): the SQL task took ~27 s with
lineage against 0.65 s without, the delete task the same, each with two expiries and no event.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
# Before Airflow is imported: this process's own lookups never touch ~/airflow.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="jambo-bench-home-")

from dags.runner import AirflowHome, demo_project  # noqa: E402

from jambo_emulator import JamboEmulator  # noqa: E402

DAG_FILE = ROOT / "tests" / "dags" / "dag_files" / "jambo_lineage_sql.py"
DAG_ID = "jambo_lineage_sql"
EXPIRED = "expired and will be terminated by listener"


def seeded_project(emu: JamboEmulator) -> dict[str, str]:
    # This process's hook seeds main through the same connection the DAG runs get.
    demo = demo_project(emu, "lineage-bench", os.environ.__setitem__)
    return {"AIRFLOW_CONN_JAMBO_DEFAULT": demo.conn_json}


def task_durations(home: AirflowHome) -> dict[str, float]:
    db = sqlite3.connect(home.path / "airflow.db")
    try:
        (run_id,) = db.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (DAG_ID,)
        ).fetchone()
        rows = db.execute(
            "SELECT task_id, duration FROM task_instance WHERE dag_id = ? AND run_id = ?", (DAG_ID, run_id)
        ).fetchall()
    finally:
        db.close()
    return {task_id: float(duration or 0.0) for task_id, duration in rows}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    durations: dict[str, dict[str, list[float]]] = {"off": defaultdict(list), "on": defaultdict(list)}
    expiries = {"off": 0, "on": 0}
    events = {"off": 0, "on": 0}
    with JamboEmulator(api_key="bench-key", operation_duration=0.0, data_plane="on") as emu:
        home = AirflowHome.create()
        env = seeded_project(emu)
        for _ in range(args.runs):
            for mode in ("off", "on"):
                events_file = Path(tempfile.mkdtemp()) / "events.jsonl"
                transport = {"type": "file", "log_file_path": str(events_file), "append": True}
                run_env = {**env, "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport)}
                if mode == "off":
                    run_env["AIRFLOW__OPENLINEAGE__DISABLED"] = "True"
                result = home.run_dag(DAG_FILE, env=run_env)
                if result.state != "success":
                    raise SystemExit(f"run failed ({mode}):\n{result.describe()}")
                for task_id, seconds in task_durations(home).items():
                    durations[mode][task_id].append(seconds)
                expiries[mode] += result.output.count(EXPIRED)
                if events_file.exists():
                    events[mode] += len(events_file.read_text().splitlines())
    print(f"{args.runs} runs each, alternating; task duration medians (task_instance.duration)")
    print(f"{'task':8} {'lineage off':>12} {'lineage on':>11} {'added':>8}")
    for task_id in ("create", "sql", "delete"):
        off = statistics.median(durations["off"][task_id])
        on = statistics.median(durations["on"][task_id])
        print(f"{task_id:8} {off:11.2f}s {on:10.2f}s {on - off:+7.2f}s")
    print(f"listener expiries: off {expiries['off']}, on {expiries['on']}")
    print(f"events written: off {events['off']}, on {events['on']}")


if __name__ == "__main__":
    main()
