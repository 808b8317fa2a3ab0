"""One module per resource, holding all of its rules (the backend, as moto's ``models.py``)."""
