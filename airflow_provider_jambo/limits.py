"""The service's request limit and the provider's default share of it.

Free of imports on purpose: ``get_provider_info`` shows these in the connection form, and Airflow
reads it while it discovers providers (before ``airflow`` itself is importable from here). The
budget that enforces them is ``hooks/budget.py``.
"""

#: The service's limit per account (behaviour notes); the budget must stay below it.
SERVICE_REQUESTS_PER_MINUTE = 700
#: Default budget per process: ~80% of the limit, leaving room for the account's other clients.
DEFAULT_REQUESTS_PER_MINUTE = 560.0
