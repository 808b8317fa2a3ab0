"""Real PostgreSQL data behind emulated branches (optional; see ``base.DataPlane``)."""

from airflow_provider_jambo.emulator.dataplane.base import DataPlane, EndpointAddress, NullDataPlane

__all__ = ["DataPlane", "EndpointAddress", "NullDataPlane"]
