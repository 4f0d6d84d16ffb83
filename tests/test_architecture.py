"""The shape of the code (docs/design.md): solvers/ never imports sgdsim, no module imports another module's
private names, and the library's module-level imports have no cycle."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"sgdsim": ROOT / "sgdsim", "sgdsim.solvers": ROOT / "solvers", "sgdsim.scenarios": ROOT / "scenarios"}


def modules():
    """(dotted name, path) of every module of the three installed packages."""
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            name = ".".join((package, *parts))
            yield (name[: -len(".__init__")] if name.endswith(".__init__") else name), path


def imports(name: str, path: Path, top_level_only: bool):
    """(imported module, imported names) for each import statement of a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []


def test_solvers_never_import_sgdsim_outside_itself():
    for name, path in modules():
        if name.startswith("sgdsim.solvers"):
            for target, _ in imports(name, path, top_level_only=False):
                assert not (target.startswith("sgdsim") and not target.startswith("sgdsim.solvers")), \
                    f"{name} imports {target}"


def test_no_module_imports_a_private_name_of_another():
    known = {name for name, _ in modules()}
    bad = []
    for name, path in modules():
        for target, names in imports(name, path, top_level_only=False):
            for imported in names:
                if imported.startswith("_") and not imported.startswith("__") and f"{target}.{imported}" not in known:
                    bad.append(f"{name}: from {target} import {imported}")
    assert not bad, "\n".join(bad)


def test_module_level_imports_have_no_cycle():
    known = {name for name, _ in modules()}
    graph = {}
    for name, path in modules():
        edges = set()
        for target, names in imports(name, path, top_level_only=True):
            for candidate in [f"{target}.{n}" for n in names] + [target]:
                if candidate in known and candidate != name:
                    edges.add(candidate)
                    break
        graph[name] = edges
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


ENGINES = ("particles", "fokker_planck", "deep_linear", "spin_glass", "networks", "highdim")


def test_each_engine_is_one_folder_on_each_side_and_in_the_tests():
    for engine in ENGINES:
        for side in (ROOT / "sgdsim", ROOT / "solvers", ROOT / "tests"):
            assert (side / engine).is_dir(), f"{engine} has no folder in {side.name}/"
    for side in (ROOT / "sgdsim", ROOT / "solvers"):
        for folder in side.iterdir():
            if folder.is_dir() and folder.name != "__pycache__":
                assert (ROOT / "tests" / folder.name).is_dir(), f"tests/ does not mirror {side.name}/{folder.name}"


def test_the_library_imports_modules_at_their_homes_not_by_their_legacy_names():
    from sgdsim.legacy import MODULES
    legacy = {f"sgdsim.{name}" for name in MODULES}
    bad = []
    for folder in (ROOT / "sgdsim", ROOT / "solvers", ROOT / "scenarios", ROOT / "tests", ROOT / "benchmarks"):
        for path in sorted(folder.rglob("*.py")):
            if path.name == "test_legacy.py":
                continue
            name = next((n for n, p in modules() if p == path), f"tests.{path.stem}")
            for target, names in imports(name, path, top_level_only=False):
                hits = [target] if target in legacy else [f"{target}.{n}" for n in names
                                                         if f"{target}.{n}" in legacy]
                bad += [f"{path.relative_to(ROOT)}: {hit}" for hit in hits]
    assert not bad, "\n".join(bad)
