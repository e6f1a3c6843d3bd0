"""`mlmake validate`, `schema`, `init`, `--version` and `-C` through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from mlmake import __version__
from mlmake.core.schema import data_dir
from tests.helpers import VALID

MakeProject = Callable[[dict[str, str | bytes]], Path]
RunCli = Callable[..., Result]
F = "mlproject.yaml"
OK = "mlproject.yaml is valid: 4 nodes (1 datasets, 1 features, 1 models, 1 steps)\n"

BROKEN = VALID.replace("task: binary", "task: binry").replace(
    "features: customer_features", "features: custmer_features").replace("data/customers.csv", "../customers.csv")
BROKEN_ERRORS = textwrap.dedent("""\
    mlproject.yaml:18:11: models.churn.task: expected one of 'binary', 'multiclass', 'regression'; got 'binry'
          task: binry
                ^
      hint: did you mean 'binary'?
    1 error found
    """)

# one file per kind of mistake: each must give exit 1, its message on stderr, no traceback
MISTAKES = {
    "yaml syntax": "version: 1\nproject: [demo\n",
    "object tag": "version: 1\nproject: !!python/object/apply:os.system [echo hi]\n",
    "duplicate key": VALID + "project: again\n",
    "unknown key": VALID.replace("    key: customer_id", "    keys: customer_id"),
    "wrong type": VALID.replace('seed: "${params.seed}"', "seed: six"),
    "bad enum": VALID.replace("task: binary", "task: binry"),
    "missing key": VALID.replace("    target: churned\n", ""),
    "missing param": VALID.replace("${params.seed}", "${params.sed}"),
    "version": VALID.replace("version: 1", "version: 2"),
    "unknown reference": VALID.replace("features: customer_features", "features: custmer_features"),
    "self reference": VALID.replace("from: customers", "from: [customers, customer_features]"),
    "cycle": VALID.replace("data/customers.csv", "build/report.html"),
    "duplicate outputs": VALID + "  again: {cmd: echo, outs: [build/report.html]}\n",
    "path leaves": VALID.replace("data/customers.csv", "../x.csv"),
    "absolute path": VALID.replace("data/customers.csv", "/etc/passwd"),
    "top is a list": "- version: 1\n",
    "not utf-8": b"version: 1\nproject: \xff\n",
}


def assert_user_error(result: Result) -> None:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr
    assert "Traceback" not in result.output and "internal error" not in result.output


def test_validate_a_valid_project(make_project: MakeProject, run_cli: RunCli) -> None:
    result = run_cli(make_project({F: VALID}), "validate")
    assert (result.exit_code, result.stdout, result.stderr) == (0, OK, "")


def test_validate_again_uses_the_cache_and_says_the_same(make_project: MakeProject, run_cli: RunCli) -> None:
    root = make_project({F: VALID})
    first, second = run_cli(root, "validate"), run_cli(root, "validate")
    assert (second.exit_code, second.stdout, second.stderr) == (first.exit_code, first.stdout, first.stderr)


def test_an_edit_after_a_valid_run_is_checked(make_project: MakeProject, run_cli: RunCli) -> None:
    root = make_project({F: VALID})
    assert run_cli(root, "validate").exit_code == 0
    make_project({F: VALID.replace("task: binary", "task: binry")})
    assert run_cli(root, "validate").stderr == BROKEN_ERRORS
    make_project({F: VALID})
    assert run_cli(root, "validate").stdout == OK


def test_validate_reports_every_error_on_stderr(make_project: MakeProject, run_cli: RunCli) -> None:
    text = (VALID.replace("task: binary", "task: binry").replace("    key: customer_id", "    keys: customer_id")
            .replace("seed: 42", "seed: six") + "colour: blue\n")
    result = run_cli(make_project({F: text}), "validate")
    assert_user_error(result)
    assert result.stderr == textwrap.dedent("""\
        mlproject.yaml:12:5: features.customer_features.keys: unknown key 'keys'
              keys: customer_id
              ^
          hint: did you mean 'key'?
        mlproject.yaml:18:11: models.churn.task: expected one of 'binary', 'multiclass', 'regression'; got 'binry'
              task: binry
                    ^
          hint: did you mean 'binary'?
        mlproject.yaml:19:53: models.churn.split.seed: expected an integer, got 'six'
              split: {test_size: "${params.test_size}", seed: "${params.seed}"}
                                                              ^
        mlproject.yaml:26:1: colour: unknown key 'colour'
          colour: blue
          ^
          hint: allowed keys: version, project, description, params, environments, remote, datasets, features, \
models, steps, deploy, cards
        4 errors found
        """)


def test_reference_and_path_errors_wait_for_a_well_formed_file(make_project: MakeProject, run_cli: RunCli) -> None:
    # references and paths are checked once the file matches the schema: only the enum shows here
    result = run_cli(make_project({F: BROKEN}), "validate")
    assert_user_error(result)
    assert result.stderr == BROKEN_ERRORS


def test_path_errors_are_reported_together(make_project: MakeProject, run_cli: RunCli) -> None:
    text = VALID.replace("data/customers.csv", "../customers.csv").replace("build/report.html", "/tmp/report.html")
    result = run_cli(make_project({F: text}), "validate")
    assert_user_error(result)
    assert result.stderr == textwrap.dedent("""\
        mlproject.yaml:8:11: datasets.customers.path: the path '../customers.csv' leaves the project
              path: ../customers.csv
                    ^
          hint: paths are relative to the project folder
        mlproject.yaml:25:12: steps.report.outs[0]: the path '/tmp/report.html' must be relative to the project
              outs: [/tmp/report.html]
                     ^
          hint: paths are relative to the project folder
        2 errors found
        """)


@pytest.mark.parametrize("name", list(MISTAKES))
def test_every_kind_of_mistake_is_a_clean_user_error(make_project: MakeProject, run_cli: RunCli, name: str) -> None:
    result = run_cli(make_project({F: MISTAKES[name]}), "validate")
    assert_user_error(result)
    first = result.stderr.splitlines()[0]
    assert first.startswith(("mlproject.yaml:", "error: cannot read ")), first
    assert result.stderr.endswith(("error found\n", "errors found\n")) or first.startswith("error: ")


def test_override_and_env_on_the_command_line(make_project: MakeProject, run_cli: RunCli) -> None:
    root = make_project({F: VALID.replace("params:\n", "environments: {dev: {params: {seed: 1}}}\nparams:\n")})
    ok = run_cli(root, "validate", "--env", "dev", "-P", "seed=7", "-P", "models.churn.params.max_depth=8")
    assert (ok.exit_code, ok.stdout) == (0, OK)
    result = run_cli(root, "validate", "--env", "prd", "-P", "models.churn.task=binry", "-P", "oops")
    assert_user_error(result)
    assert result.stderr == "-P oops: expected KEY=VALUE\n  hint: for example -P seed=7\n1 error found\n"
    result = run_cli(root, "validate", "--env", "prd", "-P", "models.churn.task=binry")
    assert_user_error(result)
    assert result.stderr == textwrap.dedent("""\
        --env prd: environments: unknown environment 'prd'
          hint: known: dev
        -P models.churn.task=binry: models.churn.task: expected one of 'binary', 'multiclass', 'regression'; got 'binry'
          hint: did you mean 'binary'?
        2 errors found
        """)


def test_an_override_after_a_cached_valid_run_is_checked(make_project: MakeProject, run_cli: RunCli) -> None:
    root = make_project({F: VALID})
    assert run_cli(root, "validate").exit_code == 0
    assert_user_error(run_cli(root, "validate", "-P", "seed=six"))


def test_version(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli(tmp_path, "--version")
    assert (result.exit_code, result.stdout) == (0, f"mlmake, version {__version__}\n")


def test_schema_prints_the_published_file(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli(tmp_path, "schema")
    assert result.exit_code == 0
    published = Path(__file__).resolve().parents[2] / "schemas" / "mlproject.schema.json"
    assert result.stdout == published.read_text(encoding="utf-8")
    assert json.loads(result.stdout)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_missing_directory(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli(tmp_path / "nope", "validate")
    assert_user_error(result)
    assert result.stderr == f"error: -C {tmp_path / 'nope'}: no such directory\n"


def test_directory_without_a_project_file(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli(tmp_path, "validate")
    assert_user_error(result)
    assert result.stderr == (
        f"error: no mlproject.yaml in {tmp_path.resolve()} (run `mlmake init` to create one, or pass -C DIR)\n")


def test_help(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli(tmp_path, "validate", "--help")
    assert result.exit_code == 0 and "Check mlproject.yaml" in result.stdout


@pytest.mark.parametrize("text", [
    "version: 1\nproject: demo\nsteps:\n  s: {cmd: 'echo \"unclosed'}\n",
    "version: 1\nproject: demo\nparams: {a: !!int abc}\n",
    "version: 1\nproject: demo\nfeatures:\n  f:\n",
], ids=["cmd quote", "int tag", "empty feature"])
def test_loader_crashes_are_user_errors(make_project: MakeProject, run_cli: RunCli, text: str) -> None:
    assert_user_error(run_cli(make_project({F: text}), "validate"))


def test_python_dash_m_for_real(make_project: MakeProject) -> None:
    root = make_project({F: VALID})
    env = {k: v for k, v in os.environ.items() if k != "MLMAKE_DEBUG"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mlmake", *args], cwd=root, env=env, capture_output=True,
                              text=True, timeout=60, check=False)

    ok = run("validate")
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, OK, "")
    (root / F).write_text(VALID.replace("task: binary", "task: binry"), encoding="utf-8")
    bad = run("-C", str(root), "validate")
    assert (bad.returncode, bad.stdout, bad.stderr) == (1, "", BROKEN_ERRORS)


# --- init --------------------------------------------------------------------------

TEMPLATES = data_dir() / "templates"
needs_templates = pytest.mark.skipif(not (TEMPLATES / "binary" / F).is_file(),
                                     reason="templates/binary/mlproject.yaml is not written yet")


def template_files(name: str) -> set[str]:
    root = TEMPLATES / name
    skip = {"__pycache__", "build", ".mlmake"}
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and not skip & set(p.relative_to(root).parts)} | {"mlproject.schema.json"}


def files_under(root: Path) -> set[str]:
    managed = {".mlmake", ".git", ".dvc", ".dvcignore"}  # set up by init, checked separately
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and not managed & set(p.relative_to(root).parts)}


@needs_templates
def test_init_creates_the_template_files(run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the hint names the folder as seen from where the user is
    monkeypatch.delenv("MLMAKE_REMOTE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # the machine's shared default remote
    result = run_cli(tmp_path, "init", "churn-app")
    target = tmp_path.resolve() / "churn-app"
    expected = template_files("binary")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (f"created {len(expected)} files in {target} from template 'binary'\n"
                             "initialized a git repository\n"
                             f"DVC is set up: remote 'mlmake' at {tmp_path / 'xdg' / 'mlmake' / 'remote'}\n"
                             "next: mlmake -C churn-app build\n")
    assert files_under(target) == expected
    assert (target / ".git").is_dir() and (target / ".dvc" / "config").is_file()
    published = data_dir() / "schemas" / "mlproject.schema.json"
    assert (target / "mlproject.schema.json").read_bytes() == published.read_bytes()


@needs_templates
def test_init_names_the_project_after_the_folder(run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli(tmp_path, "init", "churn-app").exit_code == 0
    lines = (tmp_path / "churn-app" / F).read_text(encoding="utf-8").splitlines()
    assert [line for line in lines if line.startswith("project:")] == ["project: churn-app"]


@needs_templates
def test_init_here_with_a_folder_name_that_is_not_a_name(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "9 lives"
    here.mkdir()
    monkeypatch.chdir(here)
    result = run_cli(here, "init")
    assert result.exit_code == 0 and result.stdout.endswith("next: mlmake build\n")
    assert "\nproject: p9_lives\n" in (here / F).read_text(encoding="utf-8")
    assert run_cli(here, "validate").exit_code == 0


@needs_templates
def test_init_hint_from_elsewhere_quotes_the_path(run_cli: RunCli, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "i").mkdir()
    monkeypatch.chdir(tmp_path)
    result = run_cli(tmp_path / "i", "init", "my app")
    assert result.stdout.endswith("next: mlmake -C 'i/my app' build\n")


@needs_templates
def test_init_refuses_to_overwrite_without_force(run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli(tmp_path, "init", "app").exit_code == 0
    mine = tmp_path / "app" / F
    mine.write_text("version: 1\nproject: mine\n", encoding="utf-8")
    result = run_cli(tmp_path, "init", "app")
    assert_user_error(result)
    assert result.stderr == f"error: {tmp_path.resolve() / 'app' / F} already exists (use --force to overwrite)\n"
    assert mine.read_text(encoding="utf-8") == "version: 1\nproject: mine\n"
    forced = run_cli(tmp_path, "init", "app", "--force")
    assert forced.exit_code == 0
    assert "\nproject: app\n" in mine.read_text(encoding="utf-8")


@needs_templates
def test_refused_init_writes_nothing(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("my readme\n", encoding="utf-8")
    assert_user_error(run_cli(tmp_path, "init"))
    assert files_under(tmp_path) == {"README.md"}


@needs_templates
def test_init_unknown_template(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli(tmp_path, "init", "app", "--template", "binar")
    assert_user_error(result)
    assert result.stderr.startswith("error: unknown template 'binar' (did you mean 'binary'?); available: binary")
    assert not (tmp_path / "app").exists()
    result = run_cli(tmp_path, "init", "app", "--template", "zzz")
    assert_user_error(result)
    assert result.stderr.startswith("error: unknown template 'zzz'; available: binary")


@needs_templates
def test_init_list(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli(tmp_path, "init", "--list")
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.stdout.splitlines()] == sorted(
        p.name for p in TEMPLATES.iterdir() if (p / F).is_file())


@needs_templates
@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.iterdir() if (p / F).is_file())
                         if TEMPLATES.is_dir() else [])
def test_every_template_validates(run_cli: RunCli, tmp_path: Path, template: str) -> None:
    assert run_cli(tmp_path, "init", "app", "--template", template).exit_code == 0
    result = run_cli(tmp_path / "app", "validate")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.startswith("mlproject.yaml is valid: ")
