"""The LIM's parts keep to their contract (lim/core.py, lim/state.py), checked on the source.

Each part holds the shared `LimState` and references to the parts `PARTS` lets it call, and
nothing else: a call to another part must read `self.<part>.<method>(...)` with the part named
in the contract, every `self.<name>` must be the part's own, and only the parts `WRITES` names
change a container of the state directly. A hidden call (a mixin, an attribute borrowed from
somewhere else, a part not in the contract) fails here.
"""
from __future__ import annotations

import ast
import inspect
import textwrap
from functools import cache

import pytest

import lim.core
from lim.core import PARTS, LimCore
from lim.state import WRITES, LimState

MUTATORS = {"append", "clear", "discard", "extend", "insert", "pop", "popitem", "remove",
            "setdefault", "update", "add"}


def class_tree(cls: type) -> ast.ClassDef:
    return ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0]


@cache
def part_classes() -> dict[str, type]:
    """The parts LimCore builds: `self.<name> = <Class>(self.state)` in its __init__."""
    init = next(n for n in class_tree(LimCore).body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    parts = {}
    for node in ast.walk(init):
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name) and ast.unparse(node.value.args) == "self.state"):
            parts[node.targets[0].attr] = getattr(lim.core, node.value.func.id)
    return parts


def own_names(tree: ast.ClassDef) -> set[str]:
    """What a class defines: methods, class attributes, and attributes set on self."""
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and is_self(node.value):
            names.add(node.attr)
    return names


def public_methods(cls: type) -> set[str]:
    """What other parts may call: methods not starting with `_` (and not `connect`)."""
    return {n.name for n in class_tree(cls).body
            if isinstance(n, ast.FunctionDef) and not n.name.startswith("_") and n.name != "connect"}


def is_self(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "self"


def is_state(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and is_self(node.value) and node.attr == "state"


def parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def state_writes(tree: ast.ClassDef) -> set[str]:
    """The state's attributes a class changes directly: `self.state.X = ...`,
    `self.state.X[k] = ...`, `del self.state.X[k]`, `self.state.X.pop(...)` and the like."""
    up = parents(tree)
    written = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and is_state(node.value)):
            continue
        parent = up[node]
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            written.add(node.attr)
        elif isinstance(parent, ast.Subscript) and parent.value is node and isinstance(parent.ctx, (ast.Store, ast.Del)):
            written.add(node.attr)
        elif (isinstance(parent, ast.Attribute) and parent.attr in MUTATORS
              and isinstance(up.get(parent), ast.Call) and up[parent].func is parent):
            written.add(node.attr)
    return written


def test_the_contract_names_every_part_lim_core_builds():
    assert set(part_classes()) == set(PARTS)
    for name, cls in part_classes().items():
        assert set(PARTS[name]) <= set(PARTS), f"{name} may call a part that does not exist"
        assert cls.__bases__ == (object,), f"{cls.__name__} inherits: parts are composed, not mixed in"


@pytest.mark.parametrize("part", sorted(PARTS))
def test_a_part_is_given_exactly_the_parts_it_may_call(part):
    cls = part_classes()[part]
    init = inspect.signature(cls.__init__)
    assert list(init.parameters) == ["self", "state"], f"{cls.__name__}(state) takes the state only"
    connect = inspect.signature(cls.connect)
    params = [p for p in connect.parameters.values() if p.name != "self"]
    assert all(p.kind is p.KEYWORD_ONLY for p in params)
    assert sorted(p.name for p in params) == sorted(PARTS[part])


def problems(tree: ast.ClassDef, part: str, allowed: set[str]) -> list[str]:
    """Every use of `self` in a part's class that the contract does not allow."""
    up = parents(tree)
    mine = own_names(tree) - set(PARTS)
    state_names = own_names(class_tree(LimState))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr"):
            target = node.args[0]
            if isinstance(target, ast.Attribute) and is_self(target.value):
                found.append(f"{ast.unparse(node)}: dynamic access to another part or the state")
        if not (isinstance(node, ast.Attribute) and is_self(node.value)):
            continue
        name = node.attr
        outer = up.get(node)
        used = ast.unparse(outer if isinstance(outer, ast.Attribute) else node)
        if name == "state":
            if isinstance(node.ctx, ast.Store):
                continue  # __init__ keeping the state
            if not (isinstance(outer, ast.Attribute) and outer.attr in state_names):
                found.append(f"{used}: not in LimState")
        elif name in PARTS:
            if name not in allowed:
                found.append(f"{used}: {part} may not call {name}")
            elif isinstance(node.ctx, ast.Store):
                continue  # connect() keeping the reference
            elif not (isinstance(outer, ast.Attribute) and outer.attr in public_methods(part_classes()[name])):
                found.append(f"{used}: not a public method of {name}")
        elif name not in mine:
            found.append(f"self.{name}: not defined by {tree.name}")
    return found


@pytest.mark.parametrize("part", sorted(PARTS))
def test_a_part_keeps_nothing_but_the_state_and_its_parts(part):
    """Whatever a part remembers lives in the state, where the contract covers it."""
    tree = class_tree(part_classes()[part])
    stored = {(method.name, node.attr) for method in tree.body if isinstance(method, ast.FunctionDef)
              for node in ast.walk(method)
              if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and is_self(node.value)}
    assert stored == {("__init__", "state")} | {("connect", name) for name in PARTS[part]}


@pytest.mark.parametrize("part", sorted(PARTS))
def test_a_part_calls_only_itself_the_state_and_the_parts_of_its_contract(part):
    found = problems(class_tree(part_classes()[part]), part, set(PARTS[part]))
    assert not found, "\n".join(found)


@pytest.mark.parametrize("part", sorted(PARTS))
def test_a_part_module_imports_other_parts_only_for_type_hints(part):
    cls = part_classes()[part]
    module = inspect.getmodule(cls)
    part_modules = {inspect.getmodule(c).__name__ for c in part_classes().values()} - {module.__name__}
    tree = ast.parse(inspect.getsource(module))
    runtime = [n for n in tree.body if isinstance(n, ast.ImportFrom)]
    assert not [ast.unparse(n) for n in runtime if n.module in part_modules]


def test_the_state_calls_no_part():
    tree = class_tree(LimState)
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and is_self(n.value)}
    assert not used & set(PARTS)
    assert not used - own_names(tree)


def test_only_the_parts_writes_names_change_the_state():
    writers: dict[str, set[str]] = {}
    for name, cls in {**part_classes(), "core": LimCore}.items():
        for attr in state_writes(class_tree(cls)):
            writers.setdefault(attr, set()).add(name)
    assert writers == {attr: set(parts) for attr, parts in WRITES.items()}


def test_the_checks_see_a_hidden_call():
    """The checks themselves: a borrowed method, a part outside the contract, a method of a
    part that is not public and a write the table does not name are all found."""
    tree = ast.parse(textwrap.dedent('''
        class Sneaky:
            def __init__(self, state):
                self.state = state
            def connect(self, *, controller):
                self.controller = controller
            def go(self):
                self._emit(None)                   # a mixin's method, borrowed
                self.offers.accept({})             # a part not in the contract
                self.controller._run_op({}, None)  # not public
                self.controller.request_op(None, "hold", "1000", None)
                self.state.emit(None, "Held", "1000", None)
                self.state.calls_of.pop("1000")    # a write
                self.state.no_such_thing
                getattr(self.controller, "request_op")
    ''')).body[0]
    found = problems(tree, "sneaky", {"controller"})
    assert sorted(f.split(":")[0] for f in found) == sorted([
        "self._emit", "self.offers.accept", "self.controller._run_op", "self.state.no_such_thing",
        "getattr(self.controller, 'request_op')", "self.controller"])
    assert state_writes(tree) == {"calls_of"}
