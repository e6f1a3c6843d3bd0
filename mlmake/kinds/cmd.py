"""steps.NAME: any command with declared deps and outs, run without a shell."""

from __future__ import annotations

from typing import Any

from mlmake.kinds.base import NodeDecl, Ref, Result, Task
from mlmake.spec import Step, is_address, node_config

SECTION = "steps"
KIND = "cmd"
RECIPE = 1
LIBRARIES: tuple[str, ...] = ()


def declare(project: Any, item: Step) -> NodeDecl:
    refs = tuple(Ref(d, (SECTION, item.name, "deps", i)) for i, d in enumerate(item.deps) if is_address(d))
    files = tuple(d for d in item.deps if not is_address(d))
    return NodeDecl(
        f"{SECTION}.{item.name}", KIND, item.span, node_config(item), refs,
        code=files, outputs=item.outs, recipe=RECIPE, libraries=LIBRARIES,
    )


def run(task: Task) -> Result:
    raise NotImplementedError
