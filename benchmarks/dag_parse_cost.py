"""What the provider adds to DAG parsing: each example DAG vs a same-size DAG of built-in operators.

    .venv/bin/python benchmarks/dag_parse_cost.py [--runs 7]

Every measurement is a fresh Python process (as a DAG-file processor starts cold), which first
imports ``airflow.sdk`` — the cost every DAG file pays — and then times only the execution of the
DAG file. The baseline, measured in the same run, is a generated DAG file with the same number of
tasks made of ``EmptyOperator``s, so the ratio is what using this provider's operators costs over
Airflow's own. Medians of ``--runs`` processes each; the provider's modules are byte-compiled first
(this machine sets PYTHONDONTWRITEBYTECODE, which would otherwise charge a compile to every run).

Two baselines, both measured in the same run, in rounds (example, then its baselines) so load
changes hit all three: the same DAG file with this provider's operators swapped for
``EmptyOperator`` (what the file costs with Airflow's own features alone: ``@task``, setup/teardown,
params; the ratio is what our modules add), and a generated chain of as many ``EmptyOperator``s.

``--ours-only`` adds generated DAGs of only this provider's operators (create branch, create and
suspend compute, the sensor, delete branch; no ``@task``) against a same-size chain.

Measured 2026-12-02 07:10 UTC (load 0.1-0.7, 7 runs each), after the masking rules, BranchTarget
and the SQL operator stopped importing the hook and the postgres provider at parse time:

    DAG file                               tasks    ms  same DAG, Empty  ratio  Empty chain  ratio
    example_jambo_anonymized_preview.py        5  50.6             32.5   1.56         13.7   3.70
    example_jambo_compute.py                   4  17.1             14.8   1.15         13.9   1.23
    example_jambo_ephemeral_branch.py          3  34.4             31.7   1.09         13.7   2.52
    example_jambo_janitor.py                   1  17.5             15.5   1.13         14.1   1.24
    example_jambo_operation_sensor.py          4  41.1             39.9   1.03         16.1   2.55
    example_jambo_preview_environment.py       6  56.3             36.3   1.55         14.7   3.82
    example_jambo_scheduled_report.py          3  36.4             14.8   2.46         14.4   2.54
    only our operators                         5  22.0                                 14.7   1.50
    only our operators                        50  28.0                                 19.6   1.43

(Before: the preview, report and anonymized examples took 108-122 ms, 2.9-6.1x the same DAG.)
Against the chain, the branch and sensor examples pay mostly for Airflow's ``@task`` decorator
(it imports the standard provider's PythonOperator and ``packaging``: 18-40 ms), not for ours; the
preview and report examples for the common.sql operator the SQL operator subclasses (~20 ms). A
DAG of only our operators pays ~7 ms once for our modules and ~0.1 ms per task over an
``EmptyOperator``. Importing ``airflow.sdk`` itself, paid by every DAG file and not counted, is ~900 ms.
"""

from __future__ import annotations

import argparse
import ast
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

with DAG(dag_id="baseline_{n}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    previous = None
    for i in range({n}):
        task = EmptyOperator(task_id=f"t{{i}}")
        if previous is not None:
            previous >> task
        previous = task
"""


# A DAG of this provider's operators and nothing else (no ``@task``), to compare with a chain of as
# many EmptyOperators: what a task of ours costs at parse time over one of Airflow's.
OURS_ONLY = """
from datetime import datetime, timedelta
from airflow.sdk import DAG
from airflow_provider_jambo.operators.branch_operators import (
    JamboCreateBranchOperator, JamboDeleteBranchOperator
)
from airflow_provider_jambo.operators.compute_operators import (
    JamboCreateComputeOperator, JamboSuspendComputeOperator
)
from airflow_provider_jambo.sensors.operation_sensor import JamboOperationSensor

with DAG(dag_id="ours_{n}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    previous = None
    for i in range({n} // 5):
        create = JamboCreateBranchOperator(
            task_id=f"create_{{i}}", branch_name=f"b-{{i}}", ttl=timedelta(hours=3)
        )
        compute = JamboCreateComputeOperator(
            task_id=f"compute_{{i}}", branch=create.output, compute_type="read_only"
        )
        suspend = JamboSuspendComputeOperator(task_id=f"suspend_{{i}}", endpoint_id="ep-quiet-sea-a5833nbi")
        wait = JamboOperationSensor(task_id=f"wait_{{i}}", branch=f"b-{{i}}", poke_interval=5)
        delete = JamboDeleteBranchOperator(task_id=f"delete_{{i}}", branch=create.output)
        create >> compute >> suspend >> wait >> delete
        if previous is not None:
            previous >> create
        previous = delete
"""

# The same DAG file with every operator/sensor of this provider replaced by an ``EmptyOperator``
# (and its other names by a plain function): what the file costs with Airflow's features alone
# (``@task``, setup/teardown, params), so the ratio is only what our modules add.
STAND_INS = """
import contextlib

from airflow.providers.common.compat.sdk import TaskGroup as _TaskGroup
from airflow.triggers.base import BaseEventTrigger as _BaseEventTrigger
from airflow.providers.standard.operators.empty import EmptyOperator as _EmptyOperator


def _operator_stand_in(*, task_id, **_):
    return _EmptyOperator(task_id=task_id)


def _function_stand_in(*args, **kwargs):
    return "stand-in"


class _Branch:
    branch = "stand-in"


class _Trigger(_BaseEventTrigger):
    def serialize(self):
        return (f"{__name__}._Trigger", {})

    async def run(self):
        yield None


def _trigger_stand_in(**_):
    return _Trigger()


@contextlib.contextmanager
def _group_stand_in(group_id, *, prefix_group_id=True, create_task_id="create_branch",
                    delete_task_id="delete_branch", **_):
    # The same tasks as the real group: a setup before the tasks inside, a teardown after them.
    with _TaskGroup(group_id, prefix_group_id=prefix_group_id):
        create = _EmptyOperator(task_id=create_task_id)
        yield _Branch()
        delete = _EmptyOperator(task_id=delete_task_id)
        delete.as_teardown(setups=create)
"""


def without_provider(source: str) -> str:
    """``source`` with the provider's imports at module level replaced by stand-ins."""
    tree = ast.parse(source)
    names: list[str] = []
    body: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("airflow_provider_jambo"):
            names.extend(alias.asname or alias.name for alias in node.names)
            continue
        body.append(node)
    future = [n for n in body if isinstance(n, ast.ImportFrom) and n.module == "__future__"]
    rest = [n for n in body if n not in future]
    stand_ins = ast.parse(STAND_INS).body
    for name in names:
        if name.endswith(("Operator", "Sensor")):
            target = "_operator_stand_in"
        elif name.endswith("Trigger"):
            target = "_trigger_stand_in"
        elif name.endswith("_group"):
            target = "_group_stand_in"
        else:
            target = "_function_stand_in"
        stand_ins.extend(ast.parse(f"{name} = {target}").body)
    tree.body = [*future, *stand_ins, *rest]
    return ast.unparse(tree)


def run_child(path: Path, env: dict[str, str]) -> tuple[float, int]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), int(out[1])


def medians(paths: list[Path], env: dict[str, str], runs: int) -> list[tuple[float, int]]:
    """Median cost of each of ``paths``, measured in rounds (each round runs every path once), so a
    change in the machine's load during the measurement hits the example and its baselines alike."""
    samples: list[list[tuple[float, int]]] = [[] for _ in paths]
    for _ in range(runs):
        for i, path in enumerate(paths):
            samples[i].append(run_child(path, env))
    return [(statistics.median(s[0] for s in column), column[0][1]) for column in samples]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="processes per DAG file (median taken)")
    parser.add_argument(
        "examples", nargs="*", help="example DAG files (names or substrings); default: every example"
    )
    parser.add_argument(
        "--ours-only",
        default="5,50",
        type=lambda text: [int(n) for n in text.split(",") if n],
        help="sizes of a generated DAG of only our operators (multiples of 5; empty: skip)",
    )
    args = parser.parse_args()
    examples = [e for e in EXAMPLES if not args.examples or any(a in e.name for a in args.examples)]

    compileall.compile_dir(str(ROOT / "airflow_provider_jambo"), quiet=1)
    with tempfile.TemporaryDirectory(prefix="jambo-parse-bench-") as tmp:
        env = {
            **os.environ,
            "AIRFLOW_HOME": tmp,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # No connection may be looked up while parsing: make any attempt fail loudly.
            "AIRFLOW_CONN_JAMBO_DEFAULT": "jambo://:not-a-key@127.0.0.1:9/api/v2",
        }
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(
            f"{'DAG file':40} {'tasks':>5} {'ms':>6} {'same DAG, Empty':>15} {'ratio':>6}"
            f" {'Empty chain':>11} {'ratio':>6}"
        )
        same_ratios, chain_ratios = [], []
        for example in examples:
            _, tasks = run_child(example, env)
            chain = Path(tmp) / f"chain_{tasks}.py"
            chain.write_text(BASELINE.format(n=tasks))
            same = Path(tmp) / f"same_{example.name}"
            same.write_text(without_provider(example.read_text()))
            measured = medians([example, same, chain], env, args.runs)
            (cost, _), (same_cost, same_tasks), (chain_cost, _) = measured
            if same_tasks != tasks:
                raise SystemExit(f"{example.name}: the stand-in DAG has {same_tasks} tasks, not {tasks}")
            same_ratios.append(cost / same_cost)
            chain_ratios.append(cost / chain_cost)
            print(
                f"{example.name:40} {tasks:5d} {cost * 1000:6.1f} {same_cost * 1000:15.1f}"
                f" {cost / same_cost:6.2f} {chain_cost * 1000:11.1f} {cost / chain_cost:6.2f}"
            )
        print(
            f"median ratio vs the same DAG with EmptyOperators: {statistics.median(same_ratios):.2f}; "
            f"vs a same-size chain of EmptyOperators: {statistics.median(chain_ratios):.2f}"
        )
        for n in args.ours_only:
            ours, chain = Path(tmp) / f"ours_{n}.py", Path(tmp) / f"chain_{n}.py"
            ours.write_text(OURS_ONLY.format(n=n))
            chain.write_text(BASELINE.format(n=n))
            (cost, tasks), (chain_cost, chain_tasks) = medians([ours, chain], env, args.runs)
            if tasks != chain_tasks:
                raise SystemExit(f"ours-only DAG has {tasks} tasks, its chain {chain_tasks}")
            print(
                f"{'only our operators':40} {tasks:5d} {cost * 1000:6.1f} {'':>15} {'':>6}"
                f" {chain_cost * 1000:11.1f} {cost / chain_cost:6.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
