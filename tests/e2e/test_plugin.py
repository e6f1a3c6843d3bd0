"""The reference plugin (examples/plugins/mlmake-sklearn) installed for real: a virtual
environment on top of the test interpreter's packages, the plugin pip-installed into it (no
network, no build isolation), and that environment's `mlmake validate`, `plan`, `build`,
`schema` and `serve` run on a copy of the plugin's example. The test interpreter itself never
sees the plugin: its entry point exists only in the new environment."""

from __future__ import annotations

import json
import os
import re
import shutil
import site
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
import yaml

from tests.helpers import SKLEARN_PLUGIN_INSTALLED, copy_example

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "examples" / "plugins" / "mlmake-sklearn"
EXAMPLE = "plugins/mlmake-sklearn/example"
STARTUP_S = 60


@pytest.fixture(scope="module")
def python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a virtual environment with the plugin installed."""
    tmp = tmp_path_factory.mktemp("plugin-venv")
    source = tmp / "mlmake-sklearn"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns(
        "example", "__pycache__", "*.egg-info", "build", ".mypy_cache"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                   check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    # --system-site-packages reaches the base interpreter's packages; when the tests run in a
    # virtual environment themselves, mlmake, scikit-learn and pip are in that one: add it too
    lines = [f"import site; site.addsitedir({folder!r})" for folder in site.getsitepackages()]
    (Path(purelib) / "_test_interpreter.pth").write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = subprocess.run([python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                           "--disable-pip-version-check", "-q", str(source)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return python


def mlmake(python: Path, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`mlmake -C ROOT ARGS…` in the plugin's environment, plain text at a fixed width."""
    env = os.environ | {"COLUMNS": "120", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run([python, "-m", "mlmake", "-C", str(root), *args], capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.fixture(scope="module")
def built(python: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    root = copy_example(EXAMPLE, tmp_path_factory.mktemp("plugin") / "example")
    return root, mlmake(python, root, "build")


def steady(text: str) -> str:
    """Build output without its timings."""
    return re.sub(r" in \d+\.\ds", " in Ts", text)


def test_validate_and_plan_see_the_plugins_models(python: Path, tmp_path: Path) -> None:
    root = copy_example(EXAMPLE, tmp_path / "example")
    validated = mlmake(python, root, "validate")
    assert (validated.returncode, validated.stderr) == (0, "")
    assert validated.stdout == "mlproject.yaml is valid: 7 nodes (1 datasets, 1 features, 3 models, 2 deploy)\n"
    planned = mlmake(python, root, "plan")
    assert (planned.returncode, planned.stderr) == (0, "")
    assert planned.stdout == (
        " + datasets.penguins          new node\n"
        " + features.penguin_features  new node\n"
        " + models.species             new node\n"
        " + models.species_baseline    new node\n"
        " + models.body_mass           new node\n"
        " + deploy.baseline_api        new node\n"
        " + deploy.baseline_scores     new node\n"
        "\n"
        "Plan: 7 to build, 0 up to date.\n")


def test_validate_refuses_what_the_plugin_cannot_train_located(python: Path, tmp_path: Path) -> None:
    root = copy_example(EXAMPLE, tmp_path / "example")
    text = (root / "mlproject.yaml").read_text(encoding="utf-8")
    text = text.replace("estimator: Ridge", "estimator: LogisticRegression")
    text = text.replace("params: {alpha: 1.0}", "params: {alpha: 1.0, max_iter: 50}")
    (root / "mlproject.yaml").write_text(text, encoding="utf-8")
    result = mlmake(python, root, "validate")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "mlproject.yaml:75:16: models.body_mass.estimator: LogisticRegression does not fit a regression model; "
        "use LinearRegression or Ridge\n"
        "      estimator: LogisticRegression\n"
        "                 ^\n"
        "mlproject.yaml:76:14: models.body_mass.params.alpha: LogisticRegression takes no parameter 'alpha'; "
        "it takes C, max_iter, tol, fit_intercept, solver, class_weight\n"
        "      params: {alpha: 1.0, max_iter: 50}\n"
        "               ^\n"
        "2 errors found\n")


def test_an_estimator_outside_the_set_is_refused_with_did_you_mean(python: Path, tmp_path: Path) -> None:
    root = copy_example(EXAMPLE, tmp_path / "example")
    text = (root / "mlproject.yaml").read_text(encoding="utf-8")
    (root / "mlproject.yaml").write_text(text.replace("estimator: LogisticRegression", "estimator: LogisticRegresion"),
                                         encoding="utf-8")
    result = mlmake(python, root, "validate")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "mlproject.yaml:61:16: models.species_baseline.estimator: expected one of 'LogisticRegression', "
        "'LinearRegression', 'Ridge'; got 'LogisticRegresion'\n"
        "      estimator: LogisticRegresion\n"
        "                 ^\n"
        "  hint: did you mean 'LogisticRegression'?\n"
        "1 error found\n")


def test_build_trains_the_baseline_beside_the_xgboost_model(
        built: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    root, result = built
    assert (result.returncode, result.stderr) == (0, "")
    fingerprint = lock(root)["models.species_baseline"]["fingerprint"]
    assert steady(result.stdout) == (
        "[1/7] datasets.penguins  (new node)\n"
        "  done datasets.penguins in Ts  rows=344, columns=8\n"
        "[2/7] features.penguin_features  (new node)\n"
        "  done features.penguin_features in Ts  rows=342, columns=7\n"
        "[3/7] models.species  (new node)\n"
        "  done models.species in Ts  mlogloss=0.02834, accuracy=1\n"
        "[4/7] models.species_baseline  (new node)\n"
        "  done models.species_baseline in Ts  mlogloss=0.0175, accuracy=1\n"
        "[5/7] models.body_mass  (new node)\n"
        "  done models.body_mass in Ts  rmse=378.9, r2=0.8026\n"
        "[6/7] deploy.baseline_api  (new node)\n"
        f"  done deploy.baseline_api in Ts  model_fingerprint={fingerprint}, "
        "raw_rows=features computed per request\n"
        "[7/7] deploy.baseline_scores  (new node)\n"
        f"  done deploy.baseline_scores in Ts  rows=342, model_fingerprint={fingerprint}\n"
        "Build: 7 built, 0 up to date.\n")
    model = root / "build/models/species_baseline"
    assert sorted(p.name for p in model.iterdir()) == ["estimator.json", "metrics.json", "predictions.parquet",
                                                        "signature.json"]
    assert sorted(p.name for p in (root / "build/deploy/baseline_api").iterdir()) == [
        "estimator.json", "manifest.json", "metrics.json", "request.json", "request.penguins.parquet",
        "signature.json"]
    signature = json.loads((model / "signature.json").read_text(encoding="utf-8"))
    assert {k: signature[k] for k in ("format", "files", "estimator", "classes")} == {
        "format": "sklearn", "files": ["estimator.json"], "estimator": "LogisticRegression",
        "classes": ["Adelie", "Chinstrap", "Gentoo"]}
    metrics = json.loads((model / "metrics.json").read_text(encoding="utf-8"))
    assert sorted(metrics) == ["best_iteration", "metrics", "n_test", "n_train", "slices", "task"]
    assert sorted(metrics["metrics"]) == ["accuracy", "mlogloss"]
    assert sorted(metrics["slices"]["island"]) == ["Biscoe", "Dream", "Torgersen"]
    assert b"pickle" not in (model / "estimator.json").read_bytes()


def test_the_lock_records_the_kind_and_scikit_learns_version(
        built: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    from importlib import metadata

    root, _ = built
    entry = lock(root)["models.species_baseline"]
    assert (entry["kind"], entry["recipe"], entry["gates"]) == ("sklearn", 2, {"accuracy": ">= 0.9"})
    assert entry["libraries"] == {name: metadata.version(name) for name in ("numpy", "polars", "scikit-learn",
                                                                              "scipy")}
    assert entry["config"]["estimator"] == "LogisticRegression"
    assert "gates" not in entry["config"]  # judged on the metrics, not fingerprinted


def test_after_the_build_the_plan_is_empty_and_a_param_retrains_only_the_sklearn_model(
        python: Path, built: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    root = tmp_path / "example"
    shutil.copytree(built[0], root)
    assert mlmake(python, root, "plan").stdout.endswith("Plan: 0 to build, 7 up to date.\n")
    text = (root / "mlproject.yaml").read_text(encoding="utf-8")
    (root / "mlproject.yaml").write_text(text.replace("{C: 1.0, max_iter: 200}", "{C: 0.5, max_iter: 200}"),
                                         encoding="utf-8")
    assert mlmake(python, root, "plan").stdout == (
        " = datasets.penguins\n"
        " = features.penguin_features\n"
        " = models.species\n"
        " ~ models.species_baseline    params.C 1.0 → 0.5\n"
        " = models.body_mass\n"
        " ~ deploy.baseline_api        upstream models.species_baseline fingerprint changed\n"
        " ~ deploy.baseline_scores     upstream models.species_baseline fingerprint changed\n"
        "\n"
        "Plan: 3 to build, 4 up to date.\n")


def test_a_gate_on_the_plugins_metrics_is_judged_by_the_build(
        python: Path, built: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    root = tmp_path / "example"
    shutil.copytree(built[0], root)
    text = (root / "mlproject.yaml").read_text(encoding="utf-8")
    (root / "mlproject.yaml").write_text(text.replace('r2: ">= 0.7"', 'r2: ">= 0.95"'), encoding="utf-8")
    result = mlmake(python, root, "build")
    assert (result.returncode, result.stdout) == (1, "Build: 0 built, 6 up to date, 1 failed.\n")
    assert result.stderr == ("FAILED models.body_mass: gate r2 >= 0.95 failed: r2 = 0.8026 (judged on the recorded "
                             "metrics)\nerror: 1 node(s) failed: models.body_mass\n")


def test_schema_holds_the_plugins_item(python: Path, tmp_path: Path) -> None:
    result = mlmake(python, tmp_path, "schema")
    assert (result.returncode, result.stderr) == (0, "")
    schema = json.loads(result.stdout)
    kind = schema["properties"]["models"]["additionalProperties"]["properties"]["kind"]
    assert kind["enum"] == ["model", "sklearn"]
    item = schema["$defs"]["sklearn"]
    assert item["required"] == ["features", "target", "task", "estimator"]
    assert item["properties"]["kind"]["const"] == "sklearn"
    assert item["properties"]["estimator"]["enum"] == ["LogisticRegression", "LinearRegression", "Ridge"]
    assert item["properties"]["params"]["properties"]["C"] == {
        "type": "number", "exclusiveMinimum": 0, "description": "Inverse of the regularization strength (default 1.0)."}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def service(python: Path, built: tuple[Path, subprocess.CompletedProcess[str]]) -> Iterator[httpx.Client]:
    """`mlmake serve baseline_api` of the plugin's environment on a free loopback port."""
    root, build = built
    assert build.returncode == 0, build.stdout + build.stderr
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLMAKE_SERVE_TOKEN"}
    with open(root / "service.log", "wb") as log:
        proc = subprocess.Popen([python, "-m", "mlmake", "-C", str(root), "serve", "baseline_api", "--port", str(port)],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        _wait(client, proc, root / "service.log")
        yield client
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait(client: httpx.Client, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the service exited: {log.read_text()}")
        try:
            if client.get("/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"the service did not answer within {STARTUP_S}s: {log.read_text()}")


def feature_rows(root: Path) -> list[dict[str, Any]]:
    table = pl.read_parquet(root / "build/features/penguin_features/data.parquet").drop("species")
    return table.to_dicts()


def test_the_service_answers_with_the_baseline_as_the_batch_target_scored_it(
        built: tuple[Path, subprocess.CompletedProcess[str]], service: httpx.Client) -> None:
    root, _ = built
    scores = pl.read_parquet(root / "build/deploy/baseline_scores/scores.parquet").sort("row")
    rows = feature_rows(root)
    answer = service.post("/predict", json={"rows": rows}).json()
    assert answer["model"] == "species_baseline"
    assert answer["fingerprint"] == lock(root)["models.species_baseline"]["fingerprint"]
    assert answer["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert answer["predictions"] == scores["prediction"].to_list()
    assert answer["probabilities"] == [list(p) for p in zip(
        *(scores[f"probability_{c}"].to_list() for c in answer["classes"]), strict=True)]
    one = service.post("/predict", json=rows[0]).json()
    assert (one["prediction"], one["probabilities"]) == (
        scores["prediction"][0], {c: scores[f"probability_{c}"][0] for c in answer["classes"]})


def lock(root: Path) -> dict[str, Any]:
    """The node entries of mlproject.lock, as the file holds them."""
    nodes: dict[str, Any] = yaml.safe_load((root / "mlproject.lock").read_text(encoding="utf-8"))["nodes"]
    return nodes


def test_loading_the_kinds_imports_no_heavy_library(python: Path) -> None:
    """`plan` and `validate` load every kind: the plugin's entry point must stay cheap."""
    code = ("import sys; from mlmake.core.registry import registry; "
            "print([k.name for k in registry().kinds]); "
            "print([m for m in ('sklearn', 'scipy', 'numpy', 'polars', 'xgboost') if m in sys.modules])")
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr) == (0, "")
    kinds = ['dataset', 'features', 'model', 'cmd', 'http', 'batch', 'docker', 'store', 'card', 'monitor', 'sklearn']
    assert done.stdout == f"{kinds}\n[]\n"


@pytest.mark.skipif(SKLEARN_PLUGIN_INSTALLED, reason="mlmake-sklearn is installed in this environment")
def test_without_the_plugin_validate_says_its_kind_needs_installing(tmp_path: Path) -> None:
    """The test interpreter has no mlmake-sklearn: `kind: sklearn` is a located error, not a crash."""
    from tests.helpers import run_cli

    root = copy_example(EXAMPLE, tmp_path / "example")
    result = run_cli(root, "validate")
    assert (result.exit_code, result.stdout) == (1, "")
    hint = ("  hint: models holds only the model kind here; a kind from a plugin needs its distribution installed "
            "(`mlmake schema` shows the kinds)\n")
    assert result.stderr.startswith(
        "mlproject.yaml:56:5: models.species_baseline.kind: unknown key 'kind'\n"
        "      kind: sklearn\n"
        "      ^\n" + hint)
    assert result.stderr.count(hint) == 2
    assert result.stderr.endswith("6 errors found\n")


def test_a_second_clone_restores_the_plugins_models_instead_of_training(
        python: Path, built: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path, module_remote: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What the first build trained is on the machine's default remote: a clone without it restores."""
    monkeypatch.setenv("MLMAKE_REMOTE", str(module_remote))  # the remote the module's build pushed to
    root = tmp_path / "clone"
    shutil.copytree(built[0], root, ignore=shutil.ignore_patterns("build", ".mlmake", "cache", "service.log"))
    result = mlmake(python, root, "build")
    assert (result.returncode, result.stderr) == (0, "")
    assert steady(result.stdout) == "".join(
        f"[{n}/7] {node}  restored from the cache in Ts\n" for n, node in enumerate(
            ("datasets.penguins", "features.penguin_features", "models.species", "models.species_baseline",
             "models.body_mass", "deploy.baseline_api", "deploy.baseline_scores"), 1)
    ) + "Build: 0 built, 7 restored from cache, 0 up to date.\n"
    assert (root / "build/models/species_baseline/estimator.json").read_bytes() == (
        built[0] / "build/models/species_baseline/estimator.json").read_bytes()
