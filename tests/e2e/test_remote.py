"""mlmake on top of DVC, end to end through real subprocesses: git clones, a shared DVC remote
(a local folder), `mlmake push` / `pull` / `build --pull`, plain `dvc pull`, the run cache,
`mlmake data add` and `mlmake init`, and what happens when the cache or the remote is corrupted,
misconfigured or half-written.

The origin project is a copy of examples/churn whose mlproject.yaml names an absolute remote
(`remote: {url: <tmp>/remote}`); it is built, committed (lock, .mlmake-artifacts/, .dvc/config,
.dvcignore) and pushed once per module. Tests that damage a remote work on their own copy of it.
What a build ran is read back from `mlmake runs --json`: each build adds one record per node it
ran, with status "built" (trained) or "restored" (brought back from the DVC cache or remote).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import copy_example

REPO = Path(__file__).resolve().parents[2]
MODEL = "models.churn_xgb"
MODEL_JSON = "build/models/churn_xgb/model.json"
CHURN_NODES = {"steps.generate", "datasets.customers", "datasets.events", "features.customer_features",
               MODEL, "steps.report", "deploy.churn_api", "deploy.churn_scores"}
TIMEOUT = 120  # seconds, for any one subprocess

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


# --- running things ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A hermetic environment: git identity, no global git/DVC config, DVC's site cache in tmp."""
    home = tmp_path_factory.mktemp("home")
    return {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "GIT_AUTHOR_NAME": "mlmake-test", "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "mlmake-test", "GIT_COMMITTER_EMAIL": "test@example.com",
            "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
            "DVC_SITE_CACHE_DIR": str(home / "dvc-site"), "DVC_NO_ANALYTICS": "1", "NO_COLOR": "1"}


def run(env: dict[str, str], cwd: Path, *argv: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    if ok:
        assert done.returncode == 0, f"{argv} in {cwd} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def mlmake(env: dict[str, str], root: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    return run(env, root, sys.executable, "-m", "mlmake", "-C", str(root), *args, ok=ok)


def git(env: dict[str, str], cwd: Path, *args: str) -> str:
    return run(env, cwd, "git", *args).stdout


def records(env: dict[str, str], root: Path) -> list[dict[str, Any]]:
    done = mlmake(env, root, "runs", "--json", "--limit", "100000")
    out: list[dict[str, Any]] = json.loads(done.stdout)
    return out


def build(env: dict[str, str], root: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """`mlmake build ARGS` (must succeed); its output and {node: status} of the runs it recorded."""
    before = {(r["run_id"], r["node"]) for r in records(env, root)}
    done = mlmake(env, root, "build", *args)
    added = [r for r in records(env, root) if (r["run_id"], r["node"]) not in before]
    assert len({r["run_id"] for r in added}) <= 1, added
    return done, {r["node"]: r["status"] for r in added}


def plan_json(env: dict[str, str], root: Path, *args: str) -> dict[str, Any]:
    done = mlmake(env, root, "plan", "--format", "json", *args, ok=False)
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


# --- projects, clones and remotes -------------------------------------------------------------

def copy_churn(dest: Path, remote: Path) -> Path:
    """examples/churn without anything built, its mlproject.yaml pointed at REMOTE."""
    copy_example("churn", dest, skip=("data",))
    yaml = dest / "mlproject.yaml"
    text = yaml.read_text(encoding="utf-8")
    if re.search(r"(?m)^remote:", text):
        set_remote(dest, str(remote))
    else:
        yaml.write_text(text.replace("\nparams:", f"\nremote: {{url: {remote}}}\n\nparams:", 1), encoding="utf-8")
    return dest


def set_remote(root: Path, url: str) -> None:
    """Point a project's mlproject.yaml at another remote."""
    yaml = root / "mlproject.yaml"
    text, n = re.subn(r"(?m)^remote: \{url: .*\}$", f"remote: {{url: {url}}}", yaml.read_text(encoding="utf-8"))
    assert n == 1
    yaml.write_text(text, encoding="utf-8")


def set_max_depth(root: Path, depth: int) -> None:
    yaml = root / "mlproject.yaml"
    text, n = re.subn(r"max_depth: \d+", f"max_depth: {depth}", yaml.read_text(encoding="utf-8"))
    assert n == 1
    yaml.write_text(text, encoding="utf-8")


def commit_all(env: dict[str, str], root: Path, message: str) -> None:
    git(env, root, "add", "-A")
    git(env, root, "commit", "-q", "-m", message)


def clone(env: dict[str, str], origin: Path, dest: Path) -> Path:
    git(env, origin.parent, "clone", "-q", str(origin), str(dest))
    return dest


def tree(folder: Path) -> dict[str, str]:
    """Every file under folder → the sha256 of its bytes."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def workspace(root: Path) -> dict[str, str]:
    """The user's files (lock, pointers, yaml, built outputs, data): all but .git/, .dvc/, .mlmake/."""
    skip = {".git", ".dvc", ".mlmake"}
    return {rel: h for rel, h in tree(root).items() if rel.split("/", 1)[0] not in skip}


def obj(odb: Path, md5: str) -> Path:
    """An object's path in a DVC cache or local remote (its root: .dvc/cache or the remote folder)."""
    return odb / "files" / "md5" / md5[:2] / md5[2:]


def pointer_dir_md5(root: Path, address: str) -> str:
    """The `.dir` md5 a node's pointer names for its (single folder) output."""
    found = re.findall(r"md5: ([0-9a-f]{32}\.dir)", (root / ".mlmake-artifacts" / f"{address}.dvc").read_text())
    assert len(found) == 1, found
    return found[0]


def manifest(odb: Path, dir_md5: str) -> dict[str, str]:
    """A `.dir` object's listing: relpath → md5."""
    return {e["relpath"]: e["md5"] for e in json.loads(obj(odb, dir_md5).read_text(encoding="utf-8"))}


def model_json_md5(root: Path, odb: Path) -> str:
    return manifest(odb, pointer_dir_md5(root, MODEL))["model.json"]


def corrupt(path: Path) -> None:
    """Overwrite a few bytes in place (same size); DVC makes cache files read-only."""
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(100)
        f.write(b"CORRUPT!")


def bad_objects(odb: Path) -> list[str]:
    """Objects in a DVC cache whose bytes do not match their name."""
    bad = []
    for p in sorted((odb / "files" / "md5").rglob("*")):
        if p.is_file():
            name = p.parent.name + p.name.removesuffix(".dir")
            if hashlib.md5(p.read_bytes()).hexdigest() != name:
                bad.append(name)
    return bad


def missing_on_remote(root: Path, remote: Path) -> list[str]:
    """Objects the project's pointers need (folders expanded from the local cache) absent on the remote."""
    need: set[str] = set()
    for pointer in (root / ".mlmake-artifacts").glob("*.dvc"):
        for md5 in re.findall(r"md5: ([0-9a-f]{32}(?:\.dir)?)", pointer.read_text(encoding="utf-8")):
            need.add(md5)
            if md5.endswith(".dir"):
                need.update(manifest(root / ".dvc" / "cache", md5).values())
    return sorted(m for m in need if not obj(remote, m).is_file())


def pushed_files(stdout: str) -> int:
    found = re.search(r"pushed (\d+) file\(s\)", stdout)
    assert found, stdout
    return int(found.group(1))


@dataclass(frozen=True)
class Origin:
    root: Path
    remote: Path
    model: bytes  # build/models/churn_xgb/model.json as built


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Origin:
    """Project A: churn built, committed with its lock, pointers and DVC config, and pushed."""
    base = tmp_path_factory.mktemp("origin")
    remote = base / "remote"
    root = copy_churn(base / "A", remote)
    git(env, root, "init", "-q")
    _, ran = build(env, root)
    assert ran == dict.fromkeys(CHURN_NODES, "built")
    commit_all(env, root, "churn, built")
    assert git(env, root, "status", "--porcelain") == ""
    tracked = set(git(env, root, "ls-files").split())
    assert {"mlproject.lock", ".dvc/config", ".dvcignore", f".mlmake-artifacts/{MODEL}.dvc"} <= tracked
    assert not any(p.startswith(("build/", "data/", ".mlmake/")) for p in tracked), tracked
    done = mlmake(env, root, "push")
    assert "remote 'mlmake'" in done.stdout and pushed_files(done.stdout) > 0
    assert missing_on_remote(root, remote) == []
    return Origin(root, remote, (root / MODEL_JSON).read_bytes())


@pytest.fixture
def remote_copy(origin: Origin, tmp_path: Path) -> Path:
    """A copy of the origin's remote that a test may damage."""
    dest = tmp_path / "remote-copy"
    shutil.copytree(origin.remote, dest)
    return dest


def restored_clone(env: dict[str, str], origin: Origin, dest: Path, remote: Path | None = None) -> Path:
    """A clone of the origin (optionally on another remote, committed) in which a build restored everything."""
    root = clone(env, origin.root, dest)
    if remote is not None:
        set_remote(root, str(remote))
        commit_all(env, root, "another remote")
    _, ran = build(env, root)
    assert ran == dict.fromkeys(CHURN_NODES, "restored")
    return root


# --- a clone restores instead of training -----------------------------------------------------

def test_a_clone_plans_everything_restorable_and_builds_without_training(origin, env, tmp_path):
    b = clone(env, origin.root, tmp_path / "B")
    assert not (b / "build").exists() and not (b / "data").exists()

    text = mlmake(env, b, "plan", "--detailed-exitcode")  # exit 0: nothing to rebuild
    lines = {line.split()[1]: line for line in text.stdout.splitlines() if line.startswith(" = ")}
    assert set(lines) == CHURN_NODES, text.stdout
    assert all("restorable from the DVC remote" in line for line in lines.values()), text.stdout
    assert "Plan: 0 to build," in text.stdout

    plan = plan_json(env, b)
    assert plan["has_changes"] is False
    assert {n["address"] for n in plan["nodes"]} == CHURN_NODES
    assert all(n["restorable"] is True and n["action"] == "absent" and n["missing_outputs"] for n in plan["nodes"])
    assert [plan["summary"][k] for k in ("new", "build", "maybe", "restore", "remove")] == [0, 0, 0, 0, 0]

    done, ran = build(env, b)
    assert ran == dict.fromkeys(CHURN_NODES, "restored"), done.stdout  # no training run at all
    assert "0 built" in done.stdout
    assert (b / MODEL_JSON).read_bytes() == origin.model
    assert tree(b / "build") == tree(origin.root / "build")
    assert tree(b / "data") == tree(origin.root / "data")
    assert git(env, b, "status", "--porcelain") == ""  # the lock and the pointers are untouched
    again = mlmake(env, b, "plan", "--detailed-exitcode")
    assert "not in this workspace" not in again.stdout and "restorable" not in again.stdout


def test_plain_dvc_pull_brings_the_artifacts_back(origin, env, tmp_path):
    """The pointers in .mlmake-artifacts/ are standard DVC files: DVC alone can pull them."""
    c = clone(env, origin.root, tmp_path / "C")
    run(env, c, sys.executable, "-m", "dvc", "pull")
    assert (c / MODEL_JSON).read_bytes() == origin.model
    assert tree(c / "build") == tree(origin.root / "build")
    # and mlmake agrees that what DVC checked out is exactly what the lock records
    done = mlmake(env, c, "plan", "--detailed-exitcode")
    assert "not in this workspace" not in done.stdout and "Plan: 0 to build" in done.stdout


# --- the run cache, locally and through the remote ---------------------------------------------

@dataclass(frozen=True)
class TwoDepths:
    root: Path
    remote: Path
    model3: bytes  # model.json with max_depth 3 (the committed configuration)
    model5: bytes  # model.json with max_depth 5 (built with -P, pushed, never committed)


@pytest.fixture(scope="module")
def two_depths(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> TwoDepths:
    """Project A2 on its own remote: built and pushed at max_depth 3 (committed), then at 5 (-P)."""
    base = tmp_path_factory.mktemp("two-depths")
    remote = base / "remote"
    root = copy_churn(base / "A2", remote)
    git(env, root, "init", "-q")
    build(env, root)
    commit_all(env, root, "max_depth 3")
    mlmake(env, root, "push")
    model3 = (root / MODEL_JSON).read_bytes()
    _, ran = build(env, root, "-P", f"{MODEL}.params.max_depth=5")
    assert ran[MODEL] == "built"
    mlmake(env, root, "push")  # what the lock records now: the max_depth 5 model
    model5 = (root / MODEL_JSON).read_bytes()
    assert model5 != model3
    return TwoDepths(root, remote, model3, model5)


def test_going_back_to_earlier_params_restores_from_the_run_cache(two_depths, env):
    a = two_depths.root
    text = mlmake(env, a, "plan").stdout
    model_line = next(line for line in text.splitlines() if MODEL in line)
    assert model_line.lstrip().startswith("<"), text
    assert "params.max_depth 5 → 3" in text and "restore from the cache" in text
    plan = plan_json(env, a)
    assert next(n for n in plan["nodes"] if n["address"] == MODEL)["action"] == "restore"
    assert plan["summary"]["build"] == 0 and plan["summary"]["new"] == 0

    done, ran = build(env, a)
    assert ran[MODEL] == "restored", done.stdout
    assert "built" not in ran.values(), ran
    assert (a / MODEL_JSON).read_bytes() == two_depths.model3
    assert mlmake(env, a, "plan", "--detailed-exitcode").returncode == 0


def test_build_pull_restores_a_fingerprint_built_and_pushed_elsewhere(two_depths, env, tmp_path):
    b = clone(env, two_depths.root, tmp_path / "B")  # the commit says max_depth 3
    set_max_depth(b, 5)
    # nothing on this machine knows max_depth 5: without the remote it would train
    plan = plan_json(env, b)
    assert next(n for n in plan["nodes"] if n["address"] == MODEL)["action"] == "build"

    done, ran = build(env, b, "--pull")
    assert ran[MODEL] == "restored", done.stdout + done.stderr
    assert "built" not in ran.values(), ran
    assert (b / MODEL_JSON).read_bytes() == two_depths.model5
    assert mlmake(env, b, "plan", "--detailed-exitcode").returncode == 0


def test_a_clone_going_back_to_the_committed_params_restores_them(origin, env, tmp_path):
    b = restored_clone(env, origin, tmp_path / "B")  # restored by pointer, nothing trained here
    _, ran = build(env, b, "-P", f"{MODEL}.params.max_depth=5")
    assert ran[MODEL] == "built"
    plan = plan_json(env, b)  # back to the committed max_depth 3, whose model is in .dvc/cache
    assert next(n for n in plan["nodes"] if n["address"] == MODEL)["action"] == "restore"
    _, ran = build(env, b)
    assert ran[MODEL] == "restored"
    assert (b / MODEL_JSON).read_bytes() == origin.model


# --- integrity: corrupted objects are detected and never used ----------------------------------

def test_a_corrupted_object_in_the_local_cache_is_detected_and_fetched_again(origin, env, tmp_path):
    b = restored_clone(env, origin, tmp_path / "B")
    cache = b / ".dvc" / "cache"
    md5 = model_json_md5(b, cache)
    corrupt(obj(cache, md5))
    shutil.rmtree(b / "build" / "models" / "churn_xgb")

    done, ran = build(env, b)
    assert md5[2:] in done.stderr and "corrupted" in done.stderr, done.stderr  # the warning names the object
    assert ran == {MODEL: "restored"}, done.stdout + done.stderr  # fetched again from the (healthy) remote
    assert (b / MODEL_JSON).read_bytes() == origin.model
    assert bad_objects(cache) == []
    assert git(env, b, "status", "--porcelain") == ""


def test_a_corrupted_object_on_the_remote_is_detected_and_the_node_rebuilt(origin, remote_copy, env, tmp_path):
    d = clone(env, origin.root, tmp_path / "D")
    set_remote(d, str(remote_copy))
    md5 = model_json_md5(d, remote_copy)
    corrupt(obj(remote_copy, md5))
    assert not (d / ".dvc" / "cache").exists()  # nothing local to fall back on

    done, ran = build(env, d)
    assert md5[2:] in done.stderr and "corrupted" in done.stderr, done.stderr
    assert ran[MODEL] == "built", done.stdout + done.stderr  # the bad bytes are not used
    assert {n for n, s in ran.items() if s == "built"} == {MODEL}, ran  # the rest came from the remote
    assert (d / MODEL_JSON).read_bytes() == origin.model  # training is deterministic
    assert tree(d / "build") == tree(origin.root / "build")
    assert bad_objects(d / ".dvc" / "cache") == []
    assert mlmake(env, d, "plan", "--detailed-exitcode").returncode == 0


def test_a_corrupted_object_restored_from_the_run_cache_is_rebuilt(tmp_path, env):
    """Without --pull, a run-cache restore whose object is corrupted falls back to building."""
    a = copy_churn(tmp_path / "A", tmp_path / "remote")
    git(env, a, "init", "-q")
    build(env, a)
    model3 = (a / MODEL_JSON).read_bytes()
    build(env, a, "-P", f"{MODEL}.params.max_depth=5")
    cache = a / ".dvc" / "cache"
    md5 = hashlib.md5(model3).hexdigest()
    corrupt(obj(cache, md5))

    done, ran = build(env, a)
    assert md5[2:] in done.stderr and "corrupted" in done.stderr, done.stderr
    assert ran[MODEL] == "built", done.stdout + done.stderr
    assert (a / MODEL_JSON).read_bytes() == model3
    assert bad_objects(cache) == []


# --- integrity: a missing or misconfigured remote ----------------------------------------------

def assert_remote_error(done: subprocess.CompletedProcess[str], url: str) -> None:
    assert done.returncode == 1, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "'mlmake'" in done.stderr and url in done.stderr, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "internal error" not in done.stderr


def test_push_to_a_remote_that_is_a_file_fails_cleanly(origin, env, tmp_path):
    b = restored_clone(env, origin, tmp_path / "B")
    not_a_folder = tmp_path / "remote-is-a-file"
    not_a_folder.write_text("not a folder\n")
    set_remote(b, str(not_a_folder))
    before = workspace(b)

    assert_remote_error(mlmake(env, b, "push", ok=False), str(not_a_folder))
    assert workspace(b) == before
    assert not_a_folder.read_text() == "not a folder\n"


def test_pull_from_a_remote_that_is_a_file_fails_cleanly(origin, env, tmp_path):
    b = clone(env, origin.root, tmp_path / "B")
    not_a_folder = tmp_path / "remote-is-a-file"
    not_a_folder.write_text("not a folder\n")
    set_remote(b, str(not_a_folder))
    before = workspace(b)

    done = mlmake(env, b, "pull", ok=False)
    assert workspace(b) == before
    assert_remote_error(done, str(not_a_folder))


def _plugin(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


REMOTE_URLS = [  # what DVC says without the network, when the scheme's plugin is not installed
    pytest.param(url, id=scheme, marks=[pytest.mark.skipif(_plugin(plugin), reason=f"{plugin} is installed")])
    for scheme, plugin, url in (("s3", "dvc_s3", "s3://mlmake-test-no-such-bucket/remote"),
                                ("ssh", "dvc_ssh", "ssh://127.0.0.1:1/remote"))
]


@pytest.mark.parametrize("url", REMOTE_URLS)
@pytest.mark.parametrize("verb", ["push", "pull"])
def test_push_and_pull_with_an_unusable_remote_url_fail_cleanly(origin, env, tmp_path, verb, url):
    b = clone(env, origin.root, tmp_path / "B")
    set_remote(b, url)
    before = workspace(b)
    done = mlmake(env, b, verb, ok=False)
    assert workspace(b) == before
    assert_remote_error(done, url)


@pytest.mark.skipif(_plugin("dvc_s3"), reason="dvc_s3 is installed")
def test_a_clone_builds_locally_when_its_remote_plugin_is_missing(origin, env, tmp_path):
    b = clone(env, origin.root, tmp_path / "B")
    url = "s3://mlmake-test-no-such-bucket/remote"
    set_remote(b, url)
    done = mlmake(env, b, "build", ok=False)
    assert done.returncode == 0, done.stderr
    assert url in done.stderr  # a warning names the remote it could not use
    assert (b / MODEL_JSON).read_bytes() == origin.model


# --- integrity: an interrupted push, completed by the next one --------------------------------

def test_a_push_that_failed_midway_is_completed_by_the_next_push(origin, env, tmp_path):
    b = restored_clone(env, origin, tmp_path / "B")
    remote = tmp_path / "remote-new"
    md5 = model_json_md5(b, b / ".dvc" / "cache")
    blocker = obj(remote, md5).parent  # a file where the model's object folder must go
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way\n")
    set_remote(b, str(remote))
    commit_all(env, b, "a new remote")
    before = workspace(b)

    assert_remote_error(mlmake(env, b, "push", ok=False), str(remote))
    assert workspace(b) == before
    assert md5 in missing_on_remote(b, remote)

    blocker.unlink()
    done = mlmake(env, b, "push")
    assert pushed_files(done.stdout) > 0
    assert missing_on_remote(b, remote) == []

    e = clone(env, b, tmp_path / "E")
    _, ran = build(env, e)
    assert ran == dict.fromkeys(CHURN_NODES, "restored")
    assert (e / MODEL_JSON).read_bytes() == origin.model


def test_objects_an_interrupted_upload_left_out_are_pushed_again(origin, remote_copy, env, tmp_path):
    """As if the upload stopped midway: the model's file is missing, and so is every folder
    manifest (`.dir`) listing it, since DVC writes a folder's manifest after its files."""
    b = restored_clone(env, origin, tmp_path / "B", remote_copy)
    cache = b / ".dvc" / "cache"
    md5 = model_json_md5(b, cache)
    gone = [md5] + [d for d in (pointer_dir_md5(b, p.stem) for p in (b / ".mlmake-artifacts").glob("*.dvc")
                                if ".dir" in p.read_text()) if md5 in manifest(cache, d).values()]
    assert len(gone) >= 2  # model.json and the model's folder (and the http bundle that copies it)
    for m in gone:
        obj(remote_copy, m).unlink()
    assert missing_on_remote(b, remote_copy) == sorted(gone)

    done = mlmake(env, b, "push")
    assert pushed_files(done.stdout) == len(gone)
    assert missing_on_remote(b, remote_copy) == []

    e = clone(env, b, tmp_path / "E")
    _, ran = build(env, e)
    assert ran == dict.fromkeys(CHURN_NODES, "restored")
    assert (e / MODEL_JSON).read_bytes() == origin.model


def test_an_object_deleted_from_the_remote_is_pushed_again(origin, remote_copy, env, tmp_path):
    b = restored_clone(env, origin, tmp_path / "B", remote_copy)
    md5 = model_json_md5(b, b / ".dvc" / "cache")
    obj(remote_copy, md5).unlink()
    mlmake(env, b, "push")
    assert missing_on_remote(b, remote_copy) == []


# --- raw data under DVC, and a new project ----------------------------------------------------

RAW_PROJECT = """\
version: 1
project: raw
remote: {url: REMOTE}
datasets:
  x:
    path: data/raw.csv
    schema:
      id: {type: int64, unique: true}
"""


@pytest.fixture
def raw_project(tmp_path: Path, env: dict[str, str]) -> Path:
    root = tmp_path / "R"
    (root / "data").mkdir(parents=True)
    (root / "data" / "raw.csv").write_text("id,v\n1,2.5\n2,3.5\n3,0.5\n", encoding="utf-8")
    (root / ".gitignore").write_text("/build/\n/.mlmake/\n", encoding="utf-8")
    (root / "mlproject.yaml").write_text(RAW_PROJECT.replace("REMOTE", str(tmp_path / "remote")), encoding="utf-8")
    git(env, root, "init", "-q")
    return root


def test_data_add_tracks_raw_data_with_a_standard_dvc_file(raw_project, env, tmp_path):
    root = raw_project
    done = mlmake(env, root, "data", "add", "data/raw.csv")
    assert "data/raw.csv.dvc" in done.stdout
    pointer = (root / "data" / "raw.csv.dvc").read_text(encoding="utf-8")
    md5 = hashlib.md5((root / "data" / "raw.csv").read_bytes()).hexdigest()
    assert f"md5: {md5}" in pointer and "path: raw.csv" in pointer
    assert run(env, root, "git", "check-ignore", "-q", "data/raw.csv").returncode == 0
    assert "remote \"mlmake\"" in (root / ".dvc" / "config").read_text()
    # DVC itself reads the file: the data is tracked and unchanged
    status = run(env, root, sys.executable, "-m", "dvc", "status", "--json", "data/raw.csv.dvc")
    assert json.loads(status.stdout) == {}

    why = mlmake(env, root, "why", "datasets.x").stdout
    assert f"data/raw.csv: - → md5:{md5}" in why, why  # the hash is the one in the .dvc file

    build(env, root)
    commit_all(env, root, "raw data under DVC")
    assert "data/raw.csv" not in git(env, root, "ls-files").split()

    c = clone(env, root, tmp_path / "C")
    assert not (c / "data" / "raw.csv").exists()
    done = mlmake(env, c, "plan", "--detailed-exitcode")  # exit 0 without the data
    assert "up to date; not in this workspace: build/datasets/x" in done.stdout  # nothing pushed yet
    mlmake(env, root, "push")
    done = mlmake(env, c, "plan", "--detailed-exitcode")
    assert "up to date; restorable from the DVC remote: build/datasets/x" in done.stdout
    assert f"md5:{md5}" in mlmake(env, c, "why", "datasets.x").stdout
    # the data's hash comes from its pointer: a new version of the data (a new md5) is a change
    other = hashlib.md5(b"id,v\n1,2.5\n").hexdigest()
    (c / "data" / "raw.csv.dvc").write_text(pointer.replace(md5, other), encoding="utf-8")
    changed = mlmake(env, c, "plan", "--detailed-exitcode", ok=False)
    assert changed.returncode == 2, changed.stdout + changed.stderr
    assert "data/raw.csv changed" in changed.stdout


def tracked_pushed_clone(env, root, dest):
    """The raw data put under DVC, built, committed and pushed; a clone of it at dest."""
    mlmake(env, root, "data", "add", "data/raw.csv")
    build(env, root)
    commit_all(env, root, "raw data under DVC")
    mlmake(env, root, "push")
    return clone(env, root, dest)


def test_push_carries_dvc_tracked_raw_data_to_a_clone(raw_project, env, tmp_path):
    root = raw_project
    c = tracked_pushed_clone(env, root, tmp_path / "C")
    mlmake(env, c, "pull")
    assert (c / "data" / "raw.csv").read_bytes() == (root / "data" / "raw.csv").read_bytes()


def test_init_sets_up_git_and_dvc_with_the_mlmake_remote(tmp_path, env):
    new = tmp_path / "new-project"
    new.mkdir()
    mlmake(env, new, "init")
    assert (new / ".git").is_dir()
    # the default remote is this machine's folder: in the local config, never committed
    config = (new / ".dvc" / "config.local").read_text(encoding="utf-8")
    assert "['remote \"mlmake\"']" in config and re.search(r"(?m)^\s*remote = mlmake$", config), config
    assert f"url = {env['MLMAKE_REMOTE']}" in config, config
    assert "mlmake" not in (new / ".dvc" / "config").read_text(encoding="utf-8")
    assert (new / ".dvcignore").is_file()
    assert run(env, new, "git", "check-ignore", "-q", ".mlmake/x").returncode == 0
    # DVC reads the configuration back: the default remote is mlmake
    listed = run(env, new, sys.executable, "-m", "dvc", "remote", "list").stdout
    assert listed.split()[0] == "mlmake", listed


# --- the default remote: shared by every clone on this machine, outside the repository ---------

PENGUINS = {"datasets.penguins", "features.penguin_features", "models.species", "deploy.species_api",
            "deploy.species_scores"}
SPECIES = "models.species"
SPECIES_JSON = "build/models/species/model.json"


def with_env(env: dict[str, str], **changes: str | None) -> dict[str, str]:
    out = dict(env)
    for name, value in changes.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def penguins_repo(env: dict[str, str], dest: Path) -> Path:
    """examples/penguins as committed, alone in a git repository of its own, built and committed."""
    root = copy_example("penguins", dest)
    git(env, root, "init", "-q")
    _, ran = build(env, root)
    assert ran == dict.fromkeys(PENGUINS, "built")
    commit_all(env, root, "penguins, built")
    assert git(env, root, "status", "--porcelain") == ""
    return root


def test_a_second_clone_restores_from_the_default_remote_without_training(env, tmp_path):
    """No `remote:` in the file, no push: the first clone's build shared everything."""
    xdg = tmp_path / "xdg"
    e = with_env(env, MLMAKE_REMOTE=None, XDG_CACHE_HOME=str(xdg))
    a = penguins_repo(e, tmp_path / "A")
    default = xdg / "mlmake" / "remote"
    assert (default / "files" / "md5").is_dir()
    assert str(default) not in (a / ".dvc" / "config").read_text(encoding="utf-8")  # committed: no path of ours
    assert str(default) in (a / ".dvc" / "config.local").read_text(encoding="utf-8")
    shutil.rmtree(a / ".mlmake")  # the local state holds no only copy of anything

    b = clone(e, a, tmp_path / "B")
    text = mlmake(e, b, "plan", "--detailed-exitcode").stdout
    assert text.count("restorable from the DVC remote") == len(PENGUINS), text
    done, ran = build(e, b)
    assert ran == dict.fromkeys(PENGUINS, "restored"), done.stdout + done.stderr
    assert (b / SPECIES_JSON).read_bytes() == (a / SPECIES_JSON).read_bytes()
    assert done.stderr == ""

    # another machine's (empty) default remote: nothing is promised, and the build trains
    c = clone(e, a, tmp_path / "C")
    other = with_env(e, MLMAKE_REMOTE=str(tmp_path / "empty"))
    text = mlmake(other, c, "plan").stdout
    assert "restorable" not in text and text.count("not in this workspace:") == len(PENGUINS), text


def test_a_clone_restores_from_a_local_remote_without_dvc_and_dvc_agrees(env, tmp_path):
    """The objects are copied from the remote's folder, checked against the lock, and put in the
    clone's DVC cache: DVC is never imported, and plain DVC finds everything in place."""
    e = with_env(env, MLMAKE_REMOTE=str(tmp_path / "shared"))
    a = penguins_repo(e, tmp_path / "A")
    b = clone(e, a, tmp_path / "B")
    script = ("import sys; from mlmake.__main__ import run; code = run(['build']); "
              "print('dvc imported' if 'dvc' in sys.modules else 'dvc not imported'); sys.exit(code)")
    done = run(e, b, sys.executable, "-c", script)
    assert done.stdout.endswith(f"Build: 0 built, {len(PENGUINS)} restored from cache, 0 up to date.\n"
                                "dvc not imported\n"), done.stdout
    assert done.stderr == ""
    assert tree(b / "build") == tree(a / "build")
    assert bad_objects(b / ".dvc" / "cache") == [] and missing_on_remote(b, tmp_path / "shared") == []
    assert {oct(p.stat().st_mode & 0o777) for p in (b / ".dvc" / "cache").rglob("*") if p.is_file()} == {"0o444"}
    done = mlmake(e, b, "build")
    assert done.stdout.endswith(f"Build: 0 built, {len(PENGUINS)} up to date.\n"), done.stdout
    assert run(e, b, sys.executable, "-m", "dvc", "status").stdout == "Data and pipelines are up to date.\n"
    assert git(e, b, "status", "--porcelain") == ""


def test_a_param_revert_in_a_new_clone_restores_from_the_shared_run_cache(env, tmp_path):
    e = with_env(env, MLMAKE_REMOTE=str(tmp_path / "shared"))
    a = penguins_repo(e, tmp_path / "A")
    _, ran = build(e, a, "-P", f"{SPECIES}.params.max_depth=2")
    assert ran[SPECIES] == "built"
    b = clone(e, a, tmp_path / "B")  # knows nothing of max_depth 2 but what the default remote holds
    plan = plan_json(e, b, "-P", f"{SPECIES}.params.max_depth=2")
    assert next(n for n in plan["nodes"] if n["address"] == SPECIES)["action"] == "restore"
    _, ran = build(e, b, "-P", f"{SPECIES}.params.max_depth=2")
    assert "built" not in ran.values(), ran
    assert (b / SPECIES_JSON).read_bytes() == (a / SPECIES_JSON).read_bytes()


def test_a_cloud_remote_is_not_checked_by_plan_and_it_says_so(origin, env, tmp_path):
    b = clone(env, origin.root, tmp_path / "B")
    set_remote(b, "s3://mlmake-test-no-such-bucket/remote")
    text = mlmake(env, b, "plan").stdout
    assert text.count("restorable from the DVC remote") == len(CHURN_NODES), text
    assert text.endswith("(restorable: not checked offline against remote 'mlmake' "
                         "(s3://mlmake-test-no-such-bucket/remote); `mlmake pull` tells)\n"), text


def test_a_corrupted_folder_listing_on_the_default_remote_is_named_skipped_and_rebuilt(env, tmp_path):
    e = with_env(env, MLMAKE_REMOTE=str(tmp_path / "shared"))
    a = penguins_repo(e, tmp_path / "A")
    listing = pointer_dir_md5(a, SPECIES)
    bad = obj(tmp_path / "shared", listing)
    os.chmod(bad, 0o644)
    bad.write_text("not a folder listing{", encoding="utf-8")

    b = clone(e, a, tmp_path / "B")
    done, ran = build(e, b)
    assert done.stderr == (f"warning: {SPECIES}: object {listing} of build/models/species on the remote "
                           f"({tmp_path / 'shared'}) is corrupted (its bytes do not match its md5): removed from the "
                           "remote; building it\n"), done.stderr
    assert ran[SPECIES] == "built" and {n for n, s in ran.items() if s == "built"} == {SPECIES}, ran
    assert (b / SPECIES_JSON).read_bytes() == (a / SPECIES_JSON).read_bytes()
    assert mlmake(e, b, "build").returncode == 0  # and again: the bad object is never used twice
    assert bad_objects(tmp_path / "shared") == []  # the rebuild put the good listing back
    _, ran = build(e, clone(e, a, tmp_path / "C"))
    assert ran == dict.fromkeys(PENGUINS, "restored")


def test_a_corrupted_file_on_the_default_remote_is_removed_and_replaced_by_the_rebuild(env, tmp_path):
    e = with_env(env, MLMAKE_REMOTE=str(tmp_path / "shared"))
    a = penguins_repo(e, tmp_path / "A")
    md5 = manifest(tmp_path / "shared", pointer_dir_md5(a, SPECIES))["model.json"]
    corrupt(obj(tmp_path / "shared", md5))
    os.chmod(obj(tmp_path / "shared", md5), 0o444)  # bit rot: DVC takes a read-only object at its word

    b = clone(e, a, tmp_path / "B")
    done, ran = build(e, b)
    assert done.stderr == (f"warning: {SPECIES}: object {md5} of build/models/species on the remote "
                           f"({tmp_path / 'shared'}) is corrupted (its bytes do not match its md5): removed from the "
                           "remote; building it\n"), done.stderr
    assert {n for n, s in ran.items() if s == "built"} == {SPECIES}, ran
    assert bad_objects(tmp_path / "shared") == [] and bad_objects(b / ".dvc" / "cache") == []
    assert tree(b / "build") == tree(a / "build")
    _, ran = build(e, clone(e, a, tmp_path / "C"))  # the rebuilt node was shared in its place
    assert ran == dict.fromkeys(PENGUINS, "restored")


# --- the examples behave like a user's project ------------------------------------------------

def test_an_example_inside_the_repository_restores_and_pushes_and_pulls(env, tmp_path):
    """As in a checkout of mlmake: examples/penguins inside a git repository with mlmake's .gitignore."""
    top = tmp_path / "checkout"
    top.mkdir()
    shutil.copyfile(REPO / ".gitignore", top / ".gitignore")
    root = copy_example("penguins", top / "examples" / "penguins")
    assert (root / ".gitignore").read_text(encoding="utf-8") == "# built by mlmake\n/build/\n/.mlmake/\n"
    git(env, top, "init", "-q")
    e = with_env(env, MLMAKE_REMOTE=str(tmp_path / "shared"))
    _, ran = build(e, root)
    assert ran == dict.fromkeys(PENGUINS, "built")
    for path in (f".mlmake-artifacts/{SPECIES}.dvc", "mlproject.lock", ".dvc/config"):  # all committable
        assert run(e, root, "git", "check-ignore", "-q", path, ok=False).returncode == 1, path

    shutil.rmtree(root / "build")
    _, ran = build(e, root)  # a second build restores what the first built
    assert ran == dict.fromkeys(PENGUINS, "restored")
    _, ran = build(e, root, "-P", f"{SPECIES}.params.max_depth=2")
    assert ran[SPECIES] == "built"
    _, ran = build(e, root)  # the param reverted: restored, not trained
    assert ran[SPECIES] == "restored" and "built" not in ran.values(), ran

    remote = tmp_path / "team-remote"
    pushed = mlmake(with_env(e, MLMAKE_REMOTE=str(remote)), root, "push")
    assert pushed_files(pushed.stdout) > 0 and pushed.stderr == ""
    commit_all(e, top, "penguins, built")
    b = clone(e, top, tmp_path / "B") / "examples" / "penguins"
    pulled = mlmake(with_env(e, MLMAKE_REMOTE=str(remote)), b, "pull")
    assert pulled.stdout == f"pulled {len(PENGUINS)} node(s) from remote 'mlmake' ({remote})\n"
    assert (b / SPECIES_JSON).read_bytes() == (root / SPECIES_JSON).read_bytes()


def test_a_first_build_without_init_writes_the_gitignore(env, tmp_path):
    root = copy_example("penguins", tmp_path / "P")
    (root / ".gitignore").unlink()
    git(env, root, "init", "-q")
    done = mlmake(env, root, "build")
    assert done.stdout.startswith("wrote .gitignore: build/ and .mlmake/ are never committed (commit "
                                  "mlproject.lock and .mlmake-artifacts/)\n"), done.stdout
    assert (root / ".gitignore").read_text(encoding="utf-8") == "# built by mlmake\n/build/\n/.mlmake/\n"
    git(env, root, "add", "-A")
    staged = git(env, root, "diff", "--cached", "--name-only").split()
    assert not [p for p in staged if p.startswith(("build/", ".mlmake/"))], staged
    assert "mlproject.lock" in staged and f".mlmake-artifacts/{SPECIES}.dvc" in staged
    assert "wrote .gitignore" not in mlmake(env, root, "build").stdout  # once


# --- a project outside git, and data that is not in the workspace -----------------------------

def test_a_built_project_copied_out_of_git_builds_pushes_and_pulls(env, tmp_path):
    e = with_env(env, MLMAKE_REMOTE=str(tmp_path / "shared"))
    a = penguins_repo(e, tmp_path / "A")
    out = tmp_path / "out"
    shutil.copytree(a, out, ignore=shutil.ignore_patterns(".git"))
    shutil.rmtree(out / "build")
    warning = (f"warning: {out} is not inside a git repository: DVC runs without git here; `git init` (then "
               "commit mlproject.lock and .mlmake-artifacts/) to version what was built\n")
    done, ran = build(e, out)  # restored without opening DVC: nothing to say about it yet
    assert ran == dict.fromkeys(PENGUINS, "restored") and done.stderr == ""
    done = mlmake(e, out, "push")
    assert done.stdout.startswith("pushed ") and done.stderr == warning
    done = mlmake(e, out, "pull")
    assert done.stdout == f"pulled {len(PENGUINS)} node(s) from remote 'mlmake' ({tmp_path / 'shared'})\n"


def test_a_project_never_in_git_builds_without_a_word_about_it(env, tmp_path):
    e = with_env(env, MLMAKE_REMOTE=str(tmp_path / "shared"))
    root = copy_example("penguins", tmp_path / "P")
    done, ran = build(e, root)
    assert ran == dict.fromkeys(PENGUINS, "built") and done.stderr == ""
    done = mlmake(e, root, "push")
    assert done.stdout == f"pushed 0 file(s) for {len(PENGUINS)} node(s) to remote 'mlmake' ({tmp_path / 'shared'})\n"


def test_a_build_that_needs_dvc_tracked_data_not_pulled_says_so(raw_project, env, tmp_path):
    root = raw_project
    c = tracked_pushed_clone(env, root, tmp_path / "C")
    yaml = c / "mlproject.yaml"
    yaml.write_text(yaml.read_text(encoding="utf-8") + "    checks: [{rows: \">= 1\"}]\n", encoding="utf-8")
    done = mlmake(env, c, "build", ok=False)
    assert done.returncode == 1
    assert ("FAILED datasets.x: data file 'data/raw.csv' is tracked by DVC (data/raw.csv.dvc) but not in this "
            "workspace: run `mlmake pull` (or `mlmake build --pull`) to fetch it\n") in done.stderr, done.stderr
    _, ran = build(env, c, "--pull")
    assert ran == {"datasets.x": "built"}


def test_a_local_dvc_failure_is_not_called_a_remote_failure(raw_project, env):
    root = raw_project
    git(env, root, "add", "data/raw.csv")  # tracked by git: DVC refuses to track it too
    done = mlmake(env, root, "data", "add", "data/raw.csv", ok=False)
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: dvc add failed in {root}: "), done.stderr
    assert "remote" not in done.stderr


# --- every command that writes the workspace takes the build lock -----------------------------

@pytest.mark.parametrize("argv", [("pull",), ("push",), ("data", "add", "data/raw.csv"), ("build",)])
def test_commands_that_write_the_workspace_wait_for_no_one(raw_project, env, argv):
    from mlmake.core.workdir import BuildLock

    before = workspace(raw_project)
    with BuildLock(raw_project):
        done = mlmake(env, raw_project, *argv, ok=False)
    assert done.returncode == 1
    assert done.stderr == (f"error: another mlmake build is running in this project (pid {os.getpid()}); "
                           "wait for it to finish, or stop it\n"), done.stderr
    assert {k: v for k, v in workspace(raw_project).items() if k != ".gitignore"} == \
        {k: v for k, v in before.items() if k != ".gitignore"}
