"""Apache Airflow provider for the Jambo serverless-Postgres API."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
