"""ml/scoring's choice of predictor: the built-in booster when a signature names no format,
else the files and the loader of the kind it names."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlmake.core.errors import NodeError
from mlmake.ml.scoring import load_scorer, model_files


def test_a_signature_without_a_format_is_the_builtin_booster_in_model_json() -> None:
    assert model_files({"task": "binary"}) == ["model.json"]


def test_a_format_lists_its_own_files() -> None:
    assert model_files({"format": "sklearn", "files": ["estimator.json"]}) == ["estimator.json"]


@pytest.mark.parametrize("files", [None, [], ["../model.json"], ["a/b.json"], ["signature.json"], [""]])
def test_a_format_must_list_plain_file_names(files: object) -> None:
    with pytest.raises(NodeError) as caught:
        model_files({"format": "sklearn", "files": files})
    assert str(caught.value) == f"signature.json: 'files' must list the model's files by plain name, got {files!r}"


def test_a_format_no_installed_kind_reads_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "signature.json").write_text('{"task": "binary", "inputs": [], "format": "nosuch", '
                                             '"files": ["m.json"]}')
    (tmp_path / "m.json").write_text("{}")
    with pytest.raises(NodeError) as caught:
        load_scorer(str(tmp_path))
    assert str(caught.value) == ("the model was written in format 'nosuch', which no installed kind reads "
                                 "(is the plugin that provides kind 'nosuch' installed?)")


def test_a_missing_model_file_says_to_build_the_model(tmp_path: Path) -> None:
    (tmp_path / "signature.json").write_text('{"task": "binary", "inputs": [], "format": "sklearn", '
                                             '"files": ["estimator.json"]}')
    with pytest.raises(NodeError) as caught:
        load_scorer(str(tmp_path))
    assert str(caught.value) == f"{tmp_path / 'estimator.json'} is missing; build the model first"
