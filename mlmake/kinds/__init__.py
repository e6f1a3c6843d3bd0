"""The node kinds. Declarations are cheap; recipes import their heavy libraries."""

from __future__ import annotations

from types import ModuleType


def registry() -> dict[str, ModuleType]:
    """Section name → kind module, in the order sections appear in the file."""
    from mlmake.kinds import cmd, dataset, deploy, features, model

    return {m.SECTION: m for m in (dataset, features, model, cmd, deploy)}


def by_kind(kind: str) -> ModuleType:
    """The module of a kind name (`dataset`, `model`, …)."""
    for module in registry().values():
        if kind == module.KIND:
            return module
    raise KeyError(kind)
