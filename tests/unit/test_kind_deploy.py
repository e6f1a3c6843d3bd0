"""deploy.NAME: the http bundle and its manifest, batch scores, the docker context, the
staleness of deploy nodes, and the row encoder that serving shares with the model kind."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlmake import __version__
from mlmake.core.errors import NodeError
from mlmake.core.kind import Task
from mlmake.kinds import batch, http
from mlmake.kinds.docker.context import pins, render
from mlmake.ml.bundle import hash_file
from mlmake.ml.design import Input, design_matrix, inputs_from_signature
from mlmake.ml.rows import RowEncoder
from mlmake.state.lock import read_lock
from tests.helpers import run_cli, write_files

PROJECT = """\
version: 1
project: shop
datasets:
  customers:
    path: data/customers.csv
features:
  customer_features:
    from: customers
    key: customer_id
    sql: SELECT customer_id, age, plan, tenure, active, churned FROM customers
models:
  churn:
    features: customer_features
    target: churned
    task: binary
    split: {test_size: 0.25, seed: 1}
    params: {max_depth: 3, num_boost_round: 20}
  segment:
    features: customers
    target: segment
    task: multiclass
    drop: [customer_id, churned]
    params: {max_depth: 2, num_boost_round: 10}
  tenure:
    features: customer_features
    target: tenure
    task: regression
    drop: [churned]
    params: {max_depth: 2, num_boost_round: 10}
deploy:
  api: {model: churn, kind: http}
  scores: {model: churn, kind: batch}
  segments: {model: segment, kind: batch, input: customers, output: build/segments.parquet}
  segment_api: {model: segment, kind: http}
  box: {model: churn, kind: docker, description: the churn service as an image}
  tenure_api: {model: tenure, kind: http}
"""
BUNDLE_FILES = ["manifest.json", "metrics.json", "model.json", "signature.json"]
REQUEST_FILES = ["request.json", "request.customers.parquet"]  # its feature set runs per request (raw rows)


def customers(n: int = 300, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    plan = rng.choice(["basic", "pro", "max"], n)
    tenure = np.round(rng.gamma(2.0, 10.0, n), 2)
    active = rng.random(n) < 0.6
    churned = rng.random(n) < 1 / (1 + np.exp(-(0.04 * (50 - age) + 1.2 * (plan == "basic") - 0.8 * active)))
    segment = np.array(["a", "b", "c"])[(age // 25 + (plan == "max")) % 3]
    return pl.DataFrame({"customer_id": np.arange(1, n + 1), "age": age, "plan": plan, "tenure": tenure,
                         "active": active, "churned": churned, "segment": segment})


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shop")
    write_files(root, {"mlproject.yaml": PROJECT})
    (root / "data").mkdir()
    customers().write_csv(root / "data" / "customers.csv")
    result = run_cli(root, "build")
    assert result.exit_code == 0, result.stdout + result.stderr
    return root


def read(path: Path) -> Any:
    return json.loads(path.read_text())


# --- http ------------------------------------------------------------------------------


def test_an_http_bundle_holds_the_model_signature_metrics_store_and_manifest(built: Path) -> None:
    bundle, model = built / "build/deploy/api", built / "build/models/churn"
    assert sorted(p.name for p in bundle.iterdir()) == sorted(BUNDLE_FILES + ["store.parquet"] + REQUEST_FILES)
    for name in ("model.json", "signature.json", "metrics.json"):
        assert (bundle / name).read_bytes() == (model / name).read_bytes()
    manifest = read(bundle / "manifest.json")
    assert manifest["files"] == {p: hash_file(str(bundle / p)) for p in manifest["files"]}
    assert sorted(manifest["files"]) == ["metrics.json", "model.json", "request.customers.parquet", "request.json",
                                         "signature.json", "store.parquet"]
    store = pl.read_parquet(bundle / "store.parquet")
    assert store.columns == ["customer_id", "age", "plan", "tenure", "active"]  # the key, then the inputs in order
    assert store.height == 300 and manifest["store"] == {"file": "store.parquet", "key": ["customer_id"],
                                                         "rows": 300, "source": "features.customer_features"}


def test_the_manifest_records_the_lineage_from_the_lock(built: Path) -> None:
    manifest = read(built / "build/deploy/api/manifest.json")
    lock = read_lock(built)
    model = lock.nodes["models.churn"]
    assert manifest["model"] | {"classes": None} == {
        "name": "churn", "address": "models.churn", "fingerprint": model.fingerprint,
        "fingerprint_from": "mlproject.lock", "hash": hash_file(str(built / "build/models/churn/model.json")),
        "task": "binary", "objective": "binary:logistic", "features": "customer_features", "key": ["customer_id"],
        "target": {"name": "churned", "type": "bool"}, "classes": None}
    assert manifest["model"]["classes"] == [False, True]
    nodes = manifest["lineage"]["nodes"]
    assert sorted(nodes) == ["datasets.customers", "features.customer_features", "models.churn"]
    for address, node in nodes.items():
        entry = lock.nodes[address]
        assert node == {"kind": entry.kind, "fingerprint": entry.fingerprint,
                        "outputs": {p: o["hash"] for p, o in entry.outputs.items()}}
    assert manifest["lineage"]["data"] == lock.nodes["datasets.customers"].components.inputs
    assert list(manifest["lineage"]["data"]) == ["data/customers.csv"]
    assert manifest["metrics"] == read(built / "build/models/churn/metrics.json")["metrics"]
    assert manifest["versions"]["mlmake"] == __version__
    assert manifest["versions"]["xgboost"] == metadata.version("xgboost-cpu" if sys.platform == "linux" else "xgboost")
    assert (manifest["deploy"], manifest["kind"], manifest["format"]) == ("api", "http", 1)


def test_a_model_without_a_key_gets_no_online_store(built: Path) -> None:
    bundle = built / "build/deploy/segment_api"
    assert sorted(p.name for p in bundle.iterdir()) == BUNDLE_FILES
    assert read(bundle / "manifest.json")["store"] is None


def test_without_a_lock_entry_the_fingerprint_is_the_model_hash(built: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    root = tmp_path / "nolock"
    shutil.copytree(built / "build", root / "build")
    task = Task("deploy.api", "http", str(root), {"model": "churn", "kind": "http"}, {"build/deploy/api": str(out)},
                {"models.churn": ["build/models/churn"]}, {"models.churn": "model"})
    http.KIND.run(task)
    model = read(out / "manifest.json")["model"]
    assert (model["fingerprint"], model["fingerprint_from"]) == (hash_file(str(out / "model.json")), "model.json")
    assert read(out / "manifest.json")["lineage"] == {"nodes": {}, "data": {}}


def test_an_http_target_with_an_output_fails_validate_at_its_key(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "mlproject.yaml").write_text(
        "version: 1\nproject: p\ndatasets:\n  t: {path: t.csv}\nmodels:\n  m: {features: t, target: y, task: binary}\n"
        "deploy:\n  api:\n    kind: http\n    model: m\n    output: build/x.parquet\n", encoding="utf-8")
    result = run_cli(root, "validate")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        "mlproject.yaml:11:5: deploy.api.output: unknown key 'output'")


def test_the_bundle_is_rebuilt_to_identical_bytes(built: Path) -> None:
    before = {p.name: p.read_bytes() for p in (built / "build/deploy/api").iterdir()}
    result = run_cli(built, "build", "--force", "deploy.api")
    assert result.exit_code == 0, result.stderr
    assert {p.name: p.read_bytes() for p in (built / "build/deploy/api").iterdir()} == before


# --- batch --------------------------------------------------------------------------------


def test_batch_scores_have_the_key_predictions_and_the_model_fingerprint(built: Path) -> None:
    scores = pl.read_parquet(built / "build/deploy/scores/scores.parquet")
    assert scores.columns == ["customer_id", "prediction", "probability", "model_fingerprint"]
    assert scores.schema["prediction"] == pl.Boolean and scores.height == 300
    assert scores["model_fingerprint"].unique().to_list() == [read_lock(built).nodes["models.churn"].fingerprint]
    manifest = read(built / "build/deploy/scores/manifest.json")
    assert (manifest["input"], manifest["rows"], manifest["output"]) == (
        "features.customer_features", 300, "build/deploy/scores/scores.parquet")


def test_batch_scores_equal_the_model_kinds_own_predictions(built: Path) -> None:
    held = pl.read_parquet(built / "build/models/churn/predictions.parquet")
    scores = pl.read_parquet(built / "build/deploy/scores/scores.parquet")
    joined = held.join(scores, on="customer_id", suffix="_batch")
    assert joined.height == held.height == 75
    assert joined["probability"].to_list() == joined["probability_batch"].to_list()
    assert joined["prediction"].to_list() == joined["prediction_batch"].to_list()


def test_a_multiclass_batch_on_a_dataset_numbers_the_rows_and_writes_its_output(built: Path) -> None:
    scores = pl.read_parquet(built / "build/segments.parquet")
    assert scores.columns == ["row", "prediction", "probability_a", "probability_b", "probability_c",
                              "model_fingerprint"]
    assert scores["row"].to_list() == list(range(300))
    assert np.allclose(scores.select(pl.sum_horizontal(pl.col("^probability_.*$"))).to_series().to_numpy(), 1.0,
                       atol=1e-5)
    assert read(built / "build/deploy/segments/manifest.json")["output"] == "build/segments.parquet"
    assert sorted(p.name for p in (built / "build/deploy/segments").iterdir()) == ["manifest.json"]


def test_a_batch_input_without_a_model_input_column_is_an_error(built: Path, tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(built / "build", root / "build")
    table = root / "build/features/customer_features/data.parquet"
    pl.read_parquet(table).rename({"plan": "plam"}).write_parquet(table)
    task = Task("deploy.scores", "batch", str(root), {"model": "churn", "kind": "batch"},
                {"build/deploy/scores": str(tmp_path / "o")},
                {"models.churn": ["build/models/churn"], "features.customer_features":
                 ["build/features/customer_features"]})
    (tmp_path / "o").mkdir()
    with pytest.raises(NodeError, match=r"input 'plan' is not a column of features.customer_features "
                                        r"\(did you mean 'plam'\?\)"):
        batch.KIND.run(task)


# --- docker --------------------------------------------------------------------------------


def test_the_docker_context_has_a_rendered_dockerfile_and_the_bundle(built: Path) -> None:
    context = built / "build/deploy/box"
    assert sorted(p.name for p in context.iterdir()) == [".dockerignore", "Dockerfile", "bundle", "requirements.txt",
                                                         "wheels"]
    dockerfile = (context / "Dockerfile").read_text()
    assert "{{" not in dockerfile and "}}" not in dockerfile
    fingerprint = read_lock(built).nodes["models.churn"].fingerprint
    assert f"model churn, fingerprint {fingerprint}" in dockerfile
    assert f"FROM python:{sys.version_info.major}.{sys.version_info.minor}-slim" in dockerfile
    assert "RUN pip install -r requirements.txt" in dockerfile
    assert f"RUN pip install --no-deps ./wheels/mlmake-{__version__}-py3-none-any.whl" in dockerfile
    assert 'CMD ["python", "-m", "mlmake.serve", "/srv/bundle", "--host", "0.0.0.0", "--port", "8000"' in dockerfile
    assert "USER mlmake" in dockerfile and "EXPOSE 8000" in dockerfile
    assert sorted(p.name for p in (context / "bundle").iterdir()) == sorted(BUNDLE_FILES + ["store.parquet"]
                                                                            + REQUEST_FILES)
    assert read(context / "bundle/manifest.json")["model"]["fingerprint"] == fingerprint
    assert "__pycache__" in (context / ".dockerignore").read_text()


def test_requirements_pin_the_installed_serving_runtime(built: Path) -> None:
    lines = (built / "build/deploy/box/requirements.txt").read_text().splitlines()
    assert lines[0].startswith("# ")
    pinned = dict(line.split("==") for line in lines[1:])
    xgb = "xgboost-cpu" if "xgboost-cpu" in pinned else "xgboost"
    for name in ("polars", xgb, "numpy", "pyarrow", "fastapi", "uvicorn", "blake3", "starlette", "pydantic"):
        assert pinned[name] == metadata.version(name), name
    lowered = {n.lower() for n in pinned}
    assert not lowered & {"dvc", "rich", "ruamel.yaml", "jsonschema", "networkx", "mlmake"}


def test_the_wheel_holds_mlmake_with_a_valid_record(built: Path) -> None:
    wheel = built / f"build/deploy/box/wheels/mlmake-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "mlmake/serve/app.py" in names and "mlmake/ml/rows.py" in names
        assert not [n for n in names if "__pycache__" in n]
        record = archive.read(f"mlmake-{__version__}.dist-info/RECORD").decode().splitlines()
        for line in record:
            path, digest, size = line.rsplit(",", 2)
            if digest:
                data = archive.read(path)
                expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                assert (digest, int(size)) == (f"sha256={expected}", len(data)), path
        assert "Version: " + __version__ in archive.read(f"mlmake-{__version__}.dist-info/METADATA").decode()


def test_render_refuses_unknown_placeholders_and_leaves_docker_variables() -> None:
    assert render("FROM python:{{ python }}\nENV X=${HOME}", {"python": "3.11"}) == "FROM python:3.11\nENV X=${HOME}"
    with pytest.raises(NodeError, match="unknown placeholder"):
        render("{{ nope }}", {"python": "3.11"})


def test_pins_follow_requirements_but_not_extras() -> None:
    pinned = pins(("uvicorn",))
    names = {p.split("==")[0].lower() for p in pinned}
    assert {"uvicorn", "click", "h11"} <= names
    assert not names & {"uvloop", "httptools", "watchfiles"}  # behind uvicorn[standard]


def test_the_serving_runtime_imports_nothing_outside_the_requirements(built: Path) -> None:
    """What the docker image lacks (dvc, rich, ruamel, jsonschema, networkx) is never imported to serve."""
    code = f"""
import sys
for name in ("dvc", "rich", "ruamel", "jsonschema", "networkx"):
    sys.modules[name] = None
from pathlib import Path
from mlmake.serve.server import build_app
build_app(Path({str(built / "build/deploy/box/bundle")!r}), log=Path({str(built / "p.jsonl")!r}), poll_s=0)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# --- the graph ---------------------------------------------------------------------------


def test_plan_shows_deploy_targets_stale_when_their_model_changes(built: Path) -> None:
    assert "Plan: 0 to build" in run_cli(built, "plan").stdout
    result = run_cli(built, "plan", "-P", "models.churn.params.max_depth=4")
    # a target's manifest records its model's fingerprint, so a new one rebuilds it, whatever the model's bytes
    lineage = "upstream models.churn fingerprint changed"
    assert result.stdout == f"""\
 = datasets.customers
 = features.customer_features
 ~ models.churn                params.max_depth 3 → 4
 = models.segment
 = models.tenure
 ~ deploy.api                  {lineage}
 ~ deploy.scores               {lineage}
 = deploy.segments
 = deploy.segment_api
 ~ deploy.box                  {lineage}
 = deploy.tenure_api

Plan: 4 to build, 7 up to date.
"""


def test_a_bundle_reads_the_keyed_feature_set_and_a_batch_its_input(built: Path) -> None:
    from tests.helpers import load

    _, graph = load(built)
    # and the datasets its feature set reads: the bundle computes features from raw rows with them
    assert set(graph.upstream("deploy.api")) == {"models.churn", "features.customer_features", "datasets.customers"}
    assert set(graph.upstream("deploy.segment_api")) == {"models.segment"}
    assert set(graph.upstream("deploy.scores")) == {"models.churn", "features.customer_features"}
    assert set(graph.upstream("deploy.segments")) == {"models.segment", "datasets.customers"}
    assert graph.nodes["deploy.segments"].outputs == ("build/deploy/segments", "build/segments.parquet")


def test_plan_with_deploy_targets_loads_no_web_or_model_library(built: Path) -> None:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "mlmake", "-C", str(built), "plan"],
                          capture_output=True, text=True, timeout=60)
    loaded = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in done.stderr.splitlines()
              if line.startswith("import time:") and "|" in line}
    assert not loaded & {"fastapi", "uvicorn", "starlette", "pydantic", "xgboost", "polars", "numpy"}


# --- the row encoder ---------------------------------------------------------------------

INPUTS = [Input("age", "int64"), Input("plan", "str", ("basic", "max", "pro")), Input("tenure", "float64"),
          Input("active", "bool"), Input("score", "float32")]
DTYPES = {"age": pl.Int64, "plan": pl.String, "tenure": pl.Float64, "active": pl.Boolean, "score": pl.Float32}
VALUES = {
    "age": st.none() | st.integers(-(2 ** 62), 2 ** 62),
    "plan": st.none() | st.sampled_from(["basic", "max", "pro"]),
    "tenure": st.none() | st.floats(allow_nan=False, allow_infinity=False),
    "active": st.none() | st.booleans(),
    "score": st.none() | st.floats(width=32, allow_nan=False, allow_infinity=False),
}


def table_matrix(rows: list[dict[str, Any]]) -> np.ndarray:
    return design_matrix(pl.DataFrame(rows, schema=DTYPES), INPUTS)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # design_matrix: 1e300 → inf
@settings(max_examples=150, deadline=None)
@given(st.lists(st.fixed_dictionaries(VALUES), min_size=1, max_size=20))
def test_json_rows_encode_bit_identically_to_the_model_kinds_table_encoding(rows: list[dict[str, Any]]) -> None:
    encoder = RowEncoder(INPUTS)
    expected = table_matrix(rows)
    batch, problems = encoder.encode(rows, ("body",))
    assert problems == []
    assert np.array_equal(batch, expected, equal_nan=True)
    one_by_one = np.vstack([encoder.encode_one(row, ("body",))[0] for row in rows])
    assert np.array_equal(one_by_one, expected, equal_nan=True)


def test_the_feature_table_encodes_as_the_model_saw_it(built: Path) -> None:
    signature = read(built / "build/models/churn/signature.json")
    inputs = inputs_from_signature(signature)
    table = pl.read_parquet(built / "build/features/customer_features/data.parquet")
    rows = table.select([i.name for i in inputs]).to_dicts()
    encoded, problems = RowEncoder(inputs).encode(rows, ("body",))
    assert problems == [] and np.array_equal(encoded, design_matrix(table, inputs), equal_nan=True)


def test_the_encoder_names_each_bad_value() -> None:
    encoder = RowEncoder(INPUTS, ("customer_id",))
    rows = [{"age": "40", "plan": "gold", "tenure": True, "active": 1, "score": 1.5, "extra": 1},
            {"age": 40.5, "plan": "basic", "tenure": 1, "active": None},
            {"age": 2 ** 2000, "plan": None, "tenure": 1.0, "active": True, "score": None, "customer_id": 3},
            "not a row"]
    _, problems = encoder.encode(rows, ("body", "rows"))
    assert [(p.loc, p.type) for p in problems] == [
        (("body", "rows", 0, "age"), "integer_type"),
        (("body", "rows", 0, "plan"), "unknown_category"),
        (("body", "rows", 0, "tenure"), "number_type"),
        (("body", "rows", 0, "active"), "bool_type"),
        (("body", "rows", 0, "extra"), "extra_forbidden"),
        (("body", "rows", 1, "age"), "integer_type"),
        (("body", "rows", 1, "score"), "missing"),
        (("body", "rows", 2, "age"), "number_too_large"),
        (("body", "rows", 3), "object_type"),
    ]
    messages = [p.msg for p in problems]
    assert messages[0] == "'age': expected an integer, got a string '40'"
    assert messages[1] == "'plan': unknown category 'gold'; the model knows 'basic', 'max', 'pro'"
    assert messages[4] == ("'extra' is not an input of the model; the inputs are age, plan, tenure, active, "
                           "score")
    assert messages[6] == "'score' is missing; every input is required (send null for an unknown value)"


def test_integral_floats_are_integers_and_the_schema_lists_categories() -> None:
    encoder = RowEncoder(INPUTS)
    row = {"age": 40.0, "plan": "pro", "tenure": 2, "active": False, "score": 0.5}
    matrix, problems = encoder.encode_one(row, ("body",))
    assert problems == [] and matrix.tolist() == [[40.0, 2.0, 2.0, 0.0, 0.5]]
    schema = encoder.json_schema()
    assert schema["properties"]["plan"] == {"anyOf": [{"enum": ["basic", "max", "pro"]}, {"type": "null"}]}
    assert schema["required"] == ["age", "plan", "tenure", "active", "score"]


# --- the service in-process: regression answers, and a broken rebuild kept out ----------------


def test_a_regression_service_answers_values_and_takes_numeric_feedback(built: Path, tmp_path: Path) -> None:
    import asyncio

    import httpx

    from mlmake.serve.server import build_app

    app = build_app(built / "build/deploy/tenure_api", log=tmp_path / "log.jsonl", poll_s=0)
    table = pl.read_parquet(built / "build/features/customer_features/data.parquet")
    stored = table.filter(pl.col("customer_id") == 7).select("age", "plan", "active").to_dicts()[0]

    async def talk() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            one = await client.post("/predict", json={"customer_id": 7})
            pid = one.json()["prediction_id"]
            return [one, await client.post("/predict", json=[stored, stored]),
                    await client.post("/feedback", json={"prediction_id": pid, "label": 12.5}),
                    await client.post("/feedback", json={"prediction_id": pid, "label": "long"})]

    one, batch, feedback, wrong = asyncio.run(talk())
    assert sorted(one.json()) == ["fingerprint", "key", "model", "prediction", "prediction_id"]
    assert sorted(batch.json()) == ["fingerprint", "model", "prediction_ids", "predictions", "request_id"]
    assert batch.json()["predictions"] == [one.json()["prediction"]] * 2  # the store row, sent in full
    assert isinstance(one.json()["prediction"], float)
    assert feedback.status_code == 200 and feedback.json()["label"] == 12.5
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "label"]


def test_a_rebuilt_bundle_that_does_not_load_is_kept_out(built: Path, tmp_path: Path) -> None:
    from mlmake.serve.live import Live

    folder = tmp_path / "api"
    shutil.copytree(built / "build/deploy/api", folder)
    said: list[str] = []
    live = Live(str(folder), poll_s=0, say=said.append)
    first = live.current
    assert live.check() is False  # nothing changed

    manifest = read(folder / "manifest.json")
    (folder / "model.json").write_text("{}")  # a half-written rebuild: the files no longer match the manifest
    (folder / "manifest.json").write_text(json.dumps(manifest | {"deploy": "api2"}))
    assert live.check() is False and live.current is first
    assert "model.json changed after the manifest was written" in said[-1]
    assert live.check() is False and len(said) == 1  # a broken version is reported once

    shutil.rmtree(folder)
    assert live.check() is False and live.current is first  # mid-rename: no bundle at all
    shutil.copytree(built / "build/deploy/segment_api", folder)
    assert live.check() is True and live.current.model == "segment"
    assert said[-1] == f"mlmake serve: switched from model {first.fingerprint} to {live.current.fingerprint}"
