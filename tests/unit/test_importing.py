"""The pieces of `mlmake import dvc` that decide alone: shell syntax, names, templating."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlmake.importing.dvcsteps import convert, shell_syntax, step_name
from mlmake.importing.dvcyaml import read_dvc


@pytest.mark.parametrize(("cmd", "found"), [
    ("python train.py --lr ${params.train.lr}", ""),
    ("python clean.py 'a|b' \"c > d\"", ""),
    ("python x.py $${literal}", ""),
    ("python a.py && python b.py", "&&"),
    ("python a.py | wc -l", "|"),
    ("python a.py > out.txt", ">"),
    ("python a.py 2> err.txt", ">"),
    ("python a.py $HOME", "$HOME"),
    ("python a.py \"$HOME\"", "$"),
    ("python a.py data/*.csv", "*"),
    ("python a.py ~/data", "~"),
    ("SEED=1 python a.py", "SEED=..."),
    ("python a.py `date`", "`"),
])
def test_shell_syntax_outside_quotes(cmd: str, found: str) -> None:
    assert shell_syntax(cmd) == found


@pytest.mark.parametrize(("stage", "name"), [
    ("train", "train"), ("train@us", "train-us"), ("train@lr0.1-rf", "train-lr0_1-rf"), ("grid@0", "grid-0"),
    ("9lives", "_9lives"), ("a b@c/d", "a_b-c_d"),
])
def test_step_names(stage: str, name: str) -> None:
    assert step_name(stage) == name


def test_a_param_with_spaces_is_not_kept_as_a_reference(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text("stages:\n  a:\n    cmd: python a.py ${flags} ${n}\n")
    (tmp_path / "params.yaml").write_text("flags: --x --y\nn: 3\n")
    conversion = convert(read_dvc(tmp_path))
    assert conversion.steps == {}
    assert [n.render() for n in conversion.skipped] == [
        "dvc.yaml:2:3: stages.a: stage a not converted: '${flags}' holds spaces or quotes: DVC's shell splits "
        "it into several arguments, mlmake passes a param as one"]


def test_references_into_params_become_mlmake_params(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text("vars:\n  - extra: {k: v}\nstages:\n  a:\n"
                                       "    cmd: python a.py ${train.lr} ${extra.k} ${sizes[1]}\n")
    (tmp_path / "params.yaml").write_text("train: {lr: 0.1, epochs: 3}\nsizes: [1, 2]\nunused: 0\n")
    conversion = convert(read_dvc(tmp_path))
    assert conversion.steps == {"a": {"cmd": ["python", "a.py", "${params.train.lr}", "${params.extra.k}", "2"]}}
    assert conversion.params == {"train": {"lr": 0.1, "epochs": 3}, "extra": {"k": "v"}}
