"""The run history: a record reads back exactly as it was written."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mlmake.state import records

RECORD = records.Record(
    run_id="20260101-120000-abc123", node="models.churn", kind="model", fingerprint="f" * 64, status="built",
    started=1_700_000_000.5, duration=0.25, reasons=["new node"], params={"max_depth": 6}, metrics={"auc": 0.9},
    git_commit=None, env="dev", overrides=["models.churn.params.max_depth=6"], message="",
    config={"params": {"max_depth": 6}, "gates": {"auc": ">= 0.5"}}, inputs={"data/customers.csv": "abc"})


def test_a_record_reads_back_as_written(tmp_path: Path) -> None:
    failed = replace(RECORD, node="steps.report", kind="cmd", status="failed", started=RECORD.started + 1,
                     message="exit status 1", git_commit="0" * 40, env=None, overrides=[])
    records.record(tmp_path, RECORD)
    records.record(tmp_path, failed)
    assert records.history(tmp_path) == [failed, RECORD]
    assert records.by_run(tmp_path, "20260101") == [RECORD, failed]
