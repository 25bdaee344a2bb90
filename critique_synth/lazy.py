"""Package attributes that load on first use (PEP 562) and are not replaced by same-named modules.

`critique_synth.export` and `critique_synth.audit` are functions, and so are modules of the same
name; the import system binds a submodule on its package the first time it loads, which would
replace the function. Here the function wins: `from critique_synth.export import X` still works
(it reads sys.modules), while `critique_synth.export(...)` is always the function.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from importlib import import_module
from types import ModuleType
from typing import Any


class _FunctionsWin(ModuleType):
    _functions: frozenset[str]

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._functions and isinstance(value, ModuleType):
            return
        super().__setattr__(name, value)


def functions_win(package: str, names: Iterable[str]) -> None:
    """Keep `package.NAME` for each of `names` when a submodule called NAME loads."""
    module = sys.modules[package]
    module.__dict__["_functions"] = frozenset(names)
    module.__class__ = _FunctionsWin


def lazy_attributes(package: str, names: dict[str, str]) -> None:
    """Make `package.NAME` import `names[NAME]` (a module relative to `package`) on first access."""
    module = sys.modules[package]

    def __getattr__(name: str) -> Any:
        source = names.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(source, package), name)
        module.__dict__[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(module.__dict__) | set(names))

    module.__dict__.update(__getattr__=__getattr__, __dir__=__dir__)
    functions_win(package, names)
