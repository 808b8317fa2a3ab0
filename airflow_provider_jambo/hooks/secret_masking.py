"""Registering secrets with Airflow's secrets masker before anyone sees them.

The API key (when a connection is loaded), role passwords and connection URIs (and the passwords
inside them) go through here, the one place that calls ``mask_secret``.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

from airflow.providers.common.compat.sdk import mask_secret

from airflow_provider_jambo.api_models import Role


def mask_api_key(api_key: str) -> None:
    mask_secret(api_key)


def mask_password(password: str) -> None:
    mask_secret(password)


def mask_secrets(roles: Sequence[Role] = (), uris: Sequence[str] = ()) -> None:
    """Register role passwords and connection URIs (and the passwords inside them, raw and
    percent-decoded) with the secrets masker before they are returned to anyone."""
    for role in roles:
        if role.password:
            mask_secret(role.password)
    for uri in uris:
        try:
            password = urlsplit(uri).password
        except ValueError:
            password = None
        if password:
            mask_secret(password)
            mask_secret(unquote(password))
        mask_secret(uri)
