"""The import graphs of both packages: no cycle, and neither package names the other.

Every ``import`` counts, wherever it stands: at module level, inside a function (an import placed
there to dodge a cycle is still the cycle) and under ``TYPE_CHECKING`` (a type-only import still says
that a lower module knows a higher one). The graph is read from the source with ``ast``, so nothing
is imported and the test sees exactly what a reader sees. An import of a package's ``__init__``
(``import pkg``, ``from pkg import name``) counts as an edge to that ``__init__``; the implicit import
of parent packages does not (it is how Python loads any submodule, not a dependency the code chose),
so ``from pkg import submodule`` is an edge to the submodule alone. ``importlib.import_module`` calls (the
emulator package's lazy names) are not imports a reader sees at the top of a file and are not read.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Each package's import name and the folder holding it.
PACKAGES = {
    "airflow_provider_jambo": ROOT / "airflow_provider_jambo",
    "jambo_emulator": ROOT / "emulator" / "jambo_emulator",
}


@dataclass(frozen=True)
class Import:
    """One import statement's target as written, resolved to an absolute dotted name."""

    source: str
    target: str
    line: int


def _module_name(package: str, folder: Path, path: Path) -> str:
    parts = [package, *path.relative_to(folder).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(package: str) -> dict[str, Path]:
    """Every module of ``package``, by dotted name."""
    folder = PACKAGES[package]
    return {_module_name(package, folder, path): path for path in sorted(folder.rglob("*.py"))}


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    # A relative import counts from the module's package (a package's __init__ is its own package).
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports(module: str, path: Path, known: set[str]) -> Iterator[Import]:
    """Every import in the file. ``from X import Y`` is an import of the module ``X.Y`` when there is
    one (Python loads ``X`` on the way, as it loads every parent package), else of ``X``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path, node)
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                yield Import(module, submodule if submodule in known else target, node.lineno)


def graph(package: str) -> dict[str, set[str]]:
    """module -> the modules of the same package it imports."""
    known = modules(package)
    edges: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for imp in imports(name, path, set(known)):
            if imp.target in known and imp.target != name:
                edges[name].add(imp.target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _describe(edges: dict[str, set[str]], component: list[str]) -> str:
    members = set(component)
    arrows = [f"  {a} -> {b}" for a in component for b in sorted(edges[a] & members)]
    return "\n".join([f"cycle of {len(component)} modules:", *arrows])


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_import_cycle(package: str) -> None:
    edges = graph(package)
    assert len(edges) > 10, f"found only {len(edges)} modules of {package}: the walk is broken"
    found = cycles(edges)
    assert not found, "\n".join(_describe(edges, c) for c in found)


#: Each package's layers, lowest first, each with the top-level names (subpackages or modules) it
#: holds ("" is the package's own ``__init__``): a module may import its own layer and the ones below.
#: In the provider every module has a layer; in the emulator the package's top (its command, the
#: in-process server, the pytest plugin, ``__init__``) stands above them all.
LAYERS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "airflow_provider_jambo": (
        # What the API and the user say, checked: no I/O, importable while a DAG is parsed.
        (
            "rules and data",
            (
                "",
                "exceptions",
                "rules",
                "limits",
                "api_models",
                "create_branch_request",
                "masking_rules",
                "branch_target",
                "branch_events",
                "assets",
                "get_provider_info",
            ),
        ),
        ("hooks", ("hooks",)),  # talking to the API (and to a branch's database)
        ("triggers", ("triggers",)),  # waiting in the triggerer
        # what a DAG names (cosmos: the dbt profile mapping a Cosmos task group is given)
        ("tasks", ("operators", "sensors", "links", "cosmos")),
        ("decorators", ("decorators",)),  # @task.jambo_branch, the branch task group: built on tasks
    ),
    "jambo_emulator": (
        ("dataplane", ("dataplane",)),  # real PostgreSQL behind branches: knows nothing of the API
        ("state", ("state",)),  # records, the store, clock, ids, config, faults: the shared state
        ("resources", ("resources",)),  # one module per resource, all its rules
        ("api", ("api",)),  # HTTP: bodies, serialization, routes, the gate, the control API
    ),
}


def _layer(package: str, module: str) -> int | None:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    for index, (_, names) in enumerate(LAYERS[package]):
        if top in names:
            return index
    return None


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_a_lower_layer_names_no_higher_one(package: str) -> None:
    edges = graph(package)
    names = [name for name, _ in LAYERS[package]]
    bad = [
        f"{source} ({names[low]}) imports {target} ({names[high]})"
        for source, targets in sorted(edges.items())
        if (low := _layer(package, source)) is not None
        for target in sorted(targets)
        if (high := _layer(package, target)) is not None and high > low
    ]
    assert not bad, "\n".join(bad)
    # Every layer holds modules, so a renamed folder cannot leave the rule checking nothing.
    assert {_layer(package, m) for m in edges} >= set(range(len(names)))


def test_every_provider_module_has_a_layer() -> None:
    # A new top-level module must say where it stands (in LAYERS above).
    unplaced = [m for m in graph("airflow_provider_jambo") if _layer("airflow_provider_jambo", m) is None]
    assert not unplaced, unplaced


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        # The emulator is a program of its own: it runs without Airflow and without the provider.
        ("jambo_emulator", ("airflow", "airflow_provider_jambo")),
        # The provider ships without the emulator; only its tests and scripts use it.
        ("airflow_provider_jambo", ("jambo_emulator",)),
    ],
)
def test_packages_do_not_name_each_other(package: str, forbidden: tuple[str, ...]) -> None:
    bad = [
        f"{imp.source}:{imp.line} imports {imp.target}"
        for name, path in modules(package).items()
        for imp in imports(name, path, set())
        if any(imp.target == f or imp.target.startswith(f + ".") for f in forbidden)
    ]
    assert not bad, "\n".join(bad)


def test_the_cycle_finder_finds_cycles_type_only_and_function_level_imports(tmp_path: Path) -> None:
    # The checker itself, on a made-up package: a -> b at module level, b -> c inside a function,
    # c -> a only under TYPE_CHECKING, and d -> a (outside the cycle).
    pkg = tmp_path / "demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from demo import b\n")
    (pkg / "b.py").write_text("def f():\n    from . import c\n    return c\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from demo.a import thing\n"
    )
    (pkg / "d.py").write_text("import demo.a\n")
    PACKAGES["demo"] = pkg
    try:
        edges = graph("demo")
    finally:
        del PACKAGES["demo"]
    assert edges["demo.a"] == {"demo.b"}
    assert edges["demo.b"] == {"demo.c"}
    assert edges["demo.c"] == {"demo.a"}
    assert cycles(edges) == [["demo.a", "demo.b", "demo.c"]]
