"""Monitoring and continuous training end to end on the churn example: the service started for
real (loopback, bounded waits), traffic from held-out rows, then shifted traffic and wrong labels;
`mlmake monitor` reads the log, `plan` explains the retraining triggers and `build` retrains."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.e2e.test_serve import Service, build_example, serve
from tests.helpers import copy_example, run_cli

MONITORED = """
monitors:
  churn_live:
    description: The churn service's traffic against the model's training features.
    model: churn_xgb
    current: {deploy: churn_api}
"""
# one column of seven shifted is a drift share of 0.143: the threshold sits below it
TRIGGERS = """    slices: [plan]
    retrain:
      when:
        - {monitor: churn_live, if: "drift_share > 0.1"}
        - {monitor: churn_live, if: "live.auc < 0.75"}
        - {older_than: 7d}
        - new_data
"""
INPUTS = ["age", "plan", "tenure_months", "monthly_fee", "region", "n_events", "total_spend"]


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = build_example(tmp_path_factory.mktemp("monitor"), "churn")
    text = (root / "mlproject.yaml").read_text()
    (root / "mlproject.yaml").write_text(text.replace("    slices: [plan]\n", TRIGGERS) + MONITORED)
    return root


@pytest.fixture()
def service(churn: Path) -> Iterator[Service]:
    """The churn service on an empty log."""
    for old in (churn / ".mlmake/serve/churn_api").glob("predictions.jsonl*"):
        old.unlink()
    running = serve(churn, "churn_api")
    yield running
    running.stop()


def held_out(root: Path) -> pl.DataFrame:
    """The rows the model never trained on, with their inputs and true label."""
    rows = pl.read_parquet(root / "build/models/churn_xgb/predictions.parquet").select("customer_id", "churned")
    table = pl.read_parquet(root / "build/features/customer_features/data.parquet").drop("churned")
    return rows.join(table, on="customer_id", maintain_order="left")


def send(service: Service, rows: pl.DataFrame, labels: list[bool] | None = None) -> None:
    """The rows in batches of 50, then each true label (or the ones given) through /feedback."""
    ids: list[str] = []
    inputs = rows.select(INPUTS).to_dicts()
    for start in range(0, len(inputs), 50):
        answer = service.predict({"rows": inputs[start:start + 50]})
        assert answer.status_code == 200, answer.text
        ids += answer.json()["prediction_ids"]
    for pid, label in zip(ids, labels if labels is not None else rows["churned"].to_list(), strict=True):
        assert service.client.post("/feedback", json={"prediction_id": pid, "label": label}).status_code == 200


def monitor(root: Path) -> dict[str, Any]:
    result = run_cli(root, "monitor", "churn_live", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    reports: list[dict[str, Any]] = json.loads(result.stdout)
    return reports[0]


def model_lines(root: Path, *args: str) -> tuple[int, list[str]]:
    """`plan`'s exit code, and its symbol for the model followed by its reasons, one a line."""
    result = run_cli(root, "plan", *args)
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if " models.churn_xgb " in line)
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("     "))
    symbol, address, first = lines[start].split(None, 2)
    assert address == "models.churn_xgb"
    return result.exit_code, [symbol, first] + [line.strip() for line in lines[start + 1:end]]


def test_before_any_traffic_the_report_is_empty_and_the_triggers_wait(churn: Path) -> None:
    result = run_cli(churn, "monitor", "churn_live")
    assert result.exit_code == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("monitors.churn_live: models.churn_xgb, 0 rows from "
                               ".mlmake/serve/churn_api/predictions.jsonl at ")
    assert lines[1:] == ["  no rows yet: no drift measured", "  live quality: no labels fed back yet"]
    code, lines = model_lines(churn)
    assert lines[1:3] == ["watching monitor churn_live: drift share > 0.1: no value yet",
                          "watching monitor churn_live: live.auc < 0.75: no value yet"]


def test_monitor_names_an_unknown_monitor(churn: Path) -> None:
    result = run_cli(churn, "monitor", "churn")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1, "", "error: no monitor 'churn' in mlproject.yaml (monitors: churn_live)\n")


def test_validate_locates_a_monitor_of_an_unknown_deploy_target(tmp_path: Path) -> None:
    root = copy_example("churn", tmp_path / "churn")
    with open(root / "mlproject.yaml", "a", encoding="utf-8") as f:
        f.write(MONITORED.replace("{deploy: churn_api}", "{deploy: churn_apj}"))
    result = run_cli(root, "validate")
    assert result.exit_code == 1
    lines = (result.stdout + result.stderr).splitlines()
    at = len((root / "mlproject.yaml").read_text().splitlines())
    assert lines[0] == f"mlproject.yaml:{at}:23: monitors.churn_live.current.deploy: no deploy target 'churn_apj'"


def test_older_than_fires_by_the_injected_clock(churn: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = (churn / "build/models/churn_xgb/signature.json").stat().st_mtime
    at = lambda days: datetime.fromtimestamp(built + days * 86400, UTC).isoformat()  # noqa: E731
    # first in this module: no monitor report yet, so the age alone decides
    monkeypatch.setenv("MLMAKE_NOW", at(6.5))
    code, lines = model_lines(churn, "--detailed-exitcode")
    assert "watching older than 7d: built 6.5d ago" in lines
    monkeypatch.setenv("MLMAKE_NOW", at(8))
    code, lines = model_lines(churn, "--detailed-exitcode")
    assert code == 2
    assert lines == ["~", "older than 7d: built 8d ago"]


def test_held_out_traffic_does_not_drift_and_the_triggers_watch(churn: Path, service: Service) -> None:
    rows = held_out(churn)
    send(service, rows)
    report = monitor(churn)
    assert report["drift_share"] == 0.0 and report["drifted"] == []
    assert report["current"]["rows"] == rows.height == 200
    assert report["current"]["fingerprint"] == service.client.get("/health").json()["fingerprint"]
    assert [c["test"] for c in report["columns"]] == ["ks", "chi2", "ks", "ks", "chi2", "ks", "ks"]
    assert report["live"]["labels"] == 200
    auc = report["live"]["auc"]
    recorded = json.loads((churn / "build/models/churn_xgb/metrics.json").read_text())["metrics"]["auc"]
    assert auc == pytest.approx(recorded, abs=1e-9)  # the held-out rows, scored by the service: the model's own AUC
    code, lines = model_lines(churn, "--detailed-exitcode")
    assert code == 0
    assert lines[:3] == ["=", "watching monitor churn_live: drift share 0, fires when > 0.1",
                         f"watching monitor churn_live: live.auc {auc:.3g}, fires when < 0.75"]
    assert lines[3].startswith("watching older than 7d: built ") and len(lines) == 4
    text = run_cli(churn, "monitor", "churn_live").stdout.splitlines()
    assert text[1] == "  drift share 0 (0 of 7 columns)"


def test_a_shifted_column_fires_the_trigger_and_build_retrains(churn: Path, service: Service) -> None:
    rows = held_out(churn).with_columns(pl.col("tenure_months") + 24)
    send(service, rows)
    report = monitor(churn)
    assert report["drifted"] == ["tenure_months"]
    code, lines = model_lines(churn, "--detailed-exitcode")
    assert code == 2
    assert lines[:2] == ["~", "monitor churn_live: drift share 0.143 > 0.1 (tenure_months)"]
    before = (churn / "build/models/churn_xgb/signature.json").stat().st_mtime_ns
    built = run_cli(churn, "build")
    assert built.exit_code == 0, built.stdout + built.stderr
    assert built.stdout.splitlines()[0] == \
        "[1/5] models.churn_xgb  (monitor churn_live: drift share 0.143 > 0.1 (tenure_months))"
    assert (churn / "build/models/churn_xgb/signature.json").stat().st_mtime_ns > before  # trained, not restored
    # the report that fired judged the model before: the retrained one waits for the next report
    code, lines = model_lines(churn, "--detailed-exitcode")
    assert code == 0
    assert "watching monitor churn_live: drift share > 0.1: no report on this build of the model yet" in lines


def test_feedback_that_makes_live_auc_fall_fires_the_other_trigger(churn: Path, service: Service) -> None:
    rows = held_out(churn)
    send(service, rows, labels=[not label for label in rows["churned"].to_list()])
    report = monitor(churn)
    assert report["drift_share"] == 0.0 and report["live"]["auc"] < 0.5
    code, lines = model_lines(churn, "--detailed-exitcode")
    assert code == 2
    assert lines == ["~", f"monitor churn_live: live.auc {report['live']['auc']:.3g} < 0.75"]
