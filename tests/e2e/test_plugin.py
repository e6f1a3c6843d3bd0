"""The reference plugin (examples/plugins/mlmake-sklearn) installed for real: a virtual
environment on top of the test interpreter's packages, the plugin pip-installed into it (no
network, no build isolation), and that environment's `mlmake validate`, `plan`, `build`,
`schema` and `serve` run on a copy of the plugin's example. The test interpreter itself never
sees the plugin: its entry point exists only in the new environment."""

from __future__ import annotations

import os
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

from tests.helpers import copy_example

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
