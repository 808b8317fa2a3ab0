"""The ``/api/v2`` route modules, one per resource (assembled in ``api/router.py``)."""
