"""Experiments and the pull-request workflow, end to end on a real git repository:
`mlmake runs` / `runs show`, `metrics diff` and `params diff` against a git revision or a
recorded run, `plan --format markdown --base REV`, and baseline gates (`build --baseline REV`).

One small project of our own (300 rows, an xgboost model with 10 boosting rounds) is built
once per module on `main`, committed with its lock, then changed on a `feature` branch
(`params.max_depth` 2 → 4) and built again. Tests that build more work on a copy of that
repository, so the shared one stays as the fixture left it.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from mlmake.state.lock import Entry, Lock, parse_lock, read_lock
from tests.helpers import run_cli

GIT_ENV = {
    "GIT_AUTHOR_NAME": "mlmake tests", "GIT_AUTHOR_EMAIL": "tests@example.com",
    "GIT_COMMITTER_NAME": "mlmake tests", "GIT_COMMITTER_EMAIL": "tests@example.com",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}

PROJECT = """\
version: 1
project: tiny
params:
  rounds: 10
environments:
  dev: {params: {rounds: 8}}
datasets:
  customers:
    path: data/customers.csv
models:
  churn:
    features: customers
    target: churned
    task: binary
    drop: [customer_id]
    split: {test_size: 0.3, seed: 1, stratify: true}
    params: {max_depth: 2, eta: 0.3, num_boost_round: "${params.rounds}", seed: 1}
    metrics: [auc, logloss]
    gates: {auc: ">= 0.5"}
"""

NEW_MODEL = """\
  churn_new:
    features: customers
    target: churned
    task: binary
    drop: [customer_id]
    split: {test_size: 0.3, seed: 2, stratify: true}
    params: {max_depth: 2, eta: 0.3, num_boost_round: 5, seed: 2}
    metrics: [auc]
    gates: {auc: ">= baseline - 0.01"}
"""

RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")


def customers_csv(rows: int = 300) -> str:
    """Synthetic churn data with a real signal (short tenure churns more), deterministic."""
    rng = random.Random(3)
    lines = ["customer_id,age,tenure,plan,churned"]
    for i in range(1, rows + 1):
        age, tenure, plan = rng.randint(18, 80), rng.randint(1, 60), rng.choice(["basic", "pro"])
        p = (0.7 if tenure < 12 else 0.2) - (0.1 if plan == "pro" else 0.0)
        lines.append(f"{i},{age},{tenure},{plan},{'true' if rng.random() < p else 'false'}")
    return "\n".join(lines) + "\n"


def git(root: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=60,
                         env={**os.environ, **GIT_ENV})
    assert out.returncode == 0, f"git {' '.join(args)}: {out.stderr}"
    return str(out.stdout).strip()


def cli(root: Path, *args: str, code: int = 0) -> Result:
    """`mlmake -C root ARGS`, expecting exit `code` and never an internal error or a traceback."""
    result = run_cli(root, *args)
    assert result.exit_code == code, f"mlmake {' '.join(args)} → {result.exit_code}\n{result.stdout}\n{result.stderr}"
    for text in (result.stdout, result.stderr):
        assert "Traceback" not in text and "internal error" not in text, text
    return result


def edit(root: Path, old: str, new: str) -> None:
    path = root / "mlproject.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not once in mlproject.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")


def records(root: Path, *args: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = json.loads(cli(root, "runs", "--json", *args).stdout)
    return out


def new_run_id(root: Path, before: set[str]) -> str:
    ids = {r["run_id"] for r in records(root, "--limit", "1000")} - before
    assert len(ids) == 1, ids
    return str(ids.pop())


def entry(lock: Lock, node: str = "models.churn") -> Entry:
    found = lock.get(node)
    assert found is not None, f"{node} is not in the lock"
    return found


def metric(lock: Lock, name: str, node: str = "models.churn") -> float:
    return float(entry(lock, node).metrics[name])


def check_markdown(text: str) -> None:
    """Tables keep their column count, code fences and <details> are balanced, mermaid is fenced."""
    lines = text.splitlines()
    fences = [i for i, line in enumerate(lines) if line.startswith("```")]
    assert len(fences) % 2 == 0, "an unclosed code fence"
    for start, end in zip(fences[::2], fences[1::2], strict=True):
        assert lines[end] == "```", f"line {end + 1}: a fence closes with {lines[end]!r}"
        if lines[start] == "```mermaid":
            assert lines[start + 1].startswith(("flowchart ", "xychart-beta"))  # the graph; metric history
    assert text.count("<details>") == text.count("</details>")
    table: list[str] = []
    for line in [*lines, ""]:
        if line.startswith("|"):
            table.append(line)
            continue
        if table:
            cells = [row.replace("\\|", "").count("|") for row in table]
            assert len(table) >= 3 and set(table[1].replace("|", "")) <= {"-", ":"}, table
            assert len(set(cells)) == 1, f"a table whose rows have different column counts: {table}"
            table = []


# --- the shared repository -------------------------------------------------------------------


@dataclass(frozen=True)
class Repo:
    root: Path
    main_commit: str
    main_run: str
    feature_run: str
    main_lock: Lock
    plan_before: str  # `plan --format markdown --base main` on the branch before its build


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    root = tmp_path_factory.mktemp("experiments") / "tiny"
    root.mkdir()
    (root / "data").mkdir()
    (root / "data" / "customers.csv").write_text(customers_csv(), encoding="utf-8")
    (root / "mlproject.yaml").write_text(PROJECT, encoding="utf-8")
    (root / ".gitignore").write_text("/build/\n/.mlmake/\n", encoding="utf-8")
    git(root, "-c", "init.defaultBranch=main", "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "the project, nothing built yet")

    cli(root, "build")
    main_run = new_run_id(root, set())
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "built: mlproject.lock")
    main_commit = git(root, "rev-parse", "HEAD")

    git(root, "checkout", "-q", "-b", "feature")
    edit(root, "max_depth: 2", "max_depth: 4")
    plan_before = cli(root, "plan", "--format", "markdown", "--base", "main").stdout
    cli(root, "build")
    feature_run = new_run_id(root, {main_run})
    main_lock = parse_lock(git(root, "show", "main:mlproject.lock").encode() + b"\n", "main")
    return Repo(root, main_commit, main_run, feature_run, main_lock, plan_before)


@pytest.fixture
def copy(repo: Repo, tmp_path: Path) -> Path:
    """A copy of the shared repository (git history, lock, builds, run records) to change."""
    dest = tmp_path / "tiny"
    shutil.copytree(repo.root, dest, symlinks=True)
    return dest


def test_the_fixture_built_what_it_says(repo: Repo) -> None:
    lock = read_lock(repo.root)
    assert entry(repo.main_lock).components.config["params"]["max_depth"] == 2
    assert entry(lock).components.config["params"]["max_depth"] == 4
    assert git(repo.root, "branch", "--show-current") == "feature"
    assert RUN_ID.match(repo.main_run) and RUN_ID.match(repo.feature_run)
    assert 0.5 < metric(repo.main_lock, "auc") <= 1 and 0.5 < metric(lock, "auc") <= 1
    assert metric(repo.main_lock, "auc") != metric(lock, "auc"), "the param change should move the metric"


# --- metrics diff / params diff against a git revision -----------------------------------------


def test_metrics_diff_against_a_branch_as_text(repo: Repo) -> None:
    lock = read_lock(repo.root)
    out = cli(repo.root, "metrics", "diff", "main").stdout
    lines = out.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["node", "key", "main", "workspace", "change", "%"]
    assert len(lines) == 3  # auc and logloss; the dataset's rows/columns did not change
    for line, name in zip(lines[1:], ("auc", "logloss"), strict=True):
        old, new = metric(repo.main_lock, name), metric(lock, name)
        assert re.split(r"\s{2,}", line) == [
            "models.churn", name, f"{old:.6g}", f"{new:.6g}", f"{new - old:+.6g}", f"{(new - old) / old:+.2%}"]


def test_metrics_diff_against_a_branch_as_json(repo: Repo) -> None:
    lock = read_lock(repo.root)
    body = json.loads(cli(repo.root, "metrics", "diff", "main", "--format", "json").stdout)
    assert {k: body[k] for k in ("format_version", "old", "new")} == {"format_version": 1, "old": "main",
                                                                      "new": "workspace"}
    assert [(c["node"], c["key"]) for c in body["changes"]] == [("models.churn", "auc"), ("models.churn", "logloss")]
    auc = body["changes"][0]
    old, new = metric(repo.main_lock, "auc"), metric(lock, "auc")
    assert auc["old"] == old and auc["new"] == new
    assert auc["change"] == pytest.approx(new - old) and auc["relative"] == pytest.approx((new - old) / old)


def test_a_diff_against_a_revision_without_a_lock_says_so(copy: Path) -> None:
    git(copy, "rm", "--cached", "-q", "mlproject.lock")
    git(copy, "commit", "-q", "-m", "the lock is no longer tracked")
    warning = ("warning: HEAD has no mlproject.lock: nothing built was committed there, so its side shows '-' "
               "(commit mlproject.lock after `mlmake build` to compare with it)\n")
    for what in ("metrics", "params"):
        result = cli(copy, what, "diff", "HEAD")
        assert result.stderr == warning
        assert all(re.split(r"\s{2,}", line)[2] == "-" for line in result.stdout.splitlines()[1:])
        assert cli(copy, what, "diff", "HEAD", "--format", "json").stderr == warning


def test_a_diff_in_a_workspace_without_a_lock_says_so(copy: Path) -> None:
    (copy / "mlproject.lock").unlink()
    result = cli(copy, "metrics", "diff", "main")
    assert result.stderr == ("warning: the workspace has no mlproject.lock: nothing is built here yet, so its side "
                             "shows '-' (run `mlmake build`)\n")
    assert [re.split(r"\s{2,}", line)[3] for line in result.stdout.splitlines()[1:]] == ["-"] * 4


def test_metrics_diff_as_markdown_and_all(repo: Repo) -> None:
    out = cli(repo.root, "metrics", "diff", "main", "--format", "markdown").stdout
    assert out.splitlines()[:2] == ["| node | metric | `main` | `workspace` | change |", "|---|---|---|---|---|"]
    assert len(out.splitlines()) == 4
    check_markdown(out)
    every = cli(repo.root, "metrics", "diff", "main", "--all").stdout.splitlines()
    assert [re.split(r"\s{2,}", line)[:2] for line in every[1:]] == [
        ["datasets.customers", "columns"], ["datasets.customers", "rows"],
        ["models.churn", "auc"], ["models.churn", "logloss"]]
    assert re.split(r"\s{2,}", every[2]) == ["datasets.customers", "rows", "300", "300", "+0", "+0.00%"]


def test_params_diff_against_a_branch(repo: Repo) -> None:
    assert cli(repo.root, "params", "diff", "main").stdout == (
        "node          key               main  workspace  change  %\n"
        "models.churn  params.max_depth  2     4          +2      +100.00%\n")
    body = json.loads(cli(repo.root, "params", "diff", "main", "--format", "json").stdout)
    assert body["changes"] == [{"node": "models.churn", "key": "params.max_depth", "old": 2, "new": 4,
                                "change": 2.0, "relative": 1.0}]
    assert cli(repo.root, "params", "diff", "main", "--format", "markdown").stdout == (
        "| node | param | `main` | `workspace` | change |\n"
        "|---|---|---|---|---|\n"
        "| `models.churn` | `params.max_depth` | 2 | 4 | +2 (+100.00%) |\n")
    every = cli(repo.root, "params", "diff", "main", "--all").stdout
    assert re.search(r"^models\.churn\s+params\.eta\s+0\.3\s+0\.3\s+\+0\s+\+0\.00%$", every, re.M)
    assert re.search(r"^models\.churn\s+gates\.auc\s+>= 0\.5\s+>= 0\.5$", every, re.M)
    assert re.search(r"^datasets\.customers\s+path\s+data/customers\.csv\s+data/customers\.csv$", every, re.M)


def test_diff_against_head_and_against_a_revision_without_a_lock(repo: Repo) -> None:
    # HEAD is main's commit: the branch has not committed its build
    assert cli(repo.root, "params", "diff").stdout == cli(repo.root, "params", "diff", "main").stdout.replace(
        "main", "HEAD")
    # the first commit had no lock: every metric is new
    out = cli(repo.root, "metrics", "diff", "HEAD~1").stdout.splitlines()
    assert re.split(r"\s{2,}", out[0]) == ["node", "key", "HEAD~1", "workspace", "change", "%"]
    assert [re.split(r"\s{2,}", line)[:4] for line in out[1:3]] == [
        ["datasets.customers", "columns", "-", "5"], ["datasets.customers", "rows", "-", "300"]]
    assert cli(repo.root, "params", "diff", repo.main_commit[:10], "--format", "json").stdout.count('"key"') == 1


def test_no_changes_says_so(copy: Path) -> None:
    git(copy, "commit", "-q", "-am", "the branch's build")
    assert cli(copy, "metrics", "diff").stdout == "No metrics changed between HEAD and workspace.\n"
    assert cli(copy, "params", "diff", "HEAD", "--format", "markdown").stdout == \
        "No params changed between `HEAD` and `workspace`.\n"
    assert json.loads(cli(copy, "metrics", "diff", "feature", "--format", "json").stdout)["changes"] == []


# --- the pull-request comment -------------------------------------------------------------------


def test_pr_comment_before_the_branch_is_built(repo: Repo) -> None:
    text = repo.plan_before
    check_markdown(text)
    lines = text.splitlines()
    assert lines[:4] == ["<!-- mlmake-plan -->", "### mlmake plan: `tiny`", "", "**Plan: 1 to build, 1 up to date.**"]
    assert re.fullmatch(r"Estimated build time: \d+\.\d s \(from the run history\)\.", lines[5])
    assert "| `~` | `models.churn` | model | params.max_depth 2 → 4 |" in lines
    assert "Not built yet (metrics known after the build): `models.churn`" in lines
    auc = f"{metric(repo.main_lock, 'auc'):.6g}"
    assert f"| `models.churn` | `auc` | {auc} | - |  |" in lines
    assert "| `models.churn` | `params.max_depth` | 2 | 4 | +2 (+100.00%) |" in lines
    history = lines.index("#### Metric history")
    assert lines[lines.index("#### Gates") + 2:history] == [
        "| node | gate | value | baseline | result |", "|---|---|---|---|---|",
        f"| `models.churn` | `auc >= 0.5` | - | {auc} | after the build |", ""]
    # the changed model's metrics over its built runs: so far the one built on main
    assert lines[history + 2] == "<details><summary><code>models.churn</code>: 1 built run</summary>"
    assert f"  line [{metric(repo.main_lock, 'auc')!r}]" in lines


def test_pr_comment_after_the_branch_is_built(repo: Repo) -> None:
    text = cli(repo.root, "plan", "--format", "markdown", "--base", "main").stdout
    check_markdown(text)
    lines = text.splitlines()
    assert "Estimated build time: nothing to build." in lines
    assert "Not built yet" not in text
    old, new = metric(repo.main_lock, "auc"), metric(read_lock(repo.root), "auc")
    assert (f"| `models.churn` | `auc` | {old:.6g} | {new:.6g} | {new - old:+.6g} ({(new - old) / old:+.2%}) |"
            in lines)
    assert "| `models.churn` | `params.max_depth` | 2 | 4 | +2 (+100.00%) |" in lines
    assert f"| `models.churn` | `auc >= 0.5` | {new:.6g} | {old:.6g} | pass |" in lines
    assert lines.index("#### Metrics against `main`") < lines.index("#### Params against `main`") \
        < lines.index("#### Gates")


def test_pr_comment_estimates_from_the_run_history(copy: Path) -> None:
    edit(copy, "max_depth: 4", "max_depth: 3")
    text = cli(copy, "plan", "--format", "markdown", "--base", "main").stdout
    built = [r["duration"] for r in records(copy, "--node", "models.churn")]  # newest first
    assert f"Estimated build time: {built[0]:.1f} s (from the run history)." in text.splitlines()
    # a renamed dataset with the same content is restored from the cache: not part of the estimate
    edit(copy, "customers:\n    path", "customers2:\n    path")
    edit(copy, "features: customers\n", "features: customers2\n")
    text = cli(copy, "plan", "--format", "markdown", "--base", "main").stdout
    check_markdown(text)
    lines = text.splitlines()
    assert lines[3] == "**Plan: 1 to build, 1 to restore from cache, 0 up to date, 1 to remove.**"
    assert lines[5] == f"Estimated build time: {built[0]:.1f} s (from the run history)."
    assert "| `-` | `datasets.customers` | dataset | no longer in mlproject.yaml |" in lines
    assert "| `models.churn` | `features` | customers | customers2 |  |" in lines


# --- gates against a baseline ------------------------------------------------------------------


def test_a_violated_baseline_gate_fails_the_build_with_both_values(repo: Repo, copy: Path) -> None:
    edit(copy, 'gates: {auc: ">= 0.5"}', 'gates: {auc: ">= baseline + 0.5"}')
    before = read_lock(copy)
    result = cli(copy, "build", "--baseline", "main", code=1)
    base, auc = metric(repo.main_lock, "auc"), metric(before, "auc")  # same training: only the gate changed
    message = (f"gate auc >= baseline + 0.5 failed: auc = {auc:.4f}, baseline {base:.4f} "
               f"(threshold {base + 0.5:.4f})")
    assert message in result.stderr
    assert "FAILED models.churn" in result.stderr and "Build: 0 built, 1 up to date, 1 failed." in result.stdout
    assert read_lock(copy).get("models.churn") == before.get("models.churn"), "a failed gate is not recorded"
    assert cli(copy, "runs", "--node", "models.churn", "--limit", "1", "--json").stdout.count('"failed"') == 1
    # without --baseline the baseline is HEAD's lock: main's commit here
    assert message in cli(copy, "build", code=1).stderr


def test_a_run_whose_gate_failed_keeps_the_metrics_it_was_judged_on(copy: Path) -> None:
    edit(copy, "max_depth: 4", "max_depth: 3")  # trains: no cache entry has this fingerprint
    edit(copy, 'gates: {auc: ">= 0.5"}', 'gates: {auc: ">= 0.99"}')
    result = cli(copy, "build", code=1)
    last = records(copy, "--node", "models.churn", "--limit", "1")[0]
    auc, logloss = last["metrics"]["auc"], last["metrics"]["logloss"]
    assert (last["status"], sorted(last["metrics"])) == ("failed", ["auc", "logloss"])
    assert f"gate auc >= 0.99 failed: auc = {auc:.4f}" in result.stderr
    line = cli(copy, "runs", "--node", "models.churn", "--limit", "1").stdout
    shown = re.escape(f"auc={auc:.4g}, logloss={logloss:.4g}")
    assert re.fullmatch(rf"[\d-]+ [\d:]+  [\w-]+  failed   models\.churn +\d+\.\d\ds  {shown}\n", line), line


def test_a_relative_gate_passes_against_the_baseline(repo: Repo, copy: Path) -> None:
    edit(copy, 'gates: {auc: ">= 0.5"}', 'gates: {auc: ">= baseline - 0.5", logloss: "<= baseline + 1"}')
    result = cli(copy, "build", "--baseline", "main")
    assert result.stderr == ""  # both checked against main's metrics, and passed
    # gates judge the recorded metrics without retraining; the lock records the gates that passed
    assert read_lock(copy).nodes["models.churn"].gates == {"auc": ">= baseline - 0.5", "logloss": "<= baseline + 1"}
    summary = json.loads((copy / "build/models/churn/metrics.json").read_text(encoding="utf-8"))
    assert "gates" not in summary


def test_a_relative_gate_without_a_baseline_value_passes_and_says_not_checked(copy: Path) -> None:
    (copy / "mlproject.yaml").write_text((copy / "mlproject.yaml").read_text(encoding="utf-8") + NEW_MODEL,
                                         encoding="utf-8")
    pending = cli(copy, "plan", "--format", "markdown", "--base", "main").stdout
    assert "| `models.churn_new` | `auc >= baseline - 0.01` | - | - | after the build |" in pending
    assert "| `+` | `models.churn_new` | model | new node |" in pending
    assert re.search(r"^Estimated build time: unknown \(1 node\(s\) never built here\)\.$", pending, re.M)
    result = cli(copy, "build", "--baseline", "main")
    assert "Build: 1 built, 2 up to date." in result.stdout
    assert result.stderr == ("warning: models.churn_new: gate auc >= baseline - 0.01: no baseline value; "
                             "not checked\n")
    summary = json.loads((copy / "build/models/churn_new/metrics.json").read_text(encoding="utf-8"))
    after = cli(copy, "plan", "--format", "markdown", "--base", "main").stdout
    check_markdown(after)
    auc = f"{summary['metrics']['auc']:.6g}"
    assert f"| `models.churn_new` | `auc >= baseline - 0.01` | {auc} | - | not checked (no baseline) |" in after
    assert f"| `models.churn_new` | `auc` | - | {auc} |  |" in after


def test_baseline_errors(copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = cli(copy, "build", "--baseline", "nosuchrev", code=1)
    assert result.stderr == "error: unknown git revision 'nosuchrev'\n"
    # outside git: --baseline is an error, a relative gate without it is not checked
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    plain = tmp_path / "plain"
    plain.mkdir()
    shutil.copytree(copy / "data", plain / "data")
    (plain / "mlproject.yaml").write_text(PROJECT.replace('">= 0.5"', '">= baseline"'), encoding="utf-8")
    result = cli(plain, "build", "--baseline", "main", code=1)
    assert result.stderr == f"error: cannot read revision 'main': {plain.resolve()} is not in a git repository\n"
    result = cli(plain, "build")
    assert result.stderr == "warning: models.churn: gate auc >= baseline: no baseline value; not checked\n"


# --- runs ---------------------------------------------------------------------------------------


def test_runs_lists_the_records(repo: Repo) -> None:
    every = records(repo.root)
    assert [(r["run_id"], r["node"], r["status"]) for r in every] == [
        (repo.feature_run, "models.churn", "built"),
        (repo.main_run, "models.churn", "built"), (repo.main_run, "datasets.customers", "built")]
    lines = cli(repo.root, "runs").stdout.splitlines()
    assert len(lines) == 3
    assert re.match(rf"^\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d  {repo.feature_run}  built    models\.churn +\d+\.\d\ds  "
                    r"auc=0\.\d+, logloss=0\.\d+$", lines[0])
    assert [r["node"] for r in records(repo.root, "--node", "datasets.customers")] == ["datasets.customers"]
    assert len(records(repo.root, "--limit", "1")) == 1
    assert cli(repo.root, "runs", "--node", "models.nothing").stdout == "no runs recorded yet (run `mlmake build`)\n"


def test_runs_sorted_by_a_metric(repo: Repo) -> None:
    aucs = sorted([metric(repo.main_lock, "auc"), metric(read_lock(repo.root), "auc")])
    best = records(repo.root, "--sort", "auc")
    assert [r["metrics"]["auc"] for r in best] == aucs[::-1]  # the dataset has no auc: left out
    assert [r["metrics"]["auc"] for r in records(repo.root, "--sort", "auc", "--ascending")] == aucs
    assert [r["metrics"]["auc"] for r in records(repo.root, "--sort", "auc", "--limit", "1")] == aucs[-1:]
    text = cli(repo.root, "runs", "--node", "models.churn", "--sort", "logloss", "--ascending").stdout.splitlines()
    losses = [float(re.search(r"logloss=([\d.]+)", line).group(1)) for line in text]  # type: ignore[union-attr]
    assert losses == sorted(losses) and len(losses) == 2
    assert cli(repo.root, "runs", "--sort", "rmse").stdout == "no run has the metric rmse\n"


def test_runs_show(repo: Repo) -> None:
    prefix = repo.main_run[:-3]
    body = json.loads(cli(repo.root, "runs", "show", prefix, "--json").stdout)
    assert [(r["run_id"], r["node"]) for r in body] == [(repo.main_run, "datasets.customers"),
                                                        (repo.main_run, "models.churn")]
    model = body[1]
    assert model["params"] == {"eta": 0.3, "max_depth": 2, "num_boost_round": 10, "seed": 1}
    assert model["metrics"] == entry(repo.main_lock).metrics
    assert model["git_commit"] == git(repo.root, "rev-parse", "HEAD~1")  # built before its lock was committed
    assert model["inputs"] == {"datasets.customers": entry(repo.main_lock).components.upstream[
        "datasets.customers"]}
    assert body[0]["inputs"] == {"data/customers.csv": entry(repo.main_lock, "datasets.customers").components
        .inputs["data/customers.csv"]}
    text = cli(repo.root, "runs", "show", repo.feature_run).stdout.splitlines()
    assert text[0] == f"run {repo.feature_run}  commit {repo.main_commit}  env -  overrides -"
    assert "    param  max_depth = 4" in text
    assert len([line for line in text if repo.feature_run in line]) == 2


@pytest.mark.parametrize("ref", ["nope", "2", ""])
def test_runs_show_unknown_or_ambiguous(repo: Repo, ref: str) -> None:
    # "2" and "" are prefixes of both run ids
    result = cli(repo.root, "runs", "show", ref, code=1)
    assert result.stdout == ""
    assert result.stderr == f"error: no run '{ref}' (or the prefix is ambiguous); see `mlmake runs`\n"


def test_overrides_and_env_are_recorded_in_the_run(copy: Path) -> None:
    cli(copy, "build", "-P", "models.churn.params.max_depth=3", "--env", "dev")
    run = records(copy, "--limit", "1")[0]
    body = json.loads(cli(copy, "runs", "show", run["run_id"], "--json").stdout)
    assert [r["node"] for r in body] == ["models.churn"]
    assert body[0]["env"] == "dev" and body[0]["overrides"] == ["models.churn.params.max_depth=3"]
    assert body[0]["params"] == {"eta": 0.3, "max_depth": 3, "num_boost_round": 8, "seed": 1}
    assert body[0]["config"]["params"] == body[0]["params"]
    header = cli(copy, "runs", "show", run["run_id"]).stdout.splitlines()[0]
    assert header.endswith("  env dev  overrides models.churn.params.max_depth=3")


def test_diff_against_a_recorded_run(repo: Repo) -> None:
    lock = read_lock(repo.root)
    out = cli(repo.root, "metrics", "diff", repo.main_run).stdout.splitlines()
    label = f"run {repo.main_run}"
    assert re.split(r"\s{2,}", out[0]) == ["node", "key", label, "workspace", "change", "%"]
    old, new = metric(repo.main_lock, "auc"), metric(lock, "auc")
    assert re.split(r"\s{2,}", out[1]) == ["models.churn", "auc", f"{old:.6g}", f"{new:.6g}", f"{new - old:+.6g}",
                                           f"{(new - old) / old:+.2%}"]
    assert len(out) == 3
    body = json.loads(cli(repo.root, "params", "diff", repo.main_run[:-2], "--format", "json").stdout)
    assert body["old"] == f"run {repo.main_run}"  # a prefix names the whole run id
    assert [(c["key"], c["old"], c["new"]) for c in body["changes"]] == [("params.max_depth", 2, 4)]


def test_diff_against_a_run_compares_only_the_nodes_it_built(repo: Repo) -> None:
    # the feature run built only models.churn, and nothing changed since
    assert cli(repo.root, "metrics", "diff", repo.feature_run).stdout == \
        f"No metrics changed between run {repo.feature_run} and workspace.\n"
    assert cli(repo.root, "params", "diff", repo.feature_run).stdout == \
        f"No params changed between run {repo.feature_run} and workspace.\n"


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ("metrics", "diff", "nosuchrev"),
    ("params", "diff", "nosuchrev", "--format", "json"),
    ("plan", "--format", "markdown", "--base", "nosuchrev"),
])
def test_an_unknown_revision(repo: Repo, args: tuple[str, ...]) -> None:
    result = cli(repo.root, *args, code=1)
    assert result.stdout == ""
    assert result.stderr == "error: unknown git revision 'nosuchrev'\n"


def test_base_needs_markdown(repo: Repo) -> None:
    result = cli(repo.root, "plan", "--base", "main", code=1)
    assert result.stderr == "error: --base goes with --format markdown (a pull-request comment)\n"


@pytest.mark.parametrize("args", [
    ("metrics", "diff", "main"),
    ("metrics", "diff"),
    ("params", "diff", "HEAD", "--format", "markdown"),
    ("plan", "--format", "markdown", "--base", "main"),
])
def test_outside_a_git_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    root = tmp_path / "plain"
    root.mkdir()
    (root / "mlproject.yaml").write_text(PROJECT, encoding="utf-8")
    result = cli(root, *args, code=1)
    rev = args[2] if len(args) > 2 and args[0] != "plan" else ("main" if args[0] == "plan" else "HEAD")
    assert result.stderr == f"error: cannot read revision '{rev}': {root.resolve()} is not in a git repository\n"
    assert result.stdout == ""


def test_a_project_in_a_subfolder_of_the_repository(tmp_path: Path) -> None:
    top = tmp_path / "top"
    root = top / "ml" / "tiny"
    root.mkdir(parents=True)
    (root / "mlproject.yaml").write_text(PROJECT, encoding="utf-8")
    lock = ("lock_version: 1\nnodes:\n  models.churn:\n    config: {params: {max_depth: 2}}\n"
            "    fingerprint: \"x\"\n    kind: \"model\"\n    metrics: {auc: 0.75}\n    outputs: {}\n")
    (root / "mlproject.lock").write_text(lock, encoding="utf-8")
    git(top, "-c", "init.defaultBranch=main", "init", "-q")
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", "a lock")
    (root / "mlproject.lock").write_text(lock.replace("0.75", "0.8").replace("max_depth: 2", "max_depth: 5"),
                                         encoding="utf-8")
    assert cli(root, "metrics", "diff", "main", "--format", "json").stdout.count('"key"') == 1
    body = json.loads(cli(root, "params", "diff", "main", "--format", "json").stdout)
    assert [(c["key"], c["old"], c["new"]) for c in body["changes"]] == [("params.max_depth", 2, 5)]


def test_a_node_restored_from_the_cache_is_still_judged_against_the_baseline(copy: Path) -> None:
    edit(copy, 'gates: {auc: ">= 0.5"}', 'gates: {auc: "== baseline"}')  # the branch's auc is not main's
    cli(copy, "build", "--baseline", "HEAD~1")  # no lock there: not checked; built and cached
    edit(copy, "max_depth: 4", "max_depth: 3")
    cli(copy, "build", "--baseline", "HEAD~1")
    edit(copy, "max_depth: 3", "max_depth: 4")  # back to the cached fingerprint
    assert "restore from the cache" in cli(copy, "plan").stdout
    # trained, the model fails the gate against main …
    assert "gate auc == baseline failed" in cli(copy, "build", "--force", "--baseline", "main", code=1).stderr
    # … restored, it passes: observed exit 0, "restored from the cache"
    result = cli(copy, "build", "--baseline", "main", code=1)
    assert "gate auc == baseline failed" in result.stderr
