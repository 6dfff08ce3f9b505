"""The package's import structure, read from the source (AST), not by importing it.

Two rules: the library never imports the demo (``read_trainer.demo`` is a client of the
library that lives in the same distribution), and no chain of imports inside
``read_trainer`` leads back to where it started (an import circle makes the result of an
import depend on which module was imported first). Every import counts, including those
inside functions and under ``TYPE_CHECKING``: deferring an import hides a circle, it does
not remove it.
"""

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "read_trainer"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_names(path: Path) -> list[tuple[str, int]]:
    """Absolute dotted names (``read_trainer....``) this file imports, with line numbers.

    ``from .x import y`` gives ``pkg.x.y`` when that is a module, else ``pkg.x``; string
    arguments of ``importlib.import_module`` / ``__import__`` count as imports too.
    """
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.append((submodule if submodule in MODULES else source, node.lineno))
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")):
            found.append((node.args[0].value, node.lineno))
    return found


def test_import_scan_resolves_relative_and_dynamic_imports(tmp_path, monkeypatch):
    # The scanner itself, on a hand-written package: a rule that misreads imports passes vacuously.
    pkg = tmp_path / "read_trainer"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import leaf\n")
    (pkg / "sub" / "leaf.py").write_text("from ..other import thing\nfrom .. import demo\n")
    (pkg / "other.py").write_text(
        "def f():\n    import importlib\n    importlib.import_module('read_trainer.demo.x')\n")
    this = sys.modules[__name__]
    monkeypatch.setattr(this, "PACKAGE", pkg)
    monkeypatch.setattr(this, "MODULES", {module_name(p): p for p in pkg.rglob("*.py")})
    assert imported_names(pkg / "sub" / "__init__.py") == [("read_trainer.sub.leaf", 1)]
    assert imported_names(pkg / "sub" / "leaf.py") == [("read_trainer.other", 1), ("read_trainer", 2)]
    assert ("read_trainer.demo.x", 3) in imported_names(pkg / "other.py")


def graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (a package counts as its ``__init__``)."""
    edges = {}
    for name, path in MODULES.items():
        targets = set()
        for imported, _ in imported_names(path):
            while imported and imported not in MODULES:  # "read_trainer.x.attr" -> "read_trainer.x"
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        edges[name] = targets
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path ``[a, b, ..., a]``, or None (depth-first search)."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_reports_a_circle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_package_has_no_import_circle():
    edges = graph()
    assert "read_trainer.evaluation.items" in edges and edges["read_trainer.evaluation.scoring"]  # scan saw the code
    cycle = find_cycle(edges)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_no_library_module_imports_the_demo():
    library = {n: p for n, p in MODULES.items() if n != "read_trainer.demo" and not n.startswith("read_trainer.demo.")}
    assert "read_trainer.trainer" in library and len(library) < len(MODULES)
    offenders = [f"{path.relative_to(PACKAGE.parent)}:{line} imports {imported}"
                 for name, path in library.items() for imported, line in imported_names(path)
                 if imported == "read_trainer.demo" or imported.startswith("read_trainer.demo.")]
    assert not offenders, "\n".join(offenders)
