"""OpenLineage for the branch operators: a create is CREATE (its parent the input), a reset OVERWRITE
(its source the input), a delete DROP; the OpenLineage provider stays optional.

A branch is the dataset ``jambo://<project id>`` / ``<branch name>`` (as its asset, ``assets.py``).
The OpenLineage listener asks for the facets in a forked process that cannot reach the task's
supervisor, so nothing here looks anything up: the operator records the change it made
(:class:`BranchChange`) when it succeeded, names included, and the facets are built from that. A
failed task reports no change: what it made was undone (all or nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_jambo.assets import lineage_name

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage


@dataclass(frozen=True)
class BranchChange:
    """What a branch task changed: the branch, and the branch its data came from (if any)."""

    kind: Literal["CREATE", "OVERWRITE", "DROP"]
    project_id: str
    branch_name: str
    source_name: str | None = None


def lineage_enabled() -> bool:
    """Whether OpenLineage will ask (installed and not disabled): only then is a name looked up."""
    try:
        from airflow.providers.openlineage.conf import is_disabled
    except ImportError:
        return False
    return not is_disabled()


class BranchLineageMixin:
    """The OpenLineage methods of a branch operator; it sets ``branch_change`` when it succeeds."""

    branch_change: BranchChange | None = None

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        change = self.branch_change
        if change is None:
            return None
        try:
            from airflow.providers.common.compat.openlineage.facet import (
                Dataset,
                LifecycleStateChange,
                LifecycleStateChangeDatasetFacet,
                PreviousIdentifier,
            )
            from airflow.providers.openlineage.extractors import OperatorLineage
        except ImportError:
            return None
        namespace, name = lineage_name(change.project_id, change.branch_name)
        previous = PreviousIdentifier(namespace=namespace, name=name) if change.kind == "DROP" else None
        facet = LifecycleStateChangeDatasetFacet(
            lifecycleStateChange=LifecycleStateChange[change.kind], previousIdentifier=previous
        )
        inputs = []
        if change.source_name is not None:
            source_namespace, source = lineage_name(change.project_id, change.source_name)
            inputs.append(Dataset(namespace=source_namespace, name=source))
        output = Dataset(namespace=namespace, name=name, facets={"lifecycleStateChange": facet})
        return OperatorLineage(inputs=inputs, outputs=[output])

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage | None:
        return None  # nothing a failed task made is left (all or nothing)
