"""The import rules of ``ARCHITECTURE.md`` ("Packages, bottom to top"), checked with ``ast``.

Every ``vaekit/**/*.py`` is parsed and *every* import counts: module level, inside
functions (lazy imports), under ``if TYPE_CHECKING:``, in ``try`` blocks.  The
rules, each its own test:

1. no import cycle between vaekit modules;
2. no forbidden (upward) import, from :data:`FORBIDDEN` below (and click only
   under ``vaekit.cli``);
3. no ``from <another vaekit package> import _private``;
4. no call of an estimator's private method outside ``vaekit/estimators/``;
5. no module over :data:`MAX_LINES` lines.

Plus: every ``vaekit.*`` module an import names exists (a stale path left by a
move is otherwise only found when that lazy import runs).

How imports are resolved: ``from P import x`` imports module ``P.x`` when that
module exists, else module ``P``; ``import a.b.c`` imports ``a.b.c``.  Relative
imports are resolved against the importing module (a package's ``__init__`` is
its own base).  The parent packages Python also runs on the way (``vaekit``,
``vaekit.fitted`` for ``vaekit.fitted.model``) are not edges: every module would
otherwise "import" ``vaekit/__init__`` and everything it lazily re-exports.

Rules about packages that do not exist (yet) are vacuous.  The checker functions
take ``{path: source}`` so the self-tests at the bottom can feed them synthetic
packages.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

# --------------------------------------------------------------------------- the rules

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "vaekit"
MAX_LINES = 700

# What sits above each layer, bottom to top (ARCHITECTURE.md's table order).
# ``vaekit.__main__`` belongs to the CLI:
# listed as import *targets* so an upward import into them is caught before the move.
TRAINING = ("vaekit.training",)
ESTIMATORS = ("vaekit.estimators",)
JOBS = ("vaekit.jobs",)
ENGINES = ("vaekit.engines",)
REPORT = ("vaekit.report",)
CLI = ("vaekit.cli", "vaekit.__main__")
# Optional bridges to other libraries (PyOD): on top of the estimators, imported by nothing.
INTEGRATIONS = ("vaekit.integrations",)

# package (or module) -> what it must not import (dotted prefixes: vaekit modules or
# third-party packages).  Imports inside the package itself are always allowed.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "vaekit.errors": ("vaekit",),
    "vaekit._runtime": ("vaekit",),
    "vaekit._version": ("vaekit",),
    "vaekit.files": ("torch", "sklearn", "vaekit.core", "vaekit.fitted",
                     *TRAINING, *ESTIMATORS, *JOBS, *ENGINES, *REPORT, *CLI),
    "vaekit.codec": ("torch", "vaekit.data", "vaekit.fitted", "vaekit.core",
                     *TRAINING, *ESTIMATORS, *JOBS, *ENGINES, *REPORT, *CLI),
    "vaekit.core": ("pandas", "vaekit.files", "vaekit.codec", "vaekit.fitted", "vaekit.data",
                    *TRAINING, *ESTIMATORS, *JOBS, *ENGINES, *REPORT, *CLI),
    # The lean inference runtime: numpy only, so scoring needs neither torch nor
    # scikit-learn (a subprocess test checks the whole scoring command too).
    "vaekit.runtime": ("torch", "sklearn", "pandas", "pyarrow", "vaekit.files", "vaekit.codec",
                       "vaekit.core", "vaekit.data", "vaekit.fitted",
                       *TRAINING, *ESTIMATORS, *JOBS, *ENGINES, *REPORT, *CLI),
    # data/ turns rows into prepared numpy arrays: neither torch nor scikit-learn.
    "vaekit.data": ("torch", "sklearn", "vaekit.core", "vaekit.fitted",
                    *TRAINING, *ESTIMATORS, *JOBS, *ENGINES, *REPORT, *CLI),
    "vaekit.fitted": ("sklearn", "click",
                      *TRAINING, *ESTIMATORS, *JOBS, *ENGINES, *REPORT, *CLI),
    "vaekit.training": ("sklearn", "vaekit.files",
                        *ESTIMATORS, *JOBS, *ENGINES, *REPORT, *CLI),
    "vaekit.estimators": ("click", *JOBS, *ENGINES, *CLI),
    "vaekit.jobs": ("click", "dask", "distributed", *ESTIMATORS, *ENGINES, *CLI),
    "vaekit.engines": ("click", *CLI),
    "vaekit.report": ("click", *ESTIMATORS),
    # Integrations sit on the public estimators, beside the jobs and the CLI.
    "vaekit.integrations": ("click", *JOBS, *ENGINES, *REPORT, *CLI),
    # Scorers for any detector (not only vaekit's): numpy and scikit-learn only.
    "vaekit.metrics": ("vaekit", "torch", "pandas", "click", "pyod", "dask"),
    "vaekit.cli": (),  # may import everything but the bridges (added below)
}
# Nothing in vaekit depends on an optional bridge: every other package must not import it.
for _rule in FORBIDDEN:
    if _rule not in INTEGRATIONS:
        FORBIDDEN[_rule] += INTEGRATIONS
# Exceptions to a FORBIDDEN prefix, per package.
ALLOWED: dict[str, tuple[str, ...]] = {
    "vaekit.errors": ("vaekit._version",),
}
# Third-party package -> the only vaekit packages that may import it.
ONLY_UNDER: dict[str, tuple[str, ...]] = {
    "click": ("vaekit.cli",),
    "pyod": INTEGRATIONS,
}
# Exempt from rule 2 (not from rule 1): the top-level package lazily re-exports
# the estimators and ``load``.
EXEMPT = ("vaekit",)
# Private *modules* any package may import by name (``from .. import _runtime``).
SHARED_PRIVATE_MODULES = ("vaekit._version", "vaekit._runtime")
ESTIMATORS_DIR = "vaekit/estimators/"


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Module:
    name: str
    path: str  # relative, "/"-separated (for messages)
    source: str
    is_package: bool

    @property
    def tree(self) -> ast.Module:
        return ast.parse(self.source, filename=self.path)


@dataclass(frozen=True)
class Import:
    importer: str
    path: str
    line: int
    target: str  # resolved dotted name: a vaekit module or a third-party module
    name: str | None = None  # for ``from P import name``: the name (also when a module)


def modules_from_sources(sources: Mapping[str, str]) -> dict[str, Module]:
    """``{"vaekit/a/b.py": source}`` -> ``{"vaekit.a.b": Module}``."""
    out = {}
    for path, source in sources.items():
        parts = path.removesuffix(".py").split("/")
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        name = ".".join(parts)
        out[name] = Module(name, path, source, is_package)
    return out


def load_tree(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Module]:
    return modules_from_sources({
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted((root / package).rglob("*.py"))
    })


def _base(module: Module, level: int) -> str:
    parts = module.name.split(".")
    if not module.is_package:
        parts = parts[:-1]
    if level > 1:
        parts = parts[:len(parts) - (level - 1)]
    return ".".join(parts)


def imports_of(modules: Mapping[str, Module]) -> list[Import]:
    """Every import statement of every module, resolved (see the module docstring)."""
    out = []
    for module in modules.values():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    out.append(Import(module.name, module.path, node.lineno, alias.name))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = _base(module, node.level)
                    where = f"{base}.{node.module}" if node.module else base
                else:
                    where = node.module or ""
                for alias in node.names:
                    sub = f"{where}.{alias.name}"
                    target = sub if sub in modules else where
                    out.append(Import(module.name, module.path, node.lineno, target, alias.name))
    return out


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _is_vaekit(name: str, package: str = PACKAGE) -> bool:
    return _under(name, package)


def _top_package(name: str) -> str:
    """``vaekit.fitted.model`` -> ``vaekit.fitted``; ``vaekit.errors`` -> itself."""
    return ".".join(name.split(".")[:2])


def _where(imp: Import) -> str:
    return f"{imp.path}:{imp.line}"


# --------------------------------------------------------------------------- rule 1: cycles


def import_graph(modules: Mapping[str, Module], imports: Iterable[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for imp in imports:
        if imp.target in modules and imp.target != imp.importer:
            graph[imp.importer].add(imp.target)
    return graph


def _strongly_connected(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def _cycle_through(graph: Mapping[str, set[str]], component: list[str]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first)."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node] & members):
            if child == start:
                path = [node]  # walk back to start: node, ..., start
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    raise AssertionError("not a cycle")  # pragma: no cover


def find_cycles(sources: Mapping[str, str] | None = None) -> list[str]:
    """One line per cycle: ``a -> b (file:line) -> a (file:line)``."""
    modules = load_tree() if sources is None else modules_from_sources(sources)
    imports = imports_of(modules)
    graph = import_graph(modules, imports)
    lines = {}
    for imp in imports:
        lines.setdefault((imp.importer, imp.target), _where(imp))
    out = []
    for component in _strongly_connected(graph):
        path = _cycle_through(graph, component)
        steps = [path[0]] + [f"{b} ({lines[(a, b)]})" for a, b in pairwise(path)]
        out.append(f"cycle among {len(component)} modules {component}: " + " -> ".join(steps))
    return out


# --------------------------------------------------------------------------- rule 2: forbidden


def forbidden_imports(rule: str, sources: Mapping[str, str] | None = None,
                      forbidden: Mapping[str, tuple[str, ...]] = FORBIDDEN,
                      allowed: Mapping[str, tuple[str, ...]] = ALLOWED,
                      only_under: Mapping[str, tuple[str, ...]] = ONLY_UNDER) -> list[str]:
    """Offenders of one rule: a key of ``forbidden`` or of ``only_under``."""
    modules = load_tree() if sources is None else modules_from_sources(sources)
    out = []
    for imp in imports_of(modules):
        if imp.importer in EXEMPT:
            continue
        if rule in forbidden:
            if not _under(imp.importer, rule) or _under(imp.target, rule):
                continue
            if any(_under(imp.target, a) for a in allowed.get(rule, ())):
                continue
            banned = [p for p in forbidden[rule] if _under(imp.target, p)]
            if banned:
                out.append(f"{_where(imp)}: {imp.importer} imports {imp.target} "
                           f"({rule} must not import {banned[0]})")
        else:
            homes = only_under[rule]
            if _under(imp.target, rule) and not any(_under(imp.importer, h) for h in homes):
                out.append(f"{_where(imp)}: {imp.importer} imports {imp.target} "
                           f"({rule} only under {', '.join(homes)})")
    return list(dict.fromkeys(out))  # ``from P import a, b``: one line


# --------------------------------------------------------------------------- rule 3: private names


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_name_imports(sources: Mapping[str, str] | None = None) -> list[str]:
    """``from <other vaekit package> import _name`` (private modules of the shared kind ok)."""
    modules = load_tree() if sources is None else modules_from_sources(sources)
    out = []
    for imp in imports_of(modules):
        if imp.name is None or not _is_private(imp.name) or not _is_vaekit(imp.target):
            continue
        if imp.target in SHARED_PRIVATE_MODULES and imp.target.endswith("." + imp.name):
            continue  # the module itself, imported by name
        source_package = imp.target
        if imp.target.endswith("." + imp.name) and imp.target in modules:
            source_package = imp.target.rsplit(".", 1)[0]  # a private module of that package
        if _top_package(source_package) != _top_package(imp.importer):
            out.append(f"{_where(imp)}: {imp.importer} imports private {imp.name!r} from "
                       f"{source_package} (another package)")
    return out


# --------------------------------------------------------------------------- rule 4: estimator privates


def _private_methods(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if (isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                        and _is_private(item.name)):
                    names.add(item.name)
    return names


def estimator_private_calls(sources: Mapping[str, str] | None = None,
                            estimators_dir: str = ESTIMATORS_DIR) -> list[str]:
    """``x._method(...)`` outside estimators/ for a private method of an estimator class.

    Not counted: ``self._m()`` / ``cls._m()``, and names that a class of the calling
    module defines itself (its own helper that happens to share the name).
    """
    modules = load_tree() if sources is None else modules_from_sources(sources)
    trees = {m.path: m.tree for m in modules.values()}
    private = set()
    for path, tree in trees.items():
        if path.startswith(estimators_dir):
            private |= _private_methods(tree)
    out = []
    for path, tree in trees.items():
        if path.startswith(estimators_dir):
            continue
        own = _private_methods(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            attr, value = node.func.attr, node.func.value
            if attr not in private or attr in own:
                continue
            if isinstance(value, ast.Name) and value.id in ("self", "cls"):
                continue
            out.append(f"{path}:{node.lineno}: calls {ast.unparse(node.func)}(), a private "
                       f"method of an estimator, outside {estimators_dir}")
    return out


# --------------------------------------------------------------------------- rule 5: size


def long_modules(sources: Mapping[str, str] | None = None,
                 max_lines: int = MAX_LINES) -> list[str]:
    modules = load_tree() if sources is None else modules_from_sources(sources)
    return [f"{m.path}: {n} lines (at most {max_lines})"
            for m in modules.values()
            if (n := len(m.source.splitlines())) > max_lines]


# --------------------------------------------------------------------------- stale paths


def missing_modules(sources: Mapping[str, str] | None = None) -> list[str]:
    modules = load_tree() if sources is None else modules_from_sources(sources)
    return list(dict.fromkeys(
        f"{_where(imp)}: {imp.importer} imports {imp.target}, which does not exist"
        for imp in imports_of(modules) if _is_vaekit(imp.target) and imp.target not in modules))


# --------------------------------------------------------------------------- the tests


def _report(rule: str, offenders: list[str]) -> str:
    offenders = list(dict.fromkeys(offenders))  # one line per statement, not per name
    return f"{rule}: {len(offenders)} offender(s)\n  " + "\n  ".join(offenders)


def test_tree_is_found():
    modules = load_tree()
    assert "vaekit" in modules and "vaekit.errors" in modules and len(modules) > 10


def test_no_import_cycles():
    cycles = find_cycles()
    assert not cycles, _report("rule 1 (no import cycle between vaekit modules)", cycles)


@pytest.mark.parametrize("rule", [*FORBIDDEN, *ONLY_UNDER])
def test_no_forbidden_imports(rule):
    offenders = forbidden_imports(rule)
    assert not offenders, _report(f"rule 2 ({rule})", offenders)


def test_no_private_names_across_packages():
    offenders = private_name_imports()
    assert not offenders, _report("rule 3 (no private name from another package)", offenders)


def test_no_estimator_private_calls_outside_estimators():
    offenders = estimator_private_calls()
    assert not offenders, _report("rule 4 (estimator privates stay in estimators/)", offenders)


def test_no_long_modules():
    offenders = long_modules()
    assert not offenders, _report(f"rule 5 (no module over {MAX_LINES} lines)", offenders)


def test_imported_vaekit_modules_exist():
    offenders = missing_modules()
    assert not offenders, _report("imports name an existing vaekit module", offenders)


# --------------------------------------------------------------------------- self-tests


SYNTHETIC = {
    "vaekit/__init__.py": (
        "from ._version import __version__\n"
        "def __getattr__(name):\n"
        "    from . import estimators\n"
        "    return getattr(estimators, name)\n"),
    "vaekit/_version.py": "__version__ = '0'\n",
    "vaekit/errors.py": "from ._version import __version__\n",
    "vaekit/codec/__init__.py": "from .container import Writer\n",
    "vaekit/codec/container.py": "from ..errors import __version__\nclass Writer: pass\n",
    "vaekit/fitted/__init__.py": "from .model import Fitted\n",
    "vaekit/fitted/model.py": (
        "from typing import TYPE_CHECKING\n"
        "from ..codec import container\n"
        "if TYPE_CHECKING:\n"
        "    from ..estimators.base import Base\n"
        "class Fitted: pass\n"),
    "vaekit/estimators/__init__.py": "from .base import Base\n",
    "vaekit/estimators/base.py": (
        "from ..fitted import Fitted\n"
        "class Base:\n"
        "    def _check(self):\n"
        "        return self._fit()\n"
        "    def _fit(self): pass\n"),
}


def _with(**changes: str) -> dict[str, str]:
    out = dict(SYNTHETIC)
    for key, source in changes.items():
        out[key.replace("__", "/") + ".py"] = source
    return out


def test_self_relative_imports_resolve():
    modules = modules_from_sources(SYNTHETIC)
    targets = {(i.importer, i.target) for i in imports_of(modules)}
    assert ("vaekit", "vaekit.estimators") in targets  # lazy, from . import X
    assert ("vaekit.codec", "vaekit.codec.container") in targets
    assert ("vaekit.fitted.model", "vaekit.codec.container") in targets  # submodule by name
    assert ("vaekit.estimators.base", "vaekit.fitted") in targets  # a name of the package
    assert ("vaekit.codec.container", "vaekit.errors") in targets  # ..errors from a module


def test_self_cycle_is_detected():
    # fitted.model -> estimators.base (under TYPE_CHECKING) -> fitted -> fitted.model
    cycles = find_cycles(SYNTHETIC)
    assert len(cycles) == 1
    assert "vaekit.estimators.base" in cycles[0] and "vaekit.fitted.model" in cycles[0]
    assert "vaekit/fitted/model.py:4" in cycles[0]
    acyclic = _with(vaekit__fitted__model="from ..codec import container\nclass Fitted: pass\n")
    assert find_cycles(acyclic) == []


def test_self_lazy_import_of_the_package_closes_a_cycle():
    sources = _with(vaekit__errors="def f():\n    import vaekit\n")
    assert any("vaekit.errors" in c for c in find_cycles(sources))


def test_self_upward_import_is_detected():
    upward = _with(vaekit__codec__container=(
        "def f():\n    from ..fitted.model import Fitted\n    import torch.nn\n"))
    offenders = forbidden_imports("vaekit.codec", upward)
    assert len(offenders) == 2
    assert offenders[0].startswith("vaekit/codec/container.py:2: ")
    assert "must not import vaekit.fitted" in offenders[0]
    assert "must not import torch" in offenders[1]
    assert forbidden_imports("vaekit.codec", SYNTHETIC) == []
    # errors may import _version, nothing else of vaekit
    assert forbidden_imports("vaekit.errors", SYNTHETIC) == []
    bad = _with(vaekit__errors="from . import codec\n")
    assert len(forbidden_imports("vaekit.errors", bad)) == 1
    # click only under vaekit.cli
    clicky = _with(vaekit__cli="import click\n", vaekit__fitted__model="import click\n")
    offenders = forbidden_imports("click", clicky)
    assert len(offenders) == 1 and "vaekit.fitted.model" in offenders[0]


def test_self_private_name_across_packages_is_detected():
    sources = _with(
        vaekit__fitted__model="from ..estimators.base import _helper\nfrom . import _own\n"
                              "from .. import _version\n",
        vaekit__fitted___own="",
    )
    offenders = private_name_imports(sources)
    assert len(offenders) == 1 and "'_helper'" in offenders[0]


def test_self_estimator_private_call_is_detected():
    sources = _with(vaekit__fitted__model=(
        "class Fitted:\n"
        "    def _check(self): pass\n"
        "def f(est):\n"
        "    est._fit()\n"       # an estimator's private method: offender
        "    est._check()\n"     # also defined here: not counted
        "    est.fitted_.ok()\n"))
    offenders = estimator_private_calls(sources)
    assert offenders == ["vaekit/fitted/model.py:4: calls est._fit(), a private method of an "
                         "estimator, outside vaekit/estimators/"]


def test_self_long_module_and_missing_module():
    sources = _with(vaekit__fitted__model="x = 1\n" * 701)
    assert long_modules(sources) == ["vaekit/fitted/model.py: 701 lines (at most 700)"]
    stale = _with(vaekit__codec__container="from .compressor import Writer\n")
    assert len(missing_modules(stale)) == 1


def test_self_integrations_and_metrics_rules():
    sources = _with(
        vaekit__integrations__pyod="from pyod.models.base import BaseDetector\n"
                                   "from ..estimators import Base\n",
        vaekit__metrics="import numpy\nimport sklearn.metrics\n",
    )
    for rule in ("vaekit.integrations", "vaekit.metrics", "pyod"):
        assert forbidden_imports(rule, sources) == [], rule
    # the core importing the bridge, or PyOD outside it; metrics importing vaekit or torch
    bad = _with(vaekit__integrations__pyod="", vaekit__fitted__model=(
        "def f():\n    from ..integrations import pyod\n    import pyod.models.base\n"),
        vaekit__metrics="from .errors import __version__\nimport torch\n")
    offenders = forbidden_imports("vaekit.fitted", bad)
    assert len(offenders) == 1 and "must not import vaekit.integrations" in offenders[0]
    assert len(forbidden_imports("pyod", bad)) == 1
    assert len(forbidden_imports("vaekit.metrics", bad)) == 2
