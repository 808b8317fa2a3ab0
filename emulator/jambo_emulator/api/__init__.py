"""The HTTP side: app factory, gate, request bodies, serialization, routes, the control API."""
