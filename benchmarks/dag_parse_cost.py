"""What the provider adds to DAG parsing: each example DAG vs a same-size DAG of built-in operators.

    .venv/bin/python benchmarks/dag_parse_cost.py [--runs 7]

Every measurement is a fresh Python process (as a DAG-file processor starts cold), which first
imports ``airflow.sdk`` — the cost every DAG file pays — and then times only the execution of the
DAG file. The baseline, measured in the same run, is a generated DAG file with the same number of
tasks made of ``EmptyOperator``s, so the ratio is what using this provider's operators costs over
Airflow's own. Medians of ``--runs`` processes each; the provider's modules are byte-compiled first
(this machine sets PYTHONDONTWRITEBYTECODE, which would otherwise charge a compile to every run).

Measured on the 2-core development machine (2026-11-27, 3 runs each): the ephemeral-branch,
compute and sensor examples cost 29-46 ms over a ~12 ms baseline (ratios 2.4-3.8; importing the
operators, hook and trigger modules is ~18 ms of it); the preview and report examples 85-101 ms
(ratios 7.5-8.4), most of it the common-sql/postgres providers behind ``JamboBranchSQLOperator``.
Importing ``airflow.sdk`` itself, paid by every DAG file and not counted here, is ~900 ms.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "example_dags").glob("example_*.py"))

# Runs in the child: pay Airflow's own import first, then time the DAG file alone.
CHILD = """
import importlib.util, sys, time
import airflow.sdk  # noqa: F401  (paid by every DAG file; not measured)
from airflow.providers.standard.operators.empty import EmptyOperator  # noqa: F401  (same for the baseline)
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("dag_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed = time.perf_counter() - start
tasks = sum(len(v.tasks) for v in vars(module).values() if hasattr(v, "tasks") and hasattr(v, "dag_id"))
print(elapsed, tasks)
"""

BASELINE = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG(dag_id="baseline_{n}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    previous = None
    for i in range({n}):
        task = EmptyOperator(task_id=f"t{{i}}")
        if previous is not None:
            previous >> task
        previous = task
"""


def run_child(path: Path, env: dict[str, str]) -> tuple[float, int]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), int(out[1])


def median_cost(path: Path, env: dict[str, str], runs: int) -> tuple[float, int]:
    samples = [run_child(path, env) for _ in range(runs)]
    return statistics.median(s[0] for s in samples), samples[0][1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="processes per DAG file (median taken)")
    args = parser.parse_args()

    compileall.compile_dir(str(ROOT / "airflow_provider_jambo"), quiet=1)
    with tempfile.TemporaryDirectory(prefix="jambo-parse-bench-") as tmp:
        env = {
            **os.environ,
            "AIRFLOW_HOME": tmp,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # No connection may be looked up while parsing: make any attempt fail loudly.
            "AIRFLOW_CONN_JAMBO_DEFAULT": "jambo://:not-a-key@127.0.0.1:9/api/v2",
        }
        print(f"{'DAG file':45} {'tasks':>5} {'parse ms':>9} {'baseline ms':>12} {'ratio':>6}")
        ratios = []
        for example in EXAMPLES:
            cost, tasks = median_cost(example, env, args.runs)
            baseline_file = Path(tmp) / f"baseline_{tasks}.py"
            if not baseline_file.exists():
                baseline_file.write_text(BASELINE.format(n=tasks))
            base, _ = median_cost(baseline_file, env, args.runs)
            ratio = cost / base
            ratios.append(ratio)
            print(f"{example.name:45} {tasks:5d} {cost * 1000:9.1f} {base * 1000:12.1f} {ratio:6.2f}")
        print(f"median ratio (example DAG / same-size EmptyOperator DAG): {statistics.median(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
