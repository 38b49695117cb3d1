"""The package's import graph: no cycles, and every layer imports only from its floor or below.

The graph is read from the source (every ``import`` statement, those inside functions too, since
a lazy import closes a cycle as surely as an eager one). Importing ``a.b.c`` also runs the
``__init__`` of ``a.b``, so the packages above an imported module count as imported, except the
importer's own packages, which are always initialised before it.
"""
import ast
from pathlib import Path

import cnn

ROOT = Path(cnn.__file__).parent


def module_names():
    """{dotted name: path} of every Python module of the package."""
    names = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def imported(name, path, modules):
    """The cnn modules that module `name` (at `path`) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names
                           if f"{base}.{alias.name}" in modules)
    edges = set()
    own_packages = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    for target in targets:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix in modules and prefix not in own_packages and prefix != name:
                edges.add(prefix)
    return edges


def import_graph():
    modules = module_names()
    return {name: imported(name, path, modules) for name, path in modules.items()}


def cycles(graph):
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for child in graph.get(node, ()):
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in on_stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def reachable(graph, start):
    seen, todo = set(), [start]
    while todo:
        for child in graph.get(todo.pop(), ()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def test_the_graph_reader_sees_lazy_and_relative_imports():
    graph = import_graph()
    assert "cnn.autograd.function" in graph["cnn.tensor"]
    assert "cnn.autograd" in graph["cnn.tensor"]  # the package runs its __init__ first
    assert "cnn.nn.functional" in graph["cnn.nn.modules.conv"]
    assert "mpi4py" not in graph["cnn.distributed"]  # only the package's own modules
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_autograd_does_not_import_the_tensor_module():
    graph = import_graph()
    for name in graph:
        if name.startswith("cnn.autograd"):
            assert "cnn.tensor" not in reachable(graph, name), name


def test_nn_imports_nothing_above_it():
    above = ("cnn.compat", "cnn.profiler", "cnn.utils.data", "cnn.cli", "cnn.distributed",
             "cnn.datasets", "cnn.optim", "cnn.serialization")
    graph = import_graph()
    for name in graph:
        if name == "cnn.nn" or name.startswith("cnn.nn."):
            reached = reachable(graph, name)
            assert not [m for m in reached if m.startswith(above)], name


def test_distributed_does_not_import_the_data_room():
    reached = reachable(import_graph(), "cnn.distributed")
    assert not [m for m in reached if m.startswith("cnn.utils")], reached
