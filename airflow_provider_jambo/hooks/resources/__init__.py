"""The hook's resource groups (``hook.branches``, ``hook.computes``, ...), one module each."""
