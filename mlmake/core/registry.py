"""The node kinds mlmake knows, found by name so that the core never imports a kind."""

from __future__ import annotations

import importlib
from types import ModuleType

BUILTIN = ("mlmake.kinds.dataset", "mlmake.kinds.features", "mlmake.kinds.model", "mlmake.kinds.cmd",
           "mlmake.kinds.deploy")


def registry() -> dict[str, ModuleType]:
    """Section name → kind module, in the order sections appear in the file."""
    modules = [importlib.import_module(name) for name in BUILTIN]
    return {m.SECTION: m for m in modules}


def by_kind(kind: str) -> ModuleType:
    """The module of a kind name (`dataset`, `model`, …)."""
    for module in registry().values():
        if kind == module.KIND:
            return module
    raise KeyError(kind)
