"""jambo:// asset URIs: registered with Airflow, normalised, refused when malformed, named for lineage."""

from __future__ import annotations

import importlib.util
from importlib.metadata import version
from urllib.parse import urlsplit

import pytest
from airflow.providers.common.compat.sdk import Asset

from airflow_provider_jambo.assets import branch_uri, convert_asset_to_openlineage, create_asset, sanitize_uri
from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.get_provider_info import get_provider_info

AIRFLOW_2 = version("apache-airflow").startswith("2.")


def test_the_scheme_is_registered_under_asset_uris() -> None:
    [entry] = get_provider_info()["asset-uris"]
    assert entry["schemes"] == ["jambo"]
    assert entry["handler"] == "airflow_provider_jambo.assets.sanitize_uri"


def test_airflow_normalises_a_branch_uri_through_the_provider() -> None:
    if not AIRFLOW_2:  # Airflow 2 finds the handler through its dataset-uris
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

        assert ProvidersManagerTaskRuntime().asset_uri_handlers["jambo"] is sanitize_uri
    asset = Asset(uri="jambo://old-violet-32930710/preview/pr 7/")  # Airflow strips the trailing slash
    assert asset.uri == "jambo://old-violet-32930710/preview/pr%207"


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("jambo:///staging", "project id"),
        ("jambo://Not_An_Id/staging", "project id"),
        ("jambo://p-1", "branch name"),
        ("jambo://p-1/", "branch name"),
        ("jambo://p-1/staging?x=1", "no query"),
    ],
)
def test_a_malformed_uri_is_refused_naming_the_form(uri: str, says: str) -> None:
    with pytest.raises(JamboConfigError, match="jambo://<project id>/<branch name>") as err:
        sanitize_uri(urlsplit(uri))
    assert says in str(err.value)


@pytest.mark.skipif(
    importlib.util.find_spec("airflow.providers.openlineage") is None,
    reason="the OpenLineage provider is not installed (optional)",
)
def test_factory_and_openlineage_name_the_project_and_the_branch() -> None:
    asset = create_asset(project_id="p-1", branch_name="preview/a b", extra={"team": "data"})
    assert asset.uri == branch_uri("p-1", "preview/a b") == "jambo://p-1/preview/a%20b"
    dataset = convert_asset_to_openlineage(asset, None)
    assert (dataset.namespace, dataset.name) == ("jambo://p-1", "preview/a b")
