"""The README's main job, run exactly as a new user would: ``bash scripts/main-job``.

Slow (it migrates an Airflow home, starts the emulator with PostgreSQL and runs a DAG), so one run:
the success path. (The bad-data path of the same DAG is covered by tests/dags/test_preview_dags.py;
``scripts/main-job --bad-data`` drives it by hand.) The script checks the branch is gone and main is
untouched; here we check it said so, printed the story, and left no emulator running.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.dags, pytest.mark.postgres]


def run_main_job(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW__", "AIRFLOW_HOME"))
    }
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "main-job"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def emulator_processes() -> set[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return {
        line.split()[0] for line in out.splitlines() if "jambo-emulator" in line and "main-job-key" in line
    }


def test_main_job_runs_the_preview_dag_and_the_branch_is_gone() -> None:
    before = emulator_processes()
    proc = run_main_job()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-8000:]
    assert re.search(r"create_branch\s+success\s+branch preview-\S+ \(br-[a-z0-9-]+\)", out), out
    assert re.search(r"transform\s+success\s+rows transformed: 4", out), out
    assert re.search(r"check_data_quality\s+success\s+4 checks passed", out), out
    assert "customer_revenue" in out  # the schema diff is printed
    assert re.search(r"delete_branch\s+success\s+branch deleted", out), out
    assert re.search(r"API: branch br-[a-z0-9-]+ is gone \(GET -> 404\); branches left: main\n", out), out
    assert "main untouched: still 6 orders" in out
    assert out.rstrip().splitlines()[-1].startswith("[main-job] OK: the preview run succeeded")
    assert emulator_processes() <= before, "the main job left its emulator running"
