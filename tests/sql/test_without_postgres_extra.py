"""Without the ``postgres`` extra the provider still works; only SQL on a branch says what is missing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    from importlib.abc import MetaPathFinder

    class NoPostgresExtra(MetaPathFinder):
        # The provider's metadata stays discoverable (its entry point is installed here); its
        # hooks and the driver are what the extra brings.
        def find_spec(self, name, path=None, target=None):
            if name.startswith(("airflow.providers.postgres.hooks", "psycopg")):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, NoPostgresExtra())

    import airflow_provider_jambo.hooks.jambo
    import airflow_provider_jambo.operators.branch_operators
    import airflow_provider_jambo.operators.compute_operators
    import airflow_provider_jambo.operators.janitor
    print("base: ok")
    try:
        import airflow_provider_jambo.hooks.branch_postgres
    except Exception as err:
        print(f"sql: {type(err).__name__}: {err}")
    """
)


def test_base_package_imports_without_the_extra_and_sql_names_it() -> None:
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert "base: ok" in lines
    assert (
        "sql: AirflowOptionalProviderFeatureException: SQL on a Jambo branch needs the postgres provider: "
        "pip install 'airflow-provider-jambo[postgres]'"
    ) in lines, proc.stdout
