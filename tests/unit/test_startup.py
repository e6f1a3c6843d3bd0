"""`mlmake plan` and `validate` stay fast: they never load the heavy libraries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import copy_example

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("polars", "xgboost", "dvc", "numpy", "pyarrow", "networkx", "pandas", "scipy", "vl_convert")


def imported(args: list[str], cwd: Path) -> set[str]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "mlmake", *args],
                          cwd=cwd, capture_output=True, text=True, check=True)
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


@pytest.mark.parametrize("command", [["validate"], ["plan"], ["graph"]])
def test_planning_commands_load_no_heavy_library(command: list[str], tmp_path: Path) -> None:
    project = tmp_path / "churn"
    copy_example("churn", project, skip=("data",))
    with open(project / "mlproject.yaml", "a", encoding="utf-8") as f:  # a monitor too (its recipe needs scipy)
        f.write("\nmonitors:\n  live:\n    model: churn_xgb\n    current: {deploy: churn_api}\n")
    loaded = imported(["-C", str(project), *command], ROOT)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
