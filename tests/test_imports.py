"""The import graph of avexlab: no cycle among module-level imports, and no module importing another's
private names.

Module-level imports are those that run when a module is imported: top-level statements, also inside ``if`` /
``try`` / ``with`` blocks and class bodies, but not under ``if TYPE_CHECKING:`` nor inside functions.
Importing ``a.b.c`` also runs the ``__init__`` of every package above it (``a.b``) that the importer is not
itself inside, so those count as edges too. A private name has a leading underscore (dunders excepted): a
module may use its own, never import another's (``from avexlab.x import _helper``), at module level or inside
a function. The checker reads source files with ``ast`` (nothing is imported), so it sees every module.
"""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import avexlab

PACKAGE_DIR = Path(avexlab.__file__).parent


@dataclass(frozen=True)
class Import:
    """One imported module, as found in ``importer``'s source at ``line``."""

    importer: str
    target: str  # the module imported, or imported from (resolved to a module of the package)
    names: tuple[str, ...]  # the names taken from it (``from target import a, b``); empty for ``import x``
    line: int
    runs_on_import: bool  # module level and not under TYPE_CHECKING


def package_modules(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file for every ``.py`` file of the package at ``package_dir``."""
    root = package_dir.parent
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(body: list[ast.stmt], runs: bool) -> Iterator[tuple[ast.stmt, bool]]:
    """Every statement in ``body`` and below it, with whether it runs when the module is imported."""
    for node in body:
        yield node, runs
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _statements(node.body, False)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _statements(node.body, False)
            yield from _statements(node.orelse, runs)
        else:  # if / try / with / for / while / match / class bodies run with the module
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    yield from _statements([child], runs)
                elif isinstance(child, ast.ExceptHandler | ast.match_case):
                    yield from _statements(child.body, runs)


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a module of the package (None: outside the package)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, modules: dict[str, Path]) -> Iterator[Import]:
    """The package-internal imports in ``module``'s source."""
    path = modules[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node, runs in _statements(tree.body, True):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, modules)
                if target is not None:
                    yield Import(module, target, (), node.lineno, runs)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            if _resolve(source, modules) is None:
                continue
            for alias in node.names:  # ``from pkg import submodule`` imports the submodule
                sub = f"{source}.{alias.name}"
                target = sub if sub in modules else _resolve(source, modules)
                yield Import(module, target, () if sub in modules else (alias.name,), node.lineno, runs)


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules its import runs (module-level imports and the packages above them)."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module in modules:
        inside = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
        for imp in imports_of(module, modules):
            if not imp.runs_on_import:
                continue
            parts = imp.target.split(".")
            parents = {".".join(parts[:i]) for i in range(1, len(parts))} & set(modules)
            graph[module] |= ({imp.target} | (parents - inside)) - {module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle (``[a, b, ..., a]``) of ``graph``, or ``[]`` when there is none."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as err:
        return list(reversed(err.args[1]))  # graphlib lists it against the edge direction
    return []


def private_imports(modules: dict[str, Path]) -> list[str]:
    """``importer:line imports _name from target`` for every private name taken from another module."""
    return [
        f"{imp.importer}:{imp.line} imports {name} from {imp.target}"
        for module in modules
        for imp in imports_of(module, modules)
        if imp.target != module
        for name in imp.names
        if name.startswith("_") and not (name.startswith("__") and name.endswith("__"))
    ]


# ------------------------------------------------------------------------------------------------ tests


def _write(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return package_modules(root / "pkg")


def test_the_checker_finds_cycles_and_private_imports(tmp_path: Path) -> None:
    # a real package on disk: a <-> b at module level (b's side inside try); c -> sub.leaf, which runs the
    # package __init__ of sub, which imports c; e takes a private name of a inside a function
    modules = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": "try:\n    from .a import helper\nexcept ImportError:\n    pass\n",
            "pkg/sub/__init__.py": "from pkg.c import thing\n",
            "pkg/sub/leaf.py": "",
            "pkg/c.py": "import pkg.sub.leaf\n",
            "pkg/e.py": "def f():\n    from pkg.a import _secret, __version__\n",
        },
    )
    assert import_graph(modules)["pkg.c"] == {"pkg.sub.leaf", "pkg.sub"}
    assert private_imports(modules) == ["pkg.e:2 imports _secret from pkg.a"]
    cycle = find_cycle(import_graph(modules))
    assert cycle[0] == cycle[-1] and set(cycle) in ({"pkg.a", "pkg.b"}, {"pkg.c", "pkg.sub"})
    # a function-level import runs nothing at import time: only the cycle through sub's __init__ is left
    modules = _write(tmp_path, {"pkg/b.py": "def g():\n    from .a import helper\n"})
    assert find_cycle(import_graph(modules)) in (
        ["pkg.c", "pkg.sub", "pkg.c"],
        ["pkg.sub", "pkg.c", "pkg.sub"],
    )
    # nor does an import under TYPE_CHECKING
    modules = _write(
        tmp_path,
        {"pkg/sub/__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.c\n"},
    )
    assert find_cycle(import_graph(modules)) == []


def test_avexlab_has_no_import_cycle() -> None:
    modules = package_modules(PACKAGE_DIR)
    graph = import_graph(modules)
    # the checker sees the package (a graph without edges would pass vacuously)
    assert {"avexlab.train.objectives", "avexlab.train.sampler"} <= graph["avexlab.train.trainer"]
    assert "avexlab.train.tokenizer" in graph["avexlab.train.objectives.beats_ssl"]
    cycle = find_cycle(graph)
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_no_avexlab_module_imports_private_names() -> None:
    found = private_imports(package_modules(PACKAGE_DIR))
    assert not found, (
        "private names imported across modules (make them public, or move the code):\n" + "\n".join(found)
    )


def test_the_tokenizers_do_not_depend_on_the_objectives() -> None:
    # The objectives use the tokenizers; an import back, even inside a function, would close the circle.
    modules = package_modules(PACKAGE_DIR)
    targets = {i.target for i in imports_of("avexlab.train.tokenizer", modules)}
    assert not {t for t in targets if t.startswith("avexlab.train.objectives")}


def test_no_import_cycle_even_counting_imports_inside_functions() -> None:
    # Lazy imports keep `import avexlab.x` light, but a circle through them is still two modules that each
    # need the other: the package's whole graph (every import statement) stays acyclic.
    modules = package_modules(PACKAGE_DIR)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module in modules:
        graph[module] |= {i.target for i in imports_of(module, modules)} - {module}
    assert "avexlab.experiments.worlds" in graph["avexlab.experiments.grid"]  # function-level edges are seen
    cycle = find_cycle(graph)
    assert not cycle, "import cycle (counting function-level imports): " + " -> ".join(cycle)


def test_training_and_evaluation_never_reach_for_a_world() -> None:
    # The trainer and the evaluators receive data; only avexlab.experiments joins worlds to them.
    modules = package_modules(PACKAGE_DIR)
    rooms = ("avexlab.train", "avexlab.evaluate")
    found = [
        f"{imp.importer}:{imp.line} imports {imp.target}"
        for module in modules
        if module.startswith(rooms)
        for imp in imports_of(module, modules)
        if imp.target.startswith(("avexlab.synth", "avexlab.experiments"))
    ]
    assert not found, "\n".join(found)
    # and the experiments room is where they meet (the check above is not vacuous)
    targets = {i.target for i in imports_of("avexlab.experiments.worlds", modules)}
    assert {"avexlab.synth", "avexlab.train.trainer", "avexlab.evaluate.suites"} <= {
        t if not t.startswith("avexlab.synth") else "avexlab.synth" for t in targets
    }


def test_one_suite_class() -> None:
    defined = [
        f"{module}.{node.name}"
        for module, path in package_modules(PACKAGE_DIR).items()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef) and "suite" in node.name.lower()
    ]
    assert defined == ["avexlab.data.suite.Suite"]
