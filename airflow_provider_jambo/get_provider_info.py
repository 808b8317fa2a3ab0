"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

Kept import-light on purpose: Airflow calls this for every CLI command and DAG-processor start.
Connection form metadata lives here (``conn-fields``/``ui-field-behaviour``), which Airflow 3.2+
reads without importing the hook.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_jambo import __version__
from airflow_provider_jambo.limits import DEFAULT_REQUESTS_PER_MINUTE, SERVICE_REQUESTS_PER_MINUTE

DEFAULT_BASE_URL = "https://console.neon.tech/api/v2"


_BRANCH_URIS = {
    "schemes": ["jambo"],
    "handler": "airflow_provider_jambo.assets.sanitize_uri",
    "factory": "airflow_provider_jambo.assets.create_asset",
    "to_openlineage_converter": "airflow_provider_jambo.assets.convert_asset_to_openlineage",
}


def get_provider_info() -> dict[str, Any]:
    return {
        # Must equal the canonical distribution name, or `airflow providers ...` crashes.
        "package-name": "airflow-provider-jambo",
        "name": "Jambo",
        "description": "Manage Jambo serverless-Postgres branches, computes and operations from Airflow.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Jambo",
                "external-doc-url": "https://api-docs.neon.tech/reference/getting-started-with-neon-api",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Jambo",
                # hooks.branch_postgres (JamboPostgresHook) needs the `postgres` extra.
                "python-modules": [
                    "airflow_provider_jambo.hooks.jambo",
                    "airflow_provider_jambo.hooks.branch_postgres",
                ],
            },
        ],
        "operators": [
            {
                "integration-name": "Jambo",
                "python-modules": [
                    "airflow_provider_jambo.operators.anonymized_branch_operator",
                    "airflow_provider_jambo.operators.branch_operators",
                    "airflow_provider_jambo.operators.compute_operators",
                    "airflow_provider_jambo.operators.janitor",
                    "airflow_provider_jambo.operators.snapshot_operators",
                    # JamboBranchSQLOperator needs the `postgres` extra.
                    "airflow_provider_jambo.operators.branch_sql_operator",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Jambo",
                "python-modules": ["airflow_provider_jambo.sensors.operation_sensor"],
            },
        ],
        "triggers": [
            {
                "integration-name": "Jambo",
                "python-modules": [
                    "airflow_provider_jambo.triggers.anonymization_trigger",
                    "airflow_provider_jambo.triggers.operation_trigger",
                    "airflow_provider_jambo.triggers.events",
                ],
            },
        ],
        "task-decorators": [
            {
                "class-name": "airflow_provider_jambo.decorators.jambo_branch.jambo_branch_task",
                "name": "jambo_branch",
            },
        ],
        # One asset per branch: jambo://<project id>/<branch name> (assets.py).
        "asset-uris": [_BRANCH_URIS],
        "dataset-uris": [_BRANCH_URIS],  # Airflow 2's name for the same
        "extra-links": ["airflow_provider_jambo.links.JamboConsoleLink"],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_jambo.hooks.jambo.JamboHook",
                "hook-name": "Jambo",
                "connection-type": "jambo",
                "conn-fields": {
                    "project_id": {
                        "label": "Default project id",
                        "description": "Used when an operator names no project_id.",
                        "schema": {"type": ["string", "null"], "pattern": "^[a-z0-9-]{1,60}$"},
                    },
                    "org_id": {
                        "label": "Organization id",
                        "description": "For organization API keys (org-...).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "timeout": {
                        "label": "Request timeout (seconds)",
                        "description": "Read timeout of one API request.",
                        "schema": {"type": ["number", "null"], "default": 30},
                    },
                    "max_retries": {
                        "label": "Max retries",
                        "description": "Retries of a failed request (423, 429, 5xx, transport errors).",
                        "schema": {"type": ["integer", "null"], "default": 8},
                    },
                    "retry_max_wait": {
                        "label": "Max total retry time (seconds)",
                        "schema": {"type": ["number", "null"], "default": 300},
                    },
                    "requests_per_minute": {
                        "label": "Request budget (per minute)",
                        "description": (
                            "What each Airflow process may send to the account per minute, shared by "
                            f"all its tasks and triggers; at most {SERVICE_REQUESTS_PER_MINUTE} (the "
                            "service's limit). Lower it when several processes or other clients share "
                            "the account."
                        ),
                        "schema": {
                            "type": ["number", "null"],
                            "default": DEFAULT_REQUESTS_PER_MINUTE,
                            "exclusiveMinimum": 0,
                            "maximum": SERVICE_REQUESTS_PER_MINUTE,
                        },
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["login", "schema", "port"],
                    "relabeling": {"password": "API key", "host": "API base URL"},
                    "placeholders": {
                        "host": DEFAULT_BASE_URL,
                        "password": "Jambo API key",
                        "project_id": "old-violet-32930710",
                    },
                },
            }
        ],
    }
