"""Declared environment variables through the CLI: any node lists `env: [NAME, …]`; their
values (as a hash, never the value) or their absence enter its fingerprint and `plan` names a
change; a `cmd` step sees only its declared variables and a documented minimal set, so an
undeclared variable cannot change an output behind the fingerprint's back.

Before: `GEN_AMOUNT_SCALE=2 mlmake build` after a build called every node up to date, and
the command saw every variable of the shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlmake.state.lock import read_lock

PROJECT = """\
version: 1
project: envs
steps:
  gen:
    cmd: [python, scripts/gen.py, out/env.json]
    env: [GEN_AMOUNT_SCALE]
    outs: [out/env.json]
  plain:
    cmd: [python, scripts/gen.py, out/plain.json]
    outs: [out/plain.json]
"""
# the command prints its whole environment into its output
SCRIPT = "import json, os, sys\n\njson.dump(dict(os.environ), open(sys.argv[1], 'w'), sort_keys=True)\n"
FILES: dict[str, str | bytes] = {"mlproject.yaml": PROJECT, "scripts/gen.py": SCRIPT}
SECRET = "s3cr3t-value-never-printed"


def seen(root: Path, name: str = "env") -> dict[str, str]:
    return json.loads((root / f"out/{name}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.fixture()
def scale(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("GEN_AMOUNT_SCALE", "1")
    monkeypatch.setenv("UNDECLARED_KNOB", "7")
    return monkeypatch


def test_a_declared_variable_change_rebuilds_and_is_named(make_project: Any, run_cli: Any,
                                                          scale: pytest.MonkeyPatch) -> None:
    root = make_project(FILES)
    assert run_cli(root, "build").exit_code == 0
    assert seen(root)["GEN_AMOUNT_SCALE"] == "1"
    scale.setenv("GEN_AMOUNT_SCALE", SECRET)
    plan = run_cli(root, "plan")
    assert plan.stdout == (" ~ steps.gen    env GEN_AMOUNT_SCALE changed\n"
                           " = steps.plain\n"
                           "\nPlan: 1 to build, 1 up to date.\n")
    as_json = run_cli(root, "plan", "--format", "json").stdout
    assert SECRET not in as_json and '"code": "env"' in as_json
    result = run_cli(root, "build")
    assert result.exit_code == 0, result.stderr
    assert seen(root)["GEN_AMOUNT_SCALE"] == SECRET
    assert SECRET not in (root / "mlproject.lock").read_text(encoding="utf-8")
    assert run_cli(root, "plan", "--detailed-exitcode").exit_code == 0


def test_set_and_unset_are_named_as_such(make_project: Any, run_cli: Any, scale: pytest.MonkeyPatch) -> None:
    root = make_project(FILES)
    assert run_cli(root, "build").exit_code == 0
    scale.delenv("GEN_AMOUNT_SCALE")
    assert run_cli(root, "plan").stdout.splitlines()[0] == " ~ steps.gen    env GEN_AMOUNT_SCALE unset (was set)"
    assert run_cli(root, "build").exit_code == 0
    assert "GEN_AMOUNT_SCALE" not in seen(root)
    scale.setenv("GEN_AMOUNT_SCALE", "3")
    assert run_cli(root, "plan").stdout.splitlines()[0] == " ~ steps.gen    env GEN_AMOUNT_SCALE set (was unset)"


def test_an_undeclared_variable_is_not_visible_to_the_command(make_project: Any, run_cli: Any,
                                                               scale: pytest.MonkeyPatch) -> None:
    root = make_project(FILES)
    assert run_cli(root, "build").exit_code == 0
    for name in ("env", "plain"):
        assert "UNDECLARED_KNOB" not in seen(root, name)
        assert "PATH" in seen(root, name)  # the minimal set still runs programs as on this machine
    assert "GEN_AMOUNT_SCALE" not in seen(root, "plain")  # declared by the other step only
    scale.setenv("UNDECLARED_KNOB", "8")
    assert run_cli(root, "plan", "--detailed-exitcode").exit_code == 0  # it cannot change an output


def test_declaring_a_variable_is_a_change_and_the_lock_holds_a_hash(make_project: Any, run_cli: Any,
                                                                     scale: pytest.MonkeyPatch) -> None:
    root = make_project(FILES)
    assert run_cli(root, "build").exit_code == 0
    assert dict(read_lock(root).nodes["steps.gen"].components.env) == {
        "GEN_AMOUNT_SCALE": read_lock(root).nodes["steps.gen"].components.env["GEN_AMOUNT_SCALE"]}
    assert read_lock(root).nodes["steps.gen"].components.env["GEN_AMOUNT_SCALE"] != "1"
    assert "env" not in read_lock(root).nodes["steps.plain"].to_dict()  # no env: the fingerprint as before
    (root / "mlproject.yaml").write_text(PROJECT.replace("outs: [out/plain.json]",
                                                         "outs: [out/plain.json]\n    env: [UNDECLARED_KNOB]"))
    assert run_cli(root, "plan").stdout.splitlines()[1] == " ~ steps.plain  env UNDECLARED_KNOB now declared"


def test_a_bad_variable_name_is_a_located_error(make_project: Any, run_cli: Any) -> None:
    root = make_project({**FILES, "mlproject.yaml": PROJECT.replace("[GEN_AMOUNT_SCALE]", "[GEN-SCALE]")})
    result = run_cli(root, "validate")
    assert result.exit_code == 1
    assert result.stderr == (
        "mlproject.yaml:6:11: steps.gen.env[0]: expected an environment variable's name (letters, digits and '_', "
        "not starting with a digit), got 'GEN-SCALE'\n"
        "      env: [GEN-SCALE]\n"
        "            ^\n"
        "1 error found\n")


DATASET = """\
version: 1
project: envs
datasets:
  customers:
    path: data/customers.csv
    env: [EXPORT_REGION]
"""


def test_any_kind_declares_env_and_why_lists_it(make_project: Any, run_cli: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXPORT_REGION", raising=False)
    root = make_project({"mlproject.yaml": DATASET, "data/customers.csv": "customer_id\n1\n"})
    assert run_cli(root, "build").exit_code == 0
    monkeypatch.setenv("EXPORT_REGION", "north")
    assert run_cli(root, "plan").stdout.splitlines()[0] == " ~ datasets.customers  env EXPORT_REGION set (was unset)"
    why = run_cli(root, "why", "datasets.customers").stdout.splitlines()
    env = why.index("~ env")
    assert why[env + 1].startswith("    ~ EXPORT_REGION: unset → ") and "north" not in "\n".join(why)
