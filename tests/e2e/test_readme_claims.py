"""What the READMEs say a build of the penguins example does, it does: the commands are
taken from the README text and run as written; the figures quoted are the ones printed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import copy_example, run_cli

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
PENGUINS_README = (REPO / "examples" / "penguins" / "README.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("readme") / "penguins"
    copy_example("penguins", root)
    built = run_cli(root, "build")
    assert built.exit_code == 0, built.stderr
    return root


def started(stdout: str) -> dict[str, str]:
    """{node: its reasons} of the nodes a build ran ("[1/3] models.species  (params.seed 42 → 7)")."""
    found = re.findall(r"^\[\d+/\d+\] (\S+)  (.*)$", stdout, re.M)
    return {node: why for node, why in found}


def test_the_readmes_param_demo_retrains_only_the_model(penguins: Path) -> None:
    demo = re.search(r"`mlmake -C examples/penguins build -P (\S+)` to see only the model\nretrain", README)
    assert demo is not None, "the README's demo sentence moved"
    key, value = demo.group(1).split("=")
    result = run_cli(penguins, "build", "-P", f"{key}={value}")
    assert result.exit_code == 0, result.stderr
    ran = started(result.stdout)
    assert key == "models.species.params.max_depth"
    assert ran["models.species"] == f"(params.max_depth 3 → {value})"  # 3 is the example's own value
    assert not {"datasets.penguins", "features.penguin_features"} & set(ran)


def test_the_penguins_readme_quotes_the_accuracy_the_build_prints(penguins: Path) -> None:
    quoted = re.search(r"accuracy (\S+), as `mlmake build` prints", PENGUINS_README)
    other = re.search(r"`-P seed=7`: accuracy (\S+)\)", PENGUINS_README)
    assert quoted is not None and other is not None, "the README's accuracy sentence moved"
    printed = run_cli(penguins, "build", "--force", "models.species").stdout
    assert f"accuracy={quoted.group(1)}," in printed
    reseeded = run_cli(penguins, "build", "-P", "seed=7").stdout
    assert f"accuracy={other.group(1)}," in reseeded
