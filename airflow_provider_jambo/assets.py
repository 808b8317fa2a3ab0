"""``jambo://<project id>/<branch name>``: an asset (a dataset on Airflow 2) for one branch of a project.

Registered under the provider's ``asset-uris`` (``dataset-uris`` on Airflow 2) in
``get_provider_info.py``: Airflow calls :func:`sanitize_uri` on every asset URI of this scheme when
a DAG is parsed, :func:`create_asset` builds one, and :func:`convert_asset_to_openlineage` names it
for OpenLineage (namespace ``jambo://<project id>``, name the branch name). A branch is named, not
identified: ``jambo://p/staging`` stays the same asset across resets and re-creates, which is what
"staging was refreshed" schedules on. Imports nothing heavy: it runs while DAGs are parsed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.rules import ID_PATTERN, ID_RULE, check_id, check_name

if TYPE_CHECKING:
    from urllib.parse import SplitResult

    from airflow.providers.common.compat.openlineage.facet import Dataset as OpenLineageDataset

SCHEME = "jambo"
URI_FORM = "jambo://<project id>/<branch name>"


def branch_uri(project_id: str, branch_name: str) -> str:
    """The URI of a branch, its name percent-encoded where a URI needs it (``/`` is kept)."""
    check_id("project_id", project_id)
    check_name("branch_name", branch_name)
    return f"{SCHEME}://{project_id}/{quote(branch_name, safe='/')}"


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Airflow's normaliser for the scheme: a project id as the host, a branch name as the path,
    nothing else (no port, user, query)."""
    if not uri.netloc or not ID_PATTERN.match(uri.netloc):
        raise JamboConfigError(
            f"URI format {URI_FORM}: the host must be a project id, {ID_RULE}; got {uri.netloc!r}"
        )
    name = unquote(uri.path.lstrip("/"))
    if not name:
        raise JamboConfigError(f"URI format {URI_FORM}: the path must be a branch name")
    if uri.query:
        raise JamboConfigError(f"URI format {URI_FORM}: no query allowed, got {uri.query!r}")
    check_name("branch_name", name)
    return uri._replace(scheme=SCHEME, path="/" + quote(name, safe="/"))


def create_asset(*, project_id: str, branch_name: str, extra: dict[str, Any] | None = None) -> Any:
    """An ``Asset`` (``Dataset`` on Airflow 2) for the branch."""
    from airflow.providers.common.compat.sdk import Asset

    return Asset(uri=branch_uri(project_id, branch_name), extra=extra)


def lineage_name(project_id: str, branch_name: str) -> tuple[str, str]:
    """A branch's OpenLineage (namespace, name): ``jambo://<project id>`` and the branch name."""
    return f"{SCHEME}://{project_id}", branch_name


def convert_asset_to_openlineage(asset: Any, lineage_context: Any) -> OpenLineageDataset:
    """The OpenLineage dataset of a branch's asset (:func:`lineage_name`)."""
    from urllib.parse import urlsplit

    from airflow.providers.common.compat.openlineage.facet import Dataset as OpenLineageDataset

    parsed = urlsplit(asset.uri)
    namespace, name = lineage_name(parsed.netloc, unquote(parsed.path.lstrip("/")))
    return OpenLineageDataset(namespace=namespace, name=name)
