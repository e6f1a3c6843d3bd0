"""Raw rows in (issue 19): the service computes a row's features with the feature set's own SQL,
the other tables it reads looked up by the entity key, and answers exactly what the batch
target wrote for that row. Copies of examples/ built with the CLI; the service on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.e2e.test_serve import Service, build_example, serve
from tests.helpers import copy_example, run_cli

PENGUIN_COLUMNS = ["species", "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g",
                   "is_male"]


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Service]]:
    root = build_example(tmp_path_factory.mktemp("raw"), "churn")
    service = serve(root, "churn_api")
    yield root, service
    service.stop()


@pytest.fixture(scope="module")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Service]]:
    root = build_example(tmp_path_factory.mktemp("raw"), "penguins")
    service = serve(root, "species_api")
    yield root, service
    service.stop()


def raw_customers(root: Path) -> list[dict[str, Any]]:
    """The rows of the customers dataset as a client has them: no label, no n_events, no total_spend."""
    return pl.read_parquet(root / "build/datasets/customers/data.parquet").drop("churned").to_dicts()


def test_every_raw_customer_gets_the_batch_targets_prediction(churn: tuple[Path, Service]) -> None:
    root, service = churn
    scores = pl.read_parquet(root / "build/scores.parquet").sort("customer_id")
    rows = raw_customers(root)
    assert len(rows) == scores.height == 1000
    response = service.predict({"rows": rows})
    assert response.status_code == 200, response.text
    answer = response.json()
    # n_events and total_spend: a COUNT and a SUM over the customer's events, looked up by key
    assert answer["probabilities"] == scores["probability"].to_list()
    assert answer["predictions"] == scores["prediction"].to_list()
    assert answer["keys"] == [{"customer_id": c} for c in scores["customer_id"]]
    for n in (0, 16, 999):
        one = service.predict(rows[n]).json()
        assert (one["probability"], one["key"]) == (scores["probability"][n], {"customer_id": rows[n]["customer_id"]})


def test_a_batch_mixes_raw_rows_feature_rows_and_keys(churn: tuple[Path, Service]) -> None:
    root, service = churn
    scores = pl.read_parquet(root / "build/scores.parquet").sort("customer_id")
    features = pl.read_parquet(root / "build/features/customer_features/data.parquet").drop("churned")
    rows = [raw_customers(root)[3], features.row(4, named=True), {"customer_id": int(scores["customer_id"][5])}]
    answer = service.predict(rows).json()
    assert answer["probabilities"] == scores["probability"][3:6].to_list()


def test_the_manifest_and_metadata_describe_the_raw_request(churn: tuple[Path, Service]) -> None:
    root, service = churn
    request = json.loads((root / "build/deploy/churn_api/manifest.json").read_text())["request"]
    assert (request["runs"], request["table"], request["key"], request["replayed"]) == (
        True, "customers", ["customer_id"], 200)
    assert request["tables"] == {"customers": "request.customers.parquet", "events": "lookup.events.parquet"}
    meta = service.client.get("/metadata").json()
    assert meta["raw_input_schema"]["required"] == ["customer_id", "age", "plan", "tenure_months", "monthly_fee",
                                                    "region"]
    assert meta["raw_input_schema"]["properties"]["churned"] == {"anyOf": [{"type": "boolean"}, {"type": "null"}]}
    openapi = service.client.get("/openapi.json").json()
    body = openapi["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["anyOf"][1]["properties"]["customer_id"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}


@pytest.mark.parametrize(("row", "loc", "kind", "msg"), [
    ({"customer_id": 1, "age": 40, "plan": "pro", "tenure_months": 3, "region": "north"}, ["body", "monthly_fee"],
     "missing", "'monthly_fee' is missing; a raw row carries every column of customers the feature set reads "
     "(customer_id, age, plan, tenure_months, monthly_fee, region, churned); send null for an unknown value"),
    ({"customer_id": 1, "age": "forty", "plan": "pro", "tenure_months": 3, "monthly_fee": 1.0, "region": "north"},
     ["body", "age"], "integer_type", "'age': expected an integer, got \"forty\""),
    ({"customer_id": 1, "age": 40, "plan": "pro", "tenure_months": 3, "monthly_fee": 1.0, "regoin": "north"},
     ["body", "regoin"], "extra_forbidden", "'regoin' is not a column of customers (did you mean 'region'?); "
     "a raw row carries customer_id, age, plan, tenure_months, monthly_fee, region, churned"),
])
def test_a_bad_raw_row_names_the_column(churn: tuple[Path, Service], row: dict[str, Any], loc: list[Any], kind: str,
                                        msg: str) -> None:
    response = churn[1].predict(row)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0] | {"input": None} == {"loc": loc, "type": kind, "msg": msg, "input": None}


def test_every_raw_penguin_gets_the_batch_targets_prediction(penguins: tuple[Path, Service]) -> None:
    root, service = penguins
    features = pl.read_parquet(root / "build/features/penguin_features/data.parquet")
    scores = pl.read_parquet(root / "build/deploy/species_scores/scores.parquet")
    expected = {row: (s["prediction"], [s["probability_Adelie"], s["probability_Chinstrap"], s["probability_Gentoo"]])
                for row, s in zip(features.select(PENGUIN_COLUMNS).rows(), scores.iter_rows(named=True), strict=True)}
    raw = pl.read_parquet(root / "build/datasets/penguins/data.parquet")
    measured = raw.filter(pl.col("bill_length_mm").is_not_null())
    rows = measured.to_dicts()  # as recorded, species, sex and year included
    assert len(rows) == 342
    answer = service.predict({"rows": rows}).json()
    is_male = [None if s is None else int(s == "male") for s in measured["sex"]]
    keys = [(*r[:6], m) for r, m in zip(measured.select(PENGUIN_COLUMNS[:6]).rows(), is_male, strict=True)]
    assert answer["predictions"] == [expected[k][0] for k in keys]
    assert answer["probabilities"] == [expected[k][1] for k in keys]


def test_a_raw_row_the_sql_leaves_out_is_told_so(penguins: tuple[Path, Service]) -> None:
    row = {"species": None, "island": "Dream", "bill_length_mm": None, "bill_depth_mm": None,
           "flipper_length_mm": None, "body_mass_g": None, "sex": None}
    response = penguins[1].predict(row)
    assert response.status_code == 422
    assert response.json()["detail"] == [{
        "loc": ["body"], "type": "no_features", "input": None,
        "msg": "the sql of feature set penguin_features keeps no row for this row, so the model has nothing to "
               "score (as in training, where it is left out)"}]


def test_the_build_says_which_feature_sets_cannot_run_per_request(tmp_path: Path) -> None:
    root = tmp_path / "penguins"
    copy_example("penguins", root)
    text = (root / "mlproject.yaml").read_text(encoding="utf-8")
    text = text.replace("\nmodels:", "\n  wide:\n    from: penguin_features\n    sql: SELECT * FROM penguin_features\n"
                        "\nmodels:").replace("features: penguin_features", "features: wide")
    (root / "mlproject.yaml").write_text(text, encoding="utf-8")
    result = run_cli(root, "build", "deploy.species_api")
    assert result.exit_code == 0, result.stderr
    why = "feature set wide reads feature set penguin_features, not only datasets: send its feature columns"
    assert f"raw_rows=not accepted: {why}" in result.stdout
    manifest = json.loads((root / "build/deploy/species_api/manifest.json").read_text())
    assert manifest["request"] == {"runs": False, "why": why}
    assert not (root / "build/deploy/species_api/request.json").exists()


def test_the_manifest_says_the_sql_is_compiled_for_one_row(churn: tuple[Path, Service],
                                                           penguins: tuple[Path, Service]) -> None:
    for root, deploy in ((churn[0], "churn_api"), (penguins[0], "species_api")):
        request = json.loads((root / f"build/deploy/{deploy}/manifest.json").read_text())["request"]
        assert request["compiled"] == {"runs": True, "float_sum": "kahan"}


def test_sql_that_is_not_compiled_runs_by_polars_with_the_same_answers(tmp_path: Path) -> None:
    root = tmp_path / "penguins"
    copy_example("penguins", root)
    text = (root / "mlproject.yaml").read_text(encoding="utf-8")
    (root / "mlproject.yaml").write_text(text.replace("bill_length_mm / bill_depth_mm AS bill_ratio",
                                                      "bill_length_mm / NULLIF(bill_depth_mm, 0) AS bill_ratio"),
                                         encoding="utf-8")
    result = run_cli(root, "build")
    assert result.exit_code == 0, result.stderr
    assert "raw_rows=features computed per request by polars' sql (not compiled: function NULLIF)\n" in result.stdout
    features = pl.read_parquet(root / "build/features/penguin_features/data.parquet")
    scores = pl.read_parquet(root / "build/deploy/species_scores/scores.parquet")
    expected = {row: (s["prediction"], [s[f"probability_{c}"] for c in ("Adelie", "Chinstrap", "Gentoo")])
                for row, s in zip(features.select(PENGUIN_COLUMNS).rows(), scores.iter_rows(named=True), strict=True)}
    measured = pl.read_parquet(root / "build/datasets/penguins/data.parquet").filter(
        pl.col("bill_length_mm").is_not_null())
    is_male = [None if s is None else int(s == "male") for s in measured["sex"]]
    keys = [(*r[:6], m) for r, m in zip(measured.select(PENGUIN_COLUMNS[:6]).rows(), is_male, strict=True)]
    service = serve(root, "species_api")
    try:
        answer = service.predict({"rows": measured.to_dicts()}).json()
    finally:
        service.stop()
    assert len(keys) == 342
    assert answer["predictions"] == [expected[k][0] for k in keys]
    assert answer["probabilities"] == [expected[k][1] for k in keys]
