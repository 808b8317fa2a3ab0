"""The documentation site's reference names every operator, sensor, trigger and decorator the package
defines.

The pages render each class's parameters from its docstring (mkdocstrings), so a class added to the
package and not to a page would be missing from the docs without any build error. Read statically:
the classes are found with ``ast``, the pages' ``::: dotted.path`` directives as text.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "airflow_provider_jambo"
DOCUMENTED_AREAS = ("operators", "sensors", "triggers")
#: Where the public names are functions too (``jambo_branch_task``, ``jambo_branch_group``).
DECORATORS = "decorators"
#: Modules whose public classes exist only with an optional dependency (defined under ``try``/``else``).
OPTIONAL_MODULES = ("cosmos.py",)


def _public_classes() -> set[str]:
    found: set[str] = set()
    for area in DOCUMENTED_AREAS:
        for path in sorted((PACKAGE / area).glob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            tree = ast.parse(path.read_text(encoding="utf-8"))
            found |= {
                f"{module}.{node.name}"
                for node in tree.body
                if isinstance(node, ast.ClassDef) and node.name.startswith("Jambo")
            }
    for path in sorted((PACKAGE / DECORATORS).glob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found |= {
            f"{module}.{node.name}"
            for node in tree.body
            if isinstance(node, ast.ClassDef | ast.FunctionDef) and not node.name.startswith("_")
        }
    for name in OPTIONAL_MODULES:
        path = PACKAGE / name
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found |= {
            f"{module}.{node.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef) and node.name.startswith("Jambo")
        }
    return found


def _directives() -> set[str]:
    text = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").rglob("*.md"))
    return set(re.findall(r"^::: ([\w.]+)", text, flags=re.MULTILINE))


def test_every_operator_sensor_trigger_and_decorator_has_a_reference_entry() -> None:
    classes = _public_classes()
    assert len(classes) > 15, classes  # the walk found the package
    assert any(".decorators." in c for c in classes), classes
    assert "airflow_provider_jambo.cosmos.JamboBranchProfileMapping" in classes, classes
    directives = _directives()
    # A class is documented by its own directive or by one for its whole module.
    missing = sorted(c for c in classes if c not in directives and c.rsplit(".", 1)[0] not in directives)
    assert not missing, f"add these to docs/reference/: {missing}"
