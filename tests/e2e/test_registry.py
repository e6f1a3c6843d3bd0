"""The model registry end to end, in a git repository whose project sits in a subfolder (a
monorepo: GTO names the artifact `proj:species`): build, register v0.0.1, promote it to
production, a deploy target on `species@production` builds from it; a param change is built
and registered as v0.0.2 without moving the target; promoting v0.0.2 moves it with no
retraining; a rollback brings v0.0.1 back. GTO's own `gto show` reads the same tags."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from tests.helpers import copy_example

GTO = str(Path(sys.executable).parent / "gto")
TARGET = """  prod_api:
    model: species@production
    kind: http
"""
SCORES = """  prod_scores:
    model: species@production
    kind: batch
    input: penguin_features
"""
T0 = 1_800_000_000  # tags made in one test second apart: GTO orders events by their time


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A git repository with the penguins example in proj/, and a clock for tag times."""
    for var in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{var}_NAME", "Ann Lee")
        monkeypatch.setenv(f"GIT_{var}_EMAIL", "ann@example.com")
    monkeypatch.setenv("GIT_COMMITTER_DATE", f"{T0} +0000")
    copy_example("penguins", tmp_path / "proj")
    _git(tmp_path, "init", "-q")
    yield tmp_path


def _git(top: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=top, check=True, capture_output=True, text=True).stdout


def _commit(top: Path, message: str) -> str:
    _git(top, "add", "-A")
    _git(top, "commit", "-qm", message)
    return _git(top, "rev-parse", "HEAD").strip()


def _tick(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    monkeypatch.setenv("GIT_COMMITTER_DATE", f"{T0 + n} +0000")


def _gto(top: Path, *args: str) -> object:
    out = subprocess.run([GTO, *args, "--json"], cwd=top, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def _manifest(proj: Path, target: str) -> dict[str, object]:
    return json.loads((proj / "build" / "deploy" / target / "manifest.json").read_text())  # type: ignore[no-any-return]


def test_a_deploy_target_follows_production(repo: Path, run_cli: Callable[..., Result],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    proj = repo / "proj"
    assert run_cli(proj, "build").exit_code == 0
    c1 = _commit(repo, "first model")
    registered = run_cli(proj, "register", "species")
    assert registered.exit_code == 0, registered.stderr
    assert registered.stdout == (f"registered species v0.0.1: tag proj=species@v0.0.1 on {c1[:7]}\n"
                                 "share it: git push origin proj=species@v0.0.1\n")
    _tick(monkeypatch, 1)
    promoted = run_cli(proj, "promote", "species", "v0.0.1", "--to", "production")
    assert promoted.stdout == ("species v0.0.1 is now production: tag proj=species#production#1\n"
                               "share it: git push origin proj=species#production#1\n")

    with open(proj / "mlproject.yaml", "a", encoding="utf-8") as f:  # the target follows the stage
        f.write(TARGET + SCORES)
    built = run_cli(proj, "build")
    assert built.exit_code == 0, built.stderr
    assert built.stdout.splitlines()[-1] == "Build: 2 built, 5 up to date."
    v1 = json.loads((proj / "build/models/species/metrics.json").read_text())
    manifest = _manifest(proj, "prod_api")
    assert manifest["registry"] == {"version": "v0.0.1", "stage": "production"}
    fp1 = manifest["model"]["fingerprint"]  # type: ignore[index]

    # a param change: the model retrains, the target does not move
    text = (proj / "mlproject.yaml").read_text()
    (proj / "mlproject.yaml").write_text(text.replace("max_depth: 3", "max_depth: 2"))
    rebuilt = run_cli(proj, "build")
    assert "deploy.prod_api" not in rebuilt.stdout
    unregistered = run_cli(proj, "register", "species")
    assert unregistered.exit_code == 1
    assert unregistered.stderr == ("error: models.species: its build is not committed (a version is a commit): "
                                   "commit mlproject.lock and .mlmake-artifacts/, then register it\n")
    c2 = _commit(repo, "deeper")
    _tick(monkeypatch, 2)
    assert run_cli(proj, "register", "species").stdout.startswith(f"registered species v0.0.2: tag "
                                                                  f"proj=species@v0.0.2 on {c2[:7]}")
    plan = run_cli(proj, "plan", "--detailed-exitcode")
    assert plan.exit_code == 0 and " = deploy.prod_api" in plan.stdout

    _tick(monkeypatch, 3)
    moved = run_cli(proj, "promote", "species", "v0.0.2", "--to", "production")
    assert moved.stdout.startswith("species v0.0.2 is now production: tag proj=species#production#2; was v0.0.1\n")
    plan = run_cli(proj, "plan")
    assert [line for line in plan.stdout.splitlines() if line.startswith(" ~")] == [
        " ~ deploy.prod_api            production moved v0.0.1 → v0.0.2",
        " ~ deploy.prod_scores         production moved v0.0.1 → v0.0.2"]
    built = run_cli(proj, "build")
    assert sorted(line.split(" ", 1)[1] for line in built.stdout.splitlines() if line.startswith("[")) == [
        "deploy.prod_api  (production moved v0.0.1 → v0.0.2)",
        "deploy.prod_scores  (production moved v0.0.1 → v0.0.2)"]
    assert built.stdout.splitlines()[-1] == "Build: 2 built, 5 up to date."  # no retraining
    assert _manifest(proj, "prod_api")["registry"] == {"version": "v0.0.2", "stage": "production"}
    scores = _manifest(proj, "prod_scores")
    assert (scores["registry"], scores["rows"]) == ({"version": "v0.0.2", "stage": "production"}, 342)

    assert _gto(repo, "show") == {"proj:species": {"version": "v0.0.2", "stage": {"production": "v0.0.2"},
                                                   "registered": True, "active": True}}
    history = _gto(repo, "history", "proj:species")
    assert [(e["event"], e["version"], e["stage"]) for e in history] == [  # type: ignore[attr-defined,index]
        ("assignment", "v0.0.2", "production"), ("registration", "v0.0.2", None),
        ("assignment", "v0.0.1", "production"), ("registration", "v0.0.1", None)]

    assert run_cli(proj, "registry").stdout == (
        "models.species\n"
        f"  v0.0.2     production       {c2[:7]}  2027-01-15 08:00:02 UTC  Ann Lee <ann@example.com>\n"
        f"  v0.0.1     -                {c1[:7]}  2027-01-15 08:00:00 UTC  Ann Lee <ann@example.com>\n"
        "  2027-01-15 08:00:01 UTC  v0.0.1 → production  by Ann Lee <ann@example.com>  (proj=species#production#1)\n"
        "  2027-01-15 08:00:03 UTC  v0.0.2 → production  by Ann Lee <ann@example.com>  (proj=species#production#2)\n")
    listed = json.loads(run_cli(proj, "registry", "species", "--json").stdout)["species"]
    assert listed["stages"] == {"production": "v0.0.2"}
    first = listed["versions"][0]
    assert (first["version"], first["commit"], first["author"], first["record"]["fingerprint"]) == (
        "v0.0.1", c1, "Ann Lee", fp1)
    assert first["record"]["metrics"] == {**v1["metrics"], "slices": v1["slices"]}  # the lock's: slices too
    assert first["record"]["data"] == {"data/penguins.csv": first["record"]["data"]["data/penguins.csv"]}

    # a rollback: v0.0.1's outputs come back from the DVC cache (the workspace holds v0.0.2's)
    _tick(monkeypatch, 4)
    assert run_cli(proj, "promote", "species", "v0.0.1", "--to", "production").exit_code == 0
    rollback = [line for line in run_cli(proj, "plan").stdout.splitlines() if "prod_api" in line]
    assert rollback[0] == " < deploy.prod_api            production moved v0.0.2 → v0.0.1"  # built before
    assert run_cli(proj, "build", "--force", "deploy.prod_api").exit_code == 0
    assert _manifest(proj, "prod_api")["model"]["fingerprint"] == fp1  # type: ignore[index]
    assert (proj / ".mlmake/registry" / str(fp1) / "build/models/species/model.json").is_file()
    assert _gto(repo, "show") == {"proj:species": {"version": "v0.0.2", "stage": {"production": "v0.0.1"},
                                                   "registered": True, "active": True}}

    # any clone has the tags; the version's outputs come from the remote (here through DVC itself:
    # a [cache] setting mlmake's own copier does not follow), and its target builds without training
    clone = repo.parent / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    (clone / "proj/.dvc/config.local").write_text("[cache]\n    type = copy\n")
    pulled = run_cli(clone / "proj", "pull", "species@production")
    assert pulled.exit_code == 0, pulled.stderr
    assert pulled.stdout == (f"pulled species v0.0.1 (fingerprint {fp1[:8]}) in "
                             f".mlmake/registry/{fp1}/build/models/species\n")
    assert run_cli(clone / "proj", "pull", "species@v0.0.1").stdout.startswith("already here: species v0.0.1")
    deployed = run_cli(clone / "proj", "build", "deploy.prod_api")  # the remote's run cache has it
    assert deployed.stdout.splitlines()[-1] == "Build: 0 built, 1 restored from cache, 0 up to date."
    deployed = run_cli(clone / "proj", "build", "--force", "deploy.prod_api")  # bundled from the pulled version
    assert deployed.stdout.splitlines()[-1] == "Build: 1 built, 0 up to date."
    assert _manifest(clone / "proj", "prod_api")["model"]["fingerprint"] == fp1  # type: ignore[index]
    assert not (clone / "proj/build/models").exists()  # nothing trained


def test_a_stage_no_version_holds_is_a_located_error(repo: Path, run_cli: Callable[..., Result]) -> None:
    proj = repo / "proj"
    with open(proj / "mlproject.yaml", "a", encoding="utf-8") as f:
        f.write(TARGET.replace("production", "staging"))
    line = len((proj / "mlproject.yaml").read_text().splitlines()) - 1
    assert run_cli(proj, "validate").exit_code == 0  # the file is right: the registry lacks the version
    assert run_cli(proj, "plan", "models.species").exit_code == 0  # the rest of the project plans and builds
    result = run_cli(proj, "plan")
    assert result.exit_code == 1
    assert run_cli(proj, "build", "deploy.prod_api").stderr == result.stderr
    assert result.stderr == (
        f"mlproject.yaml:{line}:12: deploy.prod_api.model: no version of species holds the stage 'staging' "
        "(stages used: none)\n"
        "      model: species@staging\n"
        "             ^\n"
        "  hint: promote one: mlmake promote species VERSION --to staging\n"
        "1 error found\n")


def test_register_refuses_a_model_not_built(repo: Path, run_cli: Callable[..., Result]) -> None:
    result = run_cli(repo / "proj", "register", "species")
    assert result.exit_code == 1
    assert result.stderr == "error: models.species is not up to date (new node): build it, commit, then register it\n"


def test_promote_names_the_registered_versions(repo: Path, run_cli: Callable[..., Result]) -> None:
    result = run_cli(repo / "proj", "promote", "species", "v9.9.9", "--to", "production")
    assert result.exit_code == 1
    assert result.stderr == ("error: species has no version v9.9.9 (registered: none); "
                             "register one with `mlmake register species`\n")


def test_the_model_card_tells_the_registry_and_rebuilds_when_it_moves(repo: Path, run_cli: Callable[..., Result],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    proj = repo / "proj"
    with (proj / "mlproject.yaml").open("a", encoding="utf-8") as fh:
        fh.write("\ncards:\n  species: {model: species}\n")
    card = proj / "build" / "cards" / "species" / "card.md"
    assert run_cli(proj, "build").exit_code == 0
    assert "This build is not registered (`mlmake register MODEL`)." in card.read_text(encoding="utf-8")
    _commit(repo, "first model")
    assert run_cli(proj, "register", "species").exit_code == 0

    fingerprint = _lock_fingerprint(proj)
    stale = [line for line in run_cli(proj, "plan").stdout.splitlines() if not line.startswith(" =")]
    assert stale == [  # registering moved the card, nothing else
        " ~ cards.species              model_registry.stages added ({})",
        f'                              model_registry.versions added ({{"v0.0.1": "{fingerprint}"}})',
        "", "Plan: 1 to build, 5 up to date."]
    assert run_cli(proj, "build").exit_code == 0
    text = card.read_text(encoding="utf-8")
    assert "This build is registered as v0.0.1; the stages it holds: none." in text
    assert json.loads((card.parent / "card.json").read_text())["registry"] == {
        "versions": ["v0.0.1"], "stages": [], "model_stages": {}}

    _commit(repo, "the card")
    _tick(monkeypatch, 1)
    assert run_cli(proj, "promote", "species", "v0.0.1", "--to", "production").exit_code == 0
    result = run_cli(proj, "build")
    assert result.exit_code == 0, result.stderr
    assert "Build: 1 built," in result.stdout  # the card alone: no retraining
    text = card.read_text(encoding="utf-8")
    assert "This build is registered as v0.0.1; the stages it holds: production." in text
    assert "| production | v0.0.1 |" in text


def _lock_fingerprint(proj: Path) -> str:
    from ruamel.yaml import YAML

    return str(YAML(typ="safe").load((proj / "mlproject.lock").read_text())["nodes"]["models.species"]["fingerprint"])
