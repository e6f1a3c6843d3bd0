"""The prediction log as data: written by the service's PredictionLog (rotating by size), read
back by mlmake.ml.predlog with polars — every request shape, one model's lines only, labels
joined to their predictions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlmake.ml import predlog
from mlmake.ml.logfiles import log_files
from mlmake.serve.log import PredictionLog

INPUTS = [{"name": "age", "type": "int"}, {"name": "plan", "type": "str", "categories": ["basic", "pro"]}]


def predict(log: PredictionLog, rid: str, request: object, scores: list[float], fingerprint: str = "fp1",
            features: dict[int, dict[str, object]] | None = None) -> None:
    if isinstance(request, dict) and "rows" not in request:
        response: dict[str, object] = {"prediction_id": f"{rid}-0", "prediction": scores[0] >= 0.5,
                                       "probability": scores[0]}
    else:
        response = {"prediction_ids": [f"{rid}-{i}" for i in range(len(scores))],
                    "predictions": [s >= 0.5 for s in scores], "probabilities": scores}
    log.prediction(rid, len(scores), "churn", fingerprint, json.dumps(request).encode(),
                   json.dumps(response).encode(), features or {})


def test_every_request_shape_becomes_rows_with_their_scores_and_labels(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path / "predictions.jsonl"))
    predict(log, "a", {"age": 30, "plan": "pro"}, [0.9])
    predict(log, "b", {"rows": [{"age": 40, "plan": "basic"}, {"age": 50, "plan": "pro"}]}, [0.1, 0.2])
    predict(log, "c", [{"age": 60, "plan": "basic"}], [0.7])
    predict(log, "d", {"customer_id": 7}, [0.4], features={0: {"age": 70, "plan": "pro"}})
    log.feedback("b", 1, True, "churn", "fp1")
    log.feedback("a", 0, False, "churn", "fp1")
    data = predlog.read(log.path, INPUTS)
    rows = data.rows.sort("_pid").to_dicts()
    assert rows == [
        {"age": 30.0, "plan": "pro", "_pid": "a-0", "_score": 0.9, "_label": "false"},
        {"age": 40.0, "plan": "basic", "_pid": "b-0", "_score": 0.1, "_label": None},
        {"age": 50.0, "plan": "pro", "_pid": "b-1", "_score": 0.2, "_label": "true"},
        {"age": 60.0, "plan": "basic", "_pid": "c-0", "_score": 0.7, "_label": None},
        {"age": 70.0, "plan": "pro", "_pid": "d-0", "_score": 0.4, "_label": None},
    ]
    assert (data.fingerprint, data.lines, data.other) == ("fp1", 4, 0)


def test_only_the_newest_models_lines_are_read(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path / "predictions.jsonl"))
    predict(log, "old", {"age": 1, "plan": "pro"}, [0.5], fingerprint="fp-old")
    log.feedback("old", 0, True, "churn", "fp-old")
    predict(log, "new", {"age": 2, "plan": "pro"}, [0.6], fingerprint="fp-new")
    data = predlog.read(log.path, INPUTS)
    assert data.rows["_pid"].to_list() == ["new-0"]
    assert (data.fingerprint, data.lines, data.other) == ("fp-new", 1, 1)
    assert predlog.read(log.path, INPUTS, fingerprint="fp-old").rows["_label"].to_list() == ["true"]


def test_a_window_keeps_the_last_rows(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path / "predictions.jsonl"))
    for i in range(5):
        predict(log, f"r{i}", {"age": i, "plan": "pro"}, [0.5])
    assert predlog.read(log.path, INPUTS, window=2).rows["age"].to_list() == [3.0, 4.0]


def test_the_log_rotates_by_size_and_is_read_across_its_files_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    log = PredictionLog(str(path), max_bytes=600, keep=3)
    for i in range(12):
        predict(log, f"r{i:02}", {"age": i, "plan": "pro"}, [0.5])
    files = log_files(str(path))
    assert [Path(f).name for f in files] == ["predictions.jsonl.3", "predictions.jsonl.2", "predictions.jsonl.1",
                                             "predictions.jsonl"]
    assert all(Path(f).stat().st_size <= 600 for f in files)
    ages = predlog.read(str(path), INPUTS).rows["age"].to_list()
    assert ages == sorted(ages) and ages[-1] == 11.0 and len(ages) < 12  # the oldest file was dropped
    log.feedback(f"r{int(ages[0]):02}", 0, True, "churn", "fp1")  # a label for a row in the oldest file kept
    assert log.rows_of(f"r{int(ages[0]):02}") == 1


def test_a_reopened_log_rotates_at_its_existing_size(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    path.write_bytes(b"x" * 590 + b"\n")
    log = PredictionLog(str(path), max_bytes=600)
    predict(log, "r", {"age": 1, "plan": "pro"}, [0.5])
    assert (tmp_path / "predictions.jsonl.1").read_bytes() == b"x" * 590 + b"\n"
    assert path.read_bytes().startswith(b'{"type":"prediction","request_id":"r"')


@pytest.mark.parametrize("name", ["predictions.jsonl.bak", "predictions.jsonl.1x"])
def test_other_files_beside_the_log_are_not_rotated_copies(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("{}\n")
    (tmp_path / "predictions.jsonl").write_text("")
    assert log_files(str(tmp_path / "predictions.jsonl")) == [str(tmp_path / "predictions.jsonl")]


def test_a_body_with_text_beyond_ascii_is_cut_where_its_keys_are(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path / "predictions.jsonl"))
    predict(log, "u", {"age": 33, "plan": "prö,\"response\":"}, [0.25])
    predict(log, "v", {"rows": [{"age": 44, "plan": "日本"}]}, [0.75])
    rows = predlog.read(log.path, INPUTS).rows.to_dicts()
    assert rows == [{"age": 33.0, "plan": "prö,\"response\":", "_pid": "u-0", "_score": 0.25, "_label": None},
                    {"age": 44.0, "plan": "日本", "_pid": "v-0", "_score": 0.75, "_label": None}]
