"""`mlmake import dvc` on three dvc.yaml shapes from DVC's documentation (a linear pipeline,
`foreach` over a list, `matrix`): each built with `dvc repro`, imported, validated, planned
(the stages `dvc status` calls stale and no others), built with `mlmake build` and compared
with what `dvc repro` writes. Real git, DVC and mlmake processes; tiny scripts and data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_cli

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dvc"
PARAMS_NOTE = ("the step depends on the whole of params.yaml (the command reads it itself; DVC compares only the "
               "named keys, mlmake the file)")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")  # DVC's `python` is ours
    return {**os.environ, "PATH": path, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
            "DVC_SITE_CACHE_DIR": str(home / "dvc-site"), "DVC_NO_ANALYTICS": "1", "NO_COLOR": "1"}


def run(env: dict[str, str], root: Path, *argv: str) -> str:
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{argv}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def dvc(env: dict[str, str], root: Path, *args: str) -> str:
    return run(env, root, sys.executable, "-m", "dvc", *args)


def built_by_dvc(tmp_path: Path, env: dict[str, str], fixture: str, data: tuple[str, ...] = ()) -> Path:
    """The fixture in a git repository, its data under DVC, built with `dvc repro`."""
    root = tmp_path / fixture
    shutil.copytree(FIXTURES / fixture, root)
    run(env, root, "git", "init", "-q")
    dvc(env, root, "init", "-q")
    if data:
        dvc(env, root, "add", "-q", *data)
    dvc(env, root, "repro", "-q")
    return root


def dvc_stale(env: dict[str, str], root: Path) -> set[str]:
    """The pipeline stages `dvc status` calls stale (not the .dvc files of raw data)."""
    return {s for s in json.loads(dvc(env, root, "status", "--json")) if not s.endswith(".dvc")}


def mlmake_stale(root: Path) -> set[str]:
    result = run_cli(root, "plan", "--format", "json")
    steps = json.loads(result.stdout)["nodes"]
    return {s["address"] for s in steps if s["action"] in ("new", "build")}


def outputs(root: Path, paths: tuple[str, ...]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for rel in paths:
        path = root / rel
        for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if f.is_file():
                found[f.relative_to(root).as_posix()] = f.read_bytes()
    return found


def imported(root: Path, stdout: str, *, fresh: bool = True) -> None:
    """Imported, valid, and (fresh) nothing to do: DVC called everything up to date."""
    result = run_cli(root, "import", "dvc")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == stdout
    assert run_cli(root, "validate").exit_code == 0
    if fresh:
        plan = run_cli(root, "plan")
        assert plan.stdout.splitlines()[-1].startswith("Plan: 0 to build"), plan.stdout


def rebuilt_like_dvc(env: dict[str, str], root: Path, outs: tuple[str, ...]) -> None:
    """`mlmake build` here, `dvc repro` on a copy: the same bytes; then mlmake has nothing to do.
    (A copy: once mlmake has built, its artifact pointers track the outputs dvc.yaml names, and
    DVC refuses a pipeline whose outputs are tracked twice.)"""
    copy = root.parent / f"{root.name}-dvc"
    shutil.copytree(root, copy, symlinks=True)
    dvc(env, copy, "repro", "-q")
    assert run_cli(root, "build").exit_code == 0
    assert outputs(root, outs) == outputs(copy, outs)
    assert run_cli(root, "plan").stdout.splitlines()[-1].startswith("Plan: 0 to build")
    assert dvc_stale(env, copy) == set()


CACHED = "mlmake keeps every output in its cache (DVC left this one to git)"
LINEAR_OUTS = ("data/prepared", "data/features", "model.pkl", "eval/plots", "eval/metrics.json")
LINEAR_IMPORT = f"""\
  prepare → steps.prepare
  featurize → steps.featurize
  train → steps.train
  evaluate → steps.evaluate
converted with a difference:
  dvc.yaml:8:5: stages.prepare.params: prepare.seed, prepare.split of params.yaml: {PARAMS_NOTE}
  dvc.yaml:18:5: stages.featurize.params: featurize.max_features, featurize.ngrams of params.yaml: {PARAMS_NOTE}
  dvc.yaml:28:5: stages.train.params: train.min_split, train.n_est, train.seed of params.yaml: {PARAMS_NOTE}
  dvc.yaml:42:9: stages.evaluate.outs[0].eval/plots.cache: {CACHED}
  dvc.yaml:45:9: stages.evaluate.metrics[0].eval/metrics.json.cache: {CACHED}
not converted:
  dvc.yaml:46:1: plots: top-level `plots` is not converted (mlmake has no equivalent section)
wrote mlproject.yaml: 4 steps; recorded 4 up to date as DVC sees them, 0 stale
"""


def test_linear_pipeline_round_trip(tmp_path: Path, env: dict[str, str]) -> None:
    root = built_by_dvc(tmp_path, env, "linear", ("data/data.xml",))
    imported(root, LINEAR_IMPORT)
    assert (root / "mlproject.yaml").read_text().split("\nsteps:\n")[1].startswith("""\
  prepare:
    cmd: [python, src/prepare.py, data/data.xml]
    deps: [data/data.xml, src/prepare.py, params.yaml]
    outs: [data/prepared]
""")
    # a DVC-tracked raw file changes (and is added again): DVC and mlmake name the same stale stage
    with (root / "data" / "data.xml").open("a") as f:
        f.write('<row Id="6" Body="a sixth post"/>\n')
    dvc(env, root, "add", "-q", "data/data.xml")
    assert dvc_stale(env, root) == {"prepare"}
    assert mlmake_stale(root) == {"steps.prepare"}
    plan = run_cli(root, "plan").stdout
    assert " ~ steps.prepare    data/data.xml changed\n" in plan
    assert "Plan: 1 to build, 3 to check after upstream, 0 up to date." in plan
    rebuilt_like_dvc(env, root, LINEAR_OUTS)


def test_linear_code_change_is_stale_in_both(tmp_path: Path, env: dict[str, str]) -> None:
    root = built_by_dvc(tmp_path, env, "linear", ("data/data.xml",))
    imported(root, LINEAR_IMPORT)
    with (root / "src" / "train.py").open("a") as f:
        f.write("TUNED = True\n")
    assert dvc_stale(env, root) == {"train"}
    assert mlmake_stale(root) == {"steps.train"}
    assert " ~ steps.train      code src/train.py changed\n" in run_cli(root, "plan").stdout


def test_a_comment_is_stale_for_dvc_and_up_to_date_for_mlmake(tmp_path: Path, env: dict[str, str]) -> None:
    """Where mlmake goes past DVC: python code counts by its meaning, not its bytes."""
    root = built_by_dvc(tmp_path, env, "linear", ("data/data.xml",))
    imported(root, LINEAR_IMPORT)
    with (root / "src" / "train.py").open("a") as f:
        f.write("# tuned\n")
    assert dvc_stale(env, root) == {"train"}
    assert mlmake_stale(root) == set()
    assert " = steps.train      code src/train.py reformatted, same meaning\n" in run_cli(root, "plan").stdout


def test_an_output_edited_by_hand_is_stale_in_both(tmp_path: Path, env: dict[str, str]) -> None:
    root = built_by_dvc(tmp_path, env, "linear", ("data/data.xml",))
    (root / "model.pkl").write_text("edited\n")
    imported(root, LINEAR_IMPORT.replace("recorded 4 up to date as DVC sees them, 0 stale",
                                         "recorded 2 up to date as DVC sees them, 2 stale"), fresh=False)
    assert dvc_stale(env, root) == {"train", "evaluate"}
    assert mlmake_stale(root) == {"steps.train", "steps.evaluate"}
    assert " ~ steps.train      output model.pkl modified since it was built\n" in run_cli(root, "plan").stdout
    rebuilt_like_dvc(env, root, LINEAR_OUTS)


def test_a_param_change_rebuilds_every_step_reading_the_file(tmp_path: Path, env: dict[str, str]) -> None:
    """The documented difference: DVC compares named keys, the imported steps the whole params file."""
    root = built_by_dvc(tmp_path, env, "linear", ("data/data.xml",))
    imported(root, LINEAR_IMPORT)
    text = (root / "params.yaml").read_text()
    (root / "params.yaml").write_text(text.replace("n_est: 50", "n_est: 60"))
    assert dvc_stale(env, root) == {"train"}
    assert mlmake_stale(root) == {"steps.prepare", "steps.featurize", "steps.train"}
    rebuilt_like_dvc(env, root, LINEAR_OUTS)


FOREACH_IMPORT = """\
  cleanups@raw1 → steps.cleanups-raw1
  cleanups@labels1 → steps.cleanups-labels1
  cleanups@raw2 → steps.cleanups-raw2
  train@0 → steps.train-0
  train@1 → steps.train-1
wrote mlproject.yaml: 5 steps; recorded 5 up to date as DVC sees them, 0 stale
"""


def test_foreach_over_a_list_round_trip(tmp_path: Path, env: dict[str, str]) -> None:
    root = built_by_dvc(tmp_path, env, "foreach")
    imported(root, FOREACH_IMPORT)
    text = (root / "mlproject.yaml").read_text()
    assert "\nparams: {seed: 7}\n" in text
    assert "    cmd: [python, train.py, '10', '15', --seed, '${params.seed}']\n" in text
    (root / "raw2.txt").write_text("RAW2 changed\n")
    assert dvc_stale(env, root) == {"cleanups@raw2"}
    assert mlmake_stale(root) == {"steps.cleanups-raw2"}
    rebuilt_like_dvc(env, root, ("raw1.cln", "labels1.cln", "raw2.cln", "model-3.txt", "model-10.txt"))
    # a templated value, now an mlmake param: the same stages stale as DVC's on params.yaml
    (root / "mlproject.yaml").write_text(text.replace("params: {seed: 7}", "params: {seed: 8}"))
    assert mlmake_stale(root) == {"steps.train-0", "steps.train-1"}
    copy = root.parent / f"{root.name}-dvc"
    (copy / "params.yaml").write_text("seed: 8\n")
    assert dvc_stale(env, copy) == {"train@0", "train@1"}


def test_a_stage_stale_at_import_is_stale_after_it(tmp_path: Path, env: dict[str, str]) -> None:
    """DVC's "changed deps" adopted: the dep is named, the stage's readers wait for it."""
    root = built_by_dvc(tmp_path, env, "foreach")
    (root / "raw1.txt").write_text("RAW1 changed\n")
    imported(root, FOREACH_IMPORT.replace("recorded 5 up to date as DVC sees them, 0 stale",
                                          "recorded 4 up to date as DVC sees them, 1 stale"), fresh=False)
    assert dvc_stale(env, root) == {"cleanups@raw1"}
    assert mlmake_stale(root) == {"steps.cleanups-raw1"}
    plan = run_cli(root, "plan").stdout
    assert " ~ steps.cleanups-raw1     raw1.txt changed\n" in plan
    assert "Plan: 1 to build, 2 to check after upstream, 2 up to date." in plan


MATRIX_IMPORT = """\
  train@cnn-feature1 → steps.train-cnn-feature1
  train@cnn-feature2 → steps.train-cnn-feature2
  train@xgb-feature1 → steps.train-xgb-feature1
  train@xgb-feature2 → steps.train-xgb-feature2
wrote mlproject.yaml: 4 steps; recorded 4 up to date as DVC sees them, 0 stale
"""


def test_matrix_round_trip(tmp_path: Path, env: dict[str, str]) -> None:
    root = built_by_dvc(tmp_path, env, "matrix")
    imported(root, MATRIX_IMPORT)
    (root / "feature2.csv").write_text("x\n1\n2\n3\n")
    assert dvc_stale(env, root) == {"train@cnn-feature2", "train@xgb-feature2"}
    assert mlmake_stale(root) == {"steps.train-cnn-feature2", "steps.train-xgb-feature2"}
    rebuilt_like_dvc(env, root, ("cnn-feature1.pkl", "cnn-feature2.pkl", "xgb-feature1.pkl", "xgb-feature2.pkl"))


UNCONVERTIBLE = """\
vars:
  - threshold: 3
stages:
  fetch:
    cmd: curl -o data.csv https://example.com/data.csv && touch done
    outs: [data.csv]
  split:
    cmd:
      - python split.py
      - python check.py
  clean:
    cmd: python clean.py --min ${threshold}
    wdir: sub
    desc: Drop short rows
    frozen: true
    always_changed: true
    meta: {owner: ana}
    deps:
      - ../raw.csv
      - https://example.com/extra.csv
    params:
      - clean.min
      - config.yaml:
    outs:
      - clean.csv:
          persist: true
          remote: s3
  broken:
    cmd: python x.py ${nowhere}
"""
DIFFERENT = "the command reads it itself; DVC compares only the named keys, mlmake the file"


def test_what_does_not_convert_is_listed_where_it_is(make_project: Any) -> None:
    root = make_project({"dvc.yaml": UNCONVERTIBLE, "params.yaml": "clean: {min: 1}\n", "raw.csv": "a\n",
                         "sub/clean.py": ""})
    result = run_cli(root, "import", "dvc")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"""\
  clean → steps.clean
converted with a difference:
  dvc.yaml:13:5: stages.clean.wdir: mlmake runs commands at the project root, DVC ran this one in sub: \
deps and outs were rebased onto sub/, the command was kept as written (make its relative paths start at the root)
  dvc.yaml:21:5: stages.clean.params: clean.min of params.yaml: the step depends on the whole of sub/params.yaml \
({DIFFERENT})
  dvc.yaml:21:5: stages.clean.params: every key of config.yaml: the step depends on the whole of sub/config.yaml \
({DIFFERENT})
  dvc.yaml:26:11: stages.clean.outs[0].clean.csv.persist: mlmake removes an output before its command runs \
(DVC kept this one)
not converted:
  dvc.yaml:5:5: stages.fetch.cmd: stage fetch not converted: the command uses shell syntax (&&); mlmake runs \
commands without a shell: put it in a script, or write cmd: [sh, -c, '...'] on purpose
  dvc.yaml:8:5: stages.split.cmd: stage split not converted: 2 commands, which DVC runs one after another in a \
shell; mlmake runs one command per step: put them in a script
  dvc.yaml:15:5: stages.clean.frozen: frozen stages are not converted: the step is imported and rebuilds when \
stale (build other targets, or remove the step, to keep it as it is)
  dvc.yaml:16:5: stages.clean.always_changed: mlmake reruns a step only when its fingerprint changes \
(run `mlmake build --force steps.clean` to rerun it)
  dvc.yaml:17:5: stages.clean.meta: free-form metadata has no place in mlproject.yaml
  dvc.yaml:20:9: stages.clean.deps[1]: https://example.com/extra.csv: a URL dependency is not converted \
(download it into the project with `dvc import-url`)
  dvc.yaml:27:11: stages.clean.outs[0].clean.csv.remote: `remote` is not converted (mlmake has no such output option)
  dvc.yaml:28:3: stages.broken: stage broken not converted: '${{nowhere}}' is not defined \
(not in params.yaml nor in vars)
DVC's state not adopted (no DVC repository in {root} (no .dvc folder)): every step is new
wrote mlproject.yaml: 1 step; recorded 0 up to date as DVC sees them, 1 stale
"""
    assert (root / "mlproject.yaml").read_text().split("\nproject: ")[1].split("\n", 1)[1] == """\
params: {threshold: 3}
steps:
  clean:
    cmd: [python, clean.py, --min, '${params.threshold}']
    description: Drop short rows
    deps: [raw.csv, sub/params.yaml, sub/config.yaml]
    outs: [sub/clean.csv]
"""


def test_an_existing_project_file_is_kept_without_force(make_project: Any) -> None:
    root = make_project({"dvc.yaml": "stages:\n  a:\n    cmd: python a.py\n", "mlproject.yaml": "mine\n"})
    result = run_cli(root, "import", "dvc")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"error: mlproject.yaml already exists in {root}; pass --force to overwrite it " \
                            "(and its mlproject.lock)\n"
    assert (root / "mlproject.yaml").read_text() == "mine\n"
    assert run_cli(root, "import", "dvc", "--force").exit_code == 0
    assert "  a:\n    cmd: [python, a.py]\n" in (root / "mlproject.yaml").read_text()


@pytest.mark.parametrize(("text", "stderr"), [
    ("stages:\n  a:\n    cmd: [python\n",
     "dvc.yaml:4:1: invalid YAML: expected ',' or ']', but got '<stream end>'\n1 error found\n"),
    ("stages: [1]\n",
     "dvc.yaml:1:9: stages: expected a mapping of stages\n  stages: [1]\n          ^\n1 error found\n"),
    ("stages:\n  a:\n    cmd: ls | wc -l\n",
     "error: nothing in dvc.yaml could be converted; mlproject.yaml not written:\n"
     "dvc.yaml:3:5: stages.a.cmd: stage a not converted: the command uses shell syntax (|); mlmake runs commands "
     "without a shell: put it in a script, or write cmd: [sh, -c, '...'] on purpose\n"),
])
def test_a_broken_or_empty_pipeline_is_a_located_error(make_project: Any, text: str, stderr: str) -> None:
    root = make_project({"dvc.yaml": text})
    result = run_cli(root, "import", "dvc")
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", stderr)
    assert not (root / "mlproject.yaml").exists()


def test_no_pipeline_here(make_project: Any) -> None:
    root = make_project({"x.txt": ""})
    result = run_cli(root, "import", "dvc")
    assert (result.exit_code, result.stderr) == (1, f"error: no dvc.yaml in {root}\n")
    result = run_cli(root, "import", "dvc", "missing")
    assert (result.exit_code, result.stderr) == (1, "error: missing: no such directory\n")


NAMING = """\
vars:
  - regions: {us: {lr: 1}, eu-west: {lr: 2}}
stages:
  fit:
    foreach: ${regions}
    do:
      cmd: python fit.py ${key} ${item.lr}
      outs: ["fit-${key}.txt"]
  grid:
    matrix:
      scaled: [true, false]
      lr: [0.1]
      opts: [{a: 1}]
    cmd: python grid.py ${item.scaled} ${item.lr} ${item.opts.a}
    outs: ["grid-${item.scaled}-${item.lr}.txt"]
"""


def test_names_are_dvcs_own(tmp_path: Path, env: dict[str, str]) -> None:
    """foreach over a mapping from vars, and a matrix of booleans, numbers and a mapping: the
    stages are those `dvc stage list` names, each with its command written out."""
    root = tmp_path / "p"
    root.mkdir()
    (root / "dvc.yaml").write_text(NAMING)
    run(env, root, "git", "init", "-q")
    dvc(env, root, "init", "-q")
    listed = [line.split()[0] for line in dvc(env, root, "stage", "list").splitlines()]
    assert listed == ["fit@us", "fit@eu-west", "grid@true-0.1-opts0", "grid@false-0.1-opts0"]
    result = run_cli(root, "import", "dvc")
    assert result.stdout.splitlines()[:4] == [
        "  fit@us → steps.fit-us", "  fit@eu-west → steps.fit-eu-west",
        "  grid@true-0.1-opts0 → steps.grid-true-0_1-opts0", "  grid@false-0.1-opts0 → steps.grid-false-0_1-opts0"]
    steps = (root / "mlproject.yaml").read_text().split("\nsteps:\n")[1]
    assert [line.strip() for line in steps.splitlines() if "cmd:" in line] == [
        "cmd: [python, fit.py, us, '1']", "cmd: [python, fit.py, eu-west, '2']",
        "cmd: [python, grid.py, 'true', '0.1', '1']", "cmd: [python, grid.py, 'false', '0.1', '1']"]
