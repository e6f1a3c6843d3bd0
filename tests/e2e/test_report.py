"""`mlmake report` through the CLI on built copies of the examples (binary churn, multiclass
penguins) and of the regression template: the charts each model gets (golden specs in
tests/golden/report/, their data summarised), the data equal to what the build recorded, every
spec compiling with Vega-Lite, `--base` overlaying the base build's curves, and the errors.

Golden files: `UPDATE_GOLDEN=1 pytest tests/e2e/test_report.py` rewrites them. The browser
tests are in test_report_browser.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlmake.state.lock import parse_lock
from tests.helpers import copy_example, run_cli

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "report"
GIT_ENV = {"GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.com", "GIT_COMMITTER_NAME": "ci",
           "GIT_COMMITTER_EMAIL": "ci@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
CHART = re.compile(r'<div class="chart" id="(chart-\d+)" data-model="([^"]+)" data-title="([^"]+)"></div>')
SPECS = re.compile(r'<script type="application/json" id="mlmake-specs">(.*?)</script>', re.S)
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git (--base reads a git revision)")


def mlmake(root: Path, *args: str) -> str:
    result = run_cli(root, *args)
    assert result.exit_code == 0, f"mlmake {' '.join(args)} failed ({result.exit_code}):\n{result.stderr}"
    return result.stdout


def git(root: Path, *args: str) -> None:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **GIT_ENV})
    assert done.returncode == 0, done.stderr


def charts(html: str) -> dict[str, dict[str, Any]]:
    """'MODEL: TITLE' -> the Vega-Lite spec the page embeds for that chart."""
    found = SPECS.search(html)
    assert found is not None
    specs = json.loads(found.group(1))
    placed = CHART.findall(html)
    assert sorted(i for i, _, _ in placed) == sorted(specs)  # every spec has its place, and only those
    return {f"{model}: {title}": specs[chart_id] for chart_id, model, title in placed}


def summarised(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with its data as the fields of its rows (the values are the build's; a layer's own
    constant data, such as a diagonal, stays as written)."""
    rows = spec["data"]["values"]
    return {**spec, "data": {"values": "rows of: " + ", ".join(sorted({k for row in rows for k in row}))}}


def check_golden(name: str, specs: dict[str, Any]) -> None:
    actual = json.dumps({k: summarised(v) for k, v in specs.items()}, indent=2, sort_keys=True) + "\n"
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"no golden file {path}; run with UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_text(encoding="utf-8"), f"{name} differs (UPDATE_GOLDEN=1 rewrites it)"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Built copies: churn (committed to git, then rebuilt with max_depth 2), penguins, the regression template."""
    tmp = tmp_path_factory.mktemp("report")
    churn = copy_example("churn", tmp / "churn")
    git(churn, "init", "-q")
    mlmake(churn, "build")
    git(churn, "add", "-A")
    git(churn, "commit", "-q", "-m", "built")
    mlmake(churn, "build", "models.churn_xgb", "-P", "models.churn_xgb.params.max_depth=2")
    penguins = copy_example("penguins", tmp / "penguins")
    mlmake(penguins, "build")
    regression = tmp / "houses"
    mlmake(tmp, "init", str(regression), "--template", "regression")
    mlmake(regression, "build", "--env", "dev")
    return {"churn": churn, "penguins": penguins, "houses": regression}


def report(root: Path, *args: str) -> tuple[str, str]:
    out = mlmake(root, "report", *args)
    return out, (root / "build" / "mlmake-report.html").read_text(encoding="utf-8")


def test_churn_report_has_the_binary_charts(built: dict[str, Path]) -> None:
    out, html = report(built["churn"], "-P", "models.churn_xgb.params.max_depth=2")
    specs = charts(html)
    assert list(specs) == [f"models.churn_xgb: {t}" for t in (
        "ROC curve", "Precision-recall curve", "Confusion matrix", "Calibration", "Feature importance",
        "Metrics by plan", "Metrics over runs")]
    assert out == f"wrote build/mlmake-report.html (1 model, 7 charts, {len(html.encode()) / 1e6:.1f} MB)\n"
    check_golden("churn.json", specs)


def test_penguins_report_has_the_multiclass_charts(built: dict[str, Path]) -> None:
    _, html = report(built["penguins"])
    specs = charts(html)
    assert list(specs) == [f"models.species: {t}" for t in (
        "Confusion matrix", "Calibration", "Feature importance", "Metrics by island", "Metrics over runs")]
    check_golden("penguins.json", specs)


def test_regression_report_has_predicted_vs_actual_and_residuals(built: dict[str, Path]) -> None:
    _, html = report(built["houses"], "--env", "dev")
    names = [n.split(": ", 1)[1] for n in charts(html)]
    assert names[:3] == ["Predicted vs actual", "Residuals", "Calibration"]
    assert "ROC curve" not in names and "Confusion matrix" not in names


def test_the_charts_draw_what_the_build_recorded(built: dict[str, Path]) -> None:
    root = built["penguins"]
    _, html = report(root)
    specs = charts(html)
    folder = root / "build" / "models" / "species"
    curves = json.loads((folder / "curves.json").read_text(encoding="utf-8"))
    assert specs["models.species: Confusion matrix"]["data"]["values"] == curves["confusion"]
    assert specs["models.species: Calibration"]["data"]["values"] == [
        {**row, "build": "this build"} for row in curves["calibration"]]
    importance = json.loads((folder / "importance.json").read_text(encoding="utf-8"))["importance"]
    assert specs["models.species: Feature importance"]["data"]["values"] == importance
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    history = specs["models.species: Metrics over runs"]["data"]["values"]
    assert {(r["metric"], r["value"]) for r in history} == set(metrics["metrics"].items())
    slices = specs["models.species: Metrics by island"]["data"]["values"]
    assert {(r["slice"], r["metric"]): r["value"] for r in slices} == {
        (island, m): v for island, scores in metrics["slices"]["island"].items() for m, v in scores.items()
        if m != "rows"}


def test_every_spec_compiles_with_vega_lite(built: dict[str, Path]) -> None:
    vl_convert = pytest.importorskip("vl_convert")
    for name, args in (("churn", ()), ("penguins", ()), ("houses", ("--env", "dev"))):
        _, html = report(built[name], *args)
        for title, spec in charts(html).items():
            vega = vl_convert.vegalite_to_vega(spec)
            assert vega["marks"], title


def test_the_report_shows_gates_slices_states_and_contracts(built: dict[str, Path]) -> None:
    _, html = report(built["penguins"])
    assert '<td><code>accuracy &gt;= 0.9</code></td>' in html
    assert "<h3>Metrics by island</h3>" in html and "<tr><th>gap</th>" in html
    assert '<g class="node built"><title>models.species (model): built</title>' in html
    assert "<h3><code>datasets.penguins</code> <span class=\"state built\">built</span></h3>" in html
    assert "<p>data/penguins.csv: 344 rows, the contract holds</p>" in html
    # nothing in the page points outside it
    assert not re.search(r'(src|href)=["\']?(https?:)?//', html)
    assert "Content-Security-Policy" in html and "connect-src 'none'" in html


def test_a_stale_model_says_its_charts_are_of_its_last_build(built: dict[str, Path]) -> None:
    _, html = report(built["churn"])  # without -P: the model built with max_depth 2 is stale
    assert '<p class="note">stale: these are the results of its last build</p>' in html


@needs_git
def test_base_overlays_the_committed_builds_curves(built: dict[str, Path]) -> None:
    root = built["churn"]
    _, html = report(root, "--base", "HEAD", "-P", "models.churn_xgb.params.max_depth=2")
    specs = charts(html)
    roc = specs["models.churn_xgb: ROC curve"]["data"]["values"]
    assert {r["build"] for r in roc} == {"this build", "base HEAD"}
    committed = subprocess.run(["git", "show", "HEAD:mlproject.lock"], cwd=root, capture_output=True, check=True)
    base_auc = parse_lock(committed.stdout, "base").nodes["models.churn_xgb"].metrics["auc"]
    assert isinstance(base_auc, float)
    assert f'<td class="num">{base_auc:.4f}</td><td class="verdict">pass</td>' in html
    assert "overlaid with <code>HEAD</code>" in html


@needs_git
def test_base_without_the_objects_says_there_is_nothing_to_overlay(built: dict[str, Path], tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    shutil.copytree(built["churn"], clone, ignore=shutil.ignore_patterns(".dvc"))
    os.environ["MLMAKE_REMOTE"] = str(tmp_path / "empty-remote")
    _, html = report(clone, "--base", "HEAD", "-P", "models.churn_xgb.params.max_depth=2")
    assert "no curves of HEAD to overlay: its build&#x27;s curves.json is not in the DVC cache" in html
    assert {r["build"] for r in charts(html)["models.churn_xgb: ROC curve"]["data"]["values"]} == {"this build"}


def test_report_errors_are_located_and_exit_1(built: dict[str, Path]) -> None:
    root = built["penguins"]
    result = run_cli(root, "report", "-o", "build/models/species/x.html")
    assert result.exit_code == 1
    assert result.stderr == ("error: -o build/models/species/x.html: is an output of models.species "
                             "(build/models/species), which its build replaces; choose another file\n")
    result = run_cli(root, "report", "-o", "mlproject.yaml")
    assert (result.exit_code, result.stderr) == (1, "error: -o mlproject.yaml: would overwrite mlproject.yaml; "
                                                    "choose another file\n")
    result = run_cli(root, "report", "specie")
    assert result.exit_code == 1 and result.stderr.startswith("error: unknown target 'specie' (did you mean")
    if shutil.which("git"):
        result = run_cli(root, "report", "--base", "nosuchrev")
        assert result.exit_code == 1 and "nosuchrev" in result.stderr


def test_report_of_one_target_and_another_file(built: dict[str, Path]) -> None:
    root = built["churn"]
    out = mlmake(root, "report", "customers", "-o", "out/customers.html")
    html = (root / "out" / "customers.html").read_text(encoding="utf-8")
    assert out.startswith("wrote out/customers.html (0 models, 0 charts, ")
    assert "<h3><code>datasets.customers</code>" in html and "datasets.events</code> <span" not in html


def test_an_unbuilt_project_reports_what_is_missing(tmp_path: Path) -> None:
    root = copy_example("penguins", tmp_path / "penguins")
    mlmake(root, "report")
    html = (root / "build" / "mlmake-report.html").read_text(encoding="utf-8")
    assert '<p class="note">not built in this workspace: run `mlmake build` (or `mlmake pull`) first</p>' in html
    assert charts(html) == {}


# --- in a real browser -------------------------------------------------------------------------
# Debian's chromium, headless (.ci/run installs it; these tests skip where it is missing). One run
# dumps the DOM after vega-embed drew every chart (virtual time lets the scripts finish) and takes
# a screenshot; Chromium's log has each console message of the page, its net log each request.

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
CONSOLE = re.compile(r":INFO:CONSOLE[^\]]*\] (.*)$", re.M)
# a drawn mark: "bar", "line mark", "rect mark"...; axes, titles and legends are graphics symbols too
MARK = re.compile(r'role="graphics-symbol" aria-roledescription="([a-z]+)(?: mark)?"')
FURNITURE = {"axis", "title", "legend"}


def browse(page: Path, out: Path) -> dict[str, Any]:
    """Open page in headless chromium: its DOM, console messages, the requests the page made, and a screenshot."""
    assert CHROMIUM is not None
    out.mkdir(parents=True, exist_ok=True)
    profile, net, shot = out / "profile", out / "net.json", out / "screenshot.png"
    profile.mkdir()
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", f"--log-net-log={net}",
         "--virtual-time-budget=15000", "--window-size=1280,2000", f"--screenshot={shot}", "--dump-dom",
         page.resolve().as_uri()], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return {"dom": done.stdout, "console": CONSOLE.findall(done.stderr), "requests": page_requests(net),
            "screenshot": shot}


def page_requests(net_log: Path) -> list[str]:
    """The URLs the page asked for. Chromium's own background requests (its update and time services,
    which fail here) carry no initiator ("not an origin"); a page's carry its origin ("null" for a file)."""
    data = json.loads(net_log.read_text(encoding="utf-8"))
    start = data["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [e["params"]["url"] for e in data["events"] if e["type"] == start and "url" in e.get("params", {})
            and e["params"].get("initiator") != "not an origin"]


def drawn(dom: str) -> dict[str, dict[str, Any]]:
    """chart id -> whether vega-embed finished it, and the marks it drew by type."""
    pieces = re.split(r'(?=<div class="chart[^"]*" id="chart-\d+")', dom)[1:]
    out = {}
    for piece in pieces:
        head = re.match(r'<div class="chart[^"]*" id="(chart-\d+)"[^>]*?data-rendered="([a-z]+)"', piece)
        assert head is not None, piece[:300]
        marks: dict[str, int] = {}
        for kind in MARK.findall(piece.split("</svg>")[0]):
            if kind not in FURNITURE:
                marks[kind] = marks.get(kind, 0) + 1
        out[head.group(1)] = {"rendered": head.group(2), "marks": marks}
    return out


@needs_chromium
@pytest.mark.parametrize("name", ["churn", "penguins", "houses"])
def test_the_report_renders_offline_in_chromium(name: str, built: dict[str, Path], tmp_path: Path) -> None:
    args = ("--env", "dev") if name == "houses" else ()
    _, html = report(built[name], *args)
    specs = charts(html)
    seen = browse(built[name] / "build" / "mlmake-report.html", tmp_path / "browser")
    assert seen["console"] == []
    assert seen["requests"] == []
    assert 'data-charts="done"' in seen["dom"]
    charts_drawn = drawn(seen["dom"])
    assert len(charts_drawn) == len(specs) > 0
    for chart_id, chart in charts_drawn.items():
        assert chart["rendered"] == "true" and sum(chart["marks"].values()) > 0, (chart_id, chart)
    assert seen["screenshot"].stat().st_size > 10_000
    assert seen["screenshot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_chromium
def test_the_confusion_matrix_draws_a_cell_and_a_count_per_pair(built: dict[str, Path], tmp_path: Path) -> None:
    _, html = report(built["penguins"])
    ids = {title: chart_id for chart_id, _, title in CHART.findall(html)}
    seen = browse(built["penguins"] / "build" / "mlmake-report.html", tmp_path / "browser")
    assert drawn(seen["dom"])[ids["Confusion matrix"]]["marks"] == {"rect": 9, "text": 9}


@needs_chromium
def test_the_browser_check_sees_failures(built: dict[str, Path], tmp_path: Path) -> None:
    """The checks above can fail: a chart vega cannot draw, a console error and a request are all seen."""
    _, html = report(built["penguins"])
    broken = tmp_path / "broken.html"
    without_csp = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
    broken.write_text(without_csp.replace('"mark":"bar"', '"mark":"nosuchmark"', 1).replace(
        "<body>", '<body><img src="http://127.0.0.1:9/pixel.png">', 1), encoding="utf-8")
    seen = browse(broken, tmp_path / "browser")
    assert seen["requests"] == ["http://127.0.0.1:9/pixel.png"]
    assert any(line.startswith('"mlmake report: chart chart-') and " failed: " in line for line in seen["console"]), \
        seen["console"]
    assert "error" in {c["rendered"] for c in drawn(seen["dom"]).values()}


@needs_chromium
def test_the_pages_policy_blocks_any_request(built: dict[str, Path], tmp_path: Path) -> None:
    """Were anything to slip into a report (an image, a fetch), its Content-Security-Policy refuses it."""
    _, html = report(built["penguins"])
    page = tmp_path / "slipped.html"
    page.write_text(html.replace("<body>", '<body><img src="http://127.0.0.1:9/pixel.png">'
                                 '<script>fetch("http://127.0.0.1:9/data").catch(() => {})</script>', 1),
                    encoding="utf-8")
    seen = browse(page, tmp_path / "browser")
    assert seen["requests"] == []
    assert any("violates the following Content Security Policy directive: \"img-src data:\"" in line
               for line in seen["console"]), seen["console"]
    assert any("violates the following Content Security Policy directive: \"connect-src 'none'\"" in line
               for line in seen["console"]), seen["console"]


def test_a_model_card_written_downstream_is_shown_with_its_model(built: dict[str, Path], tmp_path: Path) -> None:
    """Whatever node writes card.md (or drift.md) from a model's outputs, the report shows its text there."""
    root = tmp_path / "penguins"
    shutil.copytree(built["penguins"], root, symlinks=True)
    (root / "card.py").write_text(
        "import json, os, sys\n"
        "metrics = json.load(open('build/models/species/metrics.json'))['metrics']\n"
        "os.makedirs('build/cards/species', exist_ok=True)\n"
        "open('build/cards/species/card.md', 'w').write('# species <card>\\naccuracy: %s\\n' % metrics['accuracy'])\n",
        encoding="utf-8")
    with (root / "mlproject.yaml").open("a", encoding="utf-8") as f:
        f.write("steps:\n  card:\n    cmd: [python, card.py]\n    deps: [card.py, models.species]\n"
                "    outs: [build/cards/species]\n")
    mlmake(root, "build", "steps.card")
    _, html = report(root)
    accuracy = json.loads((root / "build/models/species/metrics.json").read_text(encoding="utf-8"))["metrics"][
        "accuracy"]
    assert ('<details open><summary><b>Model card</b> <code>build/cards/species/card.md</code></summary>'
            f'<pre class="document"># species &lt;card&gt;\naccuracy: {accuracy}\n</pre></details></section>') in html


def test_a_model_without_curves_says_so_and_draws_the_rest(built: dict[str, Path], tmp_path: Path) -> None:
    """A model built by an earlier mlmake, or by a kind that records no curves.json (a plugin)."""
    root = tmp_path / "penguins"
    shutil.copytree(built["penguins"], root, symlinks=True)
    (root / "build" / "models" / "species" / "curves.json").unlink()
    _, html = report(root)
    assert ('<p class="note">no curves recorded (curves.json): a model built by an earlier mlmake, or a kind that '
            "does not record them; rebuild it to draw them</p>") in html
    assert [n.split(": ", 1)[1] for n in charts(html)] == ["Feature importance", "Metrics by island",
                                                          "Metrics over runs"]


def test_without_the_report_extra_the_command_says_what_to_install(built: dict[str, Path],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vl_convert", None)  # as if vl-convert-python were not installed
    result = run_cli(built["penguins"], "report")
    assert (result.exit_code, result.stderr) == (1, "error: mlmake report needs vl-convert-python (it holds the "
                                                    "Vega-Lite JavaScript the report embeds): pip install "
                                                    "'mlmake[report]'\n")
