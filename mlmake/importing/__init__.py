"""`mlmake import dvc`: a dvc.yaml pipeline as an mlproject.yaml of steps, with DVC's
state adopted into mlproject.lock (see dvcyaml, dvcsteps and adopt)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from mlmake.core.errors import MlmakeError
from mlmake.core.spec import PROJECT_FILE
from mlmake.core.workdir import write_atomic
from mlmake.importing.adopt import Adoption, adopt
from mlmake.importing.dvcsteps import Conversion, convert, step_name
from mlmake.importing.dvcyaml import DVC_FILE, read_dvc

HEADER = (f"# Imported from {DVC_FILE} by `mlmake import dvc`. DVC-tracked data stays where it is\n"
          "# (PATH.dvc); values dvc.yaml templated with ${...} are params below.\n")


@dataclass(frozen=True)
class Imported:
    conversion: Conversion
    adoption: Adoption
    status_problem: str  # why DVC's state could not be read ('' when it was)


def import_dvc(root: Path, *, force: bool = False) -> Imported:
    """Write ROOT/mlproject.yaml from ROOT/dvc.yaml, then record the stages DVC calls up to date."""
    target = root / PROJECT_FILE
    if target.exists() and not force:
        raise MlmakeError(f"{PROJECT_FILE} already exists in {root}; pass --force to overwrite it "
                          "(and its mlproject.lock)")
    conversion = convert(read_dvc(root))
    if not conversion.steps:
        listed = "".join(f"\n{n.render()}" for n in conversion.skipped)
        raise MlmakeError(f"nothing in {DVC_FILE} could be converted; {PROJECT_FILE} not written:{listed}")
    write_atomic(target, render_project(step_name(root.resolve().name) or "imported", conversion))
    status, problem = _dvc_status(root)
    if problem:
        status = {stage: ["unknown"] for stage in conversion.names}  # nothing can be called up to date
    return Imported(conversion, adopt(root, conversion.names, status), problem)


def _dvc_status(root: Path) -> tuple[dict[str, object], str]:
    from mlmake.remote.dvcstore import RemoteError, pipeline_status

    try:
        return pipeline_status(root), ""
    except RemoteError as exc:
        return {}, str(exc)


def render_project(name: str, conversion: Conversion) -> str:
    """The imported mlproject.yaml: version, project, params, then the steps in dvc.yaml's order."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = None  # lists of scalars on one line: cmd: [python, train.py]
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    body: dict[str, object] = {"version": 1, "project": name}
    if conversion.params:
        body["params"] = conversion.params
    body["steps"] = conversion.steps
    out = io.StringIO()
    yaml.dump(body, out)
    return HEADER + out.getvalue()
