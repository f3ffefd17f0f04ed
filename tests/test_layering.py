"""meshlm's imports point down: no cycle between meshlm modules, no layer importing a higher one,
and the codec's modules needing nothing but the standard library, numpy, meshlm.errors and each
other.

Every ``.py`` file under meshlm/ is parsed with :mod:`ast` (nothing is imported, so optional
dependencies do not matter): module-level imports and imports inside functions alike. Imports
under ``if TYPE_CHECKING:`` are left out (annotations only; they never run). ``from pkg import
name`` is an import of the submodule ``pkg.name`` when that module exists, else of ``pkg``. The
implicit import of a parent package (``meshlm.x.y`` runs ``meshlm/x/__init__.py`` first) is not
an edge. The layers are read from docs/architecture.md ("Layers"), the one place they are
written down.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "meshlm"
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def _modules() -> dict[str, Path | None]:
    """Module name -> source file (None for a compiled extension, known by its ``.c`` source)."""
    mods: dict[str, Path | None] = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = p
    for c in PKG.rglob("*.c"):
        mods.setdefault(".".join(c.relative_to(ROOT).with_suffix("").parts), None)
    return mods


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, package: str):
    """Yield (imported module name, line, inside a function) for every import statement."""

    def walk(node: ast.AST, in_function: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for sub in child.orelse:
                    yield from walk_one(sub, in_function)
                continue
            yield from walk_one(child, in_function)

    def walk_one(node: ast.AST, in_function: bool):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, in_function, None
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for alias in node.names:
                yield mod, node.lineno, in_function, alias.name
        else:
            fn = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            yield from walk(node, in_function or fn)

    yield from walk(tree, False)


def _in_function_imports() -> list[str]:
    """Every import of a meshlm module made inside a function, as 'module line N -> target'."""
    found = []
    for name, path in _modules().items():
        if path is None:
            continue
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for mod, line, in_fn, _ in _imports(tree, package):
            if in_fn and mod.split(".")[0] == "meshlm":
                found.append(f"{name} line {line} -> {mod}")
    return found


def _graph() -> tuple[dict[str, dict[str, list[str]]], dict[str, set[str]]]:
    """(meshlm edges: module -> {imported module: ["line 12", "line 40 (in a function)"]},
    top-level names of everything else each module imports)."""
    mods = _modules()
    edges: dict[str, dict[str, list[str]]] = {m: {} for m in mods}
    outside: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        if path is None:
            continue
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for mod, line, in_fn, alias in _imports(tree, package):
            if mod.split(".")[0] != "meshlm":
                outside[name].add(mod.split(".")[0])
                continue
            target = mod
            if alias is not None and f"{mod}.{alias}" in mods:
                target = f"{mod}.{alias}"  # from meshlm.data import templates: the submodule
            while target not in mods:  # from meshlm.codec.x import y: the module meshlm.codec
                target = target.rpartition(".")[0]
            where = f"line {line}" + (" (in a function)" if in_fn else "")
            if target != name and where not in edges[name].get(target, []):
                edges[name].setdefault(target, []).append(where)
    return edges, outside


def _cycles(edges: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def _layers() -> list[tuple[str, list[str]]]:
    """The layer table of docs/architecture.md, lowest first: (layer name, module patterns).
    A pattern is a module name or ``pkg.*`` (every module in the package and the package)."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    layers = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].isdigit():
            layers.append((f"{cells[0]} {cells[1]}", re.findall(r"`([\w.*]+)`", cells[2])))
    return layers


def _layer_of(module: str, layers) -> int | None:
    """Index of the layer naming ``module`` exactly, else of the one whose ``pkg.*`` covers it
    (the longest package wins)."""
    for i, (_, pats) in enumerate(layers):
        if module in pats:
            return i
    best = None
    for i, (_, pats) in enumerate(layers):
        for p in pats:
            if p.endswith(".*"):
                pkg = p[:-2]
                if (module == pkg or module.startswith(pkg + ".")) and (
                    best is None or len(pkg) > best[0]
                ):
                    best = (len(pkg), i)
    return None if best is None else best[1]


EDGES, OUTSIDE = _graph()


def test_the_graph_sees_known_imports():
    # the parser finds module-level, in-function and relative-free submodule imports
    assert "meshlm.errors" in EDGES["meshlm.codec"]
    assert "meshlm.codec" in EDGES["meshlm.lenient"]
    assert "meshlm.data.templates" in EDGES["meshlm.data.conversations"]
    assert "meshlm.prompts" in EDGES["meshlm.infer.engine"]
    assert len(EDGES) > 60


def test_no_cycle_between_meshlm_modules():
    cycles = _cycles(EDGES)
    lines = []
    for comp in cycles:
        inside = set(comp)
        for m in comp:
            for t, where in sorted(EDGES[m].items()):
                if t in inside:
                    lines.append(f"  {m} -> {t} ({', '.join(where)})")
    assert not cycles, "import cycles between meshlm modules:\n" + "\n".join(lines)


CODEC_LAYER = ["meshlm.codec", "meshlm.grid", "meshlm.polygons", "meshlm.canonical"]


def test_the_codec_layer_is_what_the_table_says():
    layers = _layers()
    assert sorted(layers[_layer_of("meshlm.codec", layers)][1]) == sorted(CODEC_LAYER)


@pytest.mark.parametrize("module", CODEC_LAYER)
def test_the_codec_needs_the_standard_library_numpy_and_errors_only(module):
    # the codec modules may import each other (no cycle: another test), errors and the kernel
    allowed_meshlm = {"meshlm.errors", "meshlm._ccodec", *CODEC_LAYER}
    assert set(EDGES[module]) <= allowed_meshlm, EDGES[module]
    others = OUTSIDE[module] - set(sys.stdlib_module_names) - {"numpy", "__future__"}
    assert not others, f"{module} imports {sorted(others)}"


def test_every_module_has_a_layer():
    layers = _layers()
    assert len(layers) >= 6, "docs/architecture.md has no layer table"
    missing = sorted(m for m in EDGES if _layer_of(m, layers) is None)
    assert not missing, f"modules with no layer in docs/architecture.md: {missing}"


def test_imports_point_down():
    layers = _layers()
    bad = []
    for m, targets in sorted(EDGES.items()):
        lm = _layer_of(m, layers)
        for t, where in sorted(targets.items()):
            lt = _layer_of(t, layers)
            if lm is not None and lt is not None and lt > lm:
                bad.append(
                    f"  {m} (layer {layers[lm][0]}) imports {t} (layer {layers[lt][0]}), "
                    + ", ".join(where)
                )
    assert not bad, "imports that point up (docs/architecture.md, Layers):\n" + "\n".join(bad)


@pytest.mark.parametrize(
    "module",
    [*CODEC_LAYER, "meshlm.lenient", "meshlm.parts", "meshlm.partorder", "meshlm.meshtext"],
)
def test_text_layers_import_no_heavy_library(module):
    heavy = {"torch", "transformers", "trimesh", "gradio", "llama_cpp", "scipy", "trl", "peft"}
    assert not OUTSIDE[module] & heavy, OUTSIDE[module] & heavy


def _module_level_third_party() -> dict[str, set[str]]:
    """Module -> top-level names of the non-standard-library packages it imports at module level."""
    out = {}
    for name, path in _modules().items():
        if path is None:
            continue
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        tops = {m.split(".")[0] for m, _, in_fn, _ in _imports(tree, package) if not in_fn}
        out[name] = tops - set(sys.stdlib_module_names) - {"meshlm", "__future__"}
    return out


def test_module_level_imports_need_only_the_core_dependencies():
    # pyproject's [project] dependencies; every extra (torch, trimesh, gradio, ...) is fetched
    # inside the function that needs it (meshlm.errors.require), so importing any meshlm module
    # is cheap and works on a bare install
    core = {"numpy", "typer", "rich"}
    bad = {m: sorted(t - core) for m, t in _module_level_third_party().items() if t - core}
    assert not bad, bad


def test_meshlm_modules_are_imported_at_module_level():
    # No cycle forbids it (test_no_cycle_between_meshlm_modules counts in-function imports too)
    # and no module pulls in an extra at module level (the test above), so an import hidden in
    # a function would only hide a dependency.
    assert not _in_function_imports(), "\n".join(_in_function_imports())


def test_an_in_function_import_is_found():
    tree = ast.parse("def f():\n    from meshlm.codec import Mesh\n")
    assert list(_imports(tree, "meshlm")) == [("meshlm.codec", 2, True, "Mesh")]


def test_a_cycle_is_found_and_named():
    # the checker itself: a two-module cycle is one component
    edges = {"a": {"b": ["line 1"]}, "b": {"a": ["line 2"]}, "c": {"a": ["line 3"]}}
    assert _cycles(edges) == [["a", "b"]]
