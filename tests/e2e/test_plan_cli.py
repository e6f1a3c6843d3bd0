"""`mlmake plan` on copies of examples/: golden text, JSON and markdown, and its exit codes.

Golden files live in tests/golden/; `UPDATE_GOLDEN=1 pytest tests/e2e/test_plan_cli.py` rewrites
them (then read the diff). Fingerprints are masked in the JSON goldens: they cover library
versions, which change with every upgrade; everything else is exact.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import Result

from tests.fakes import record_build
from tests.helpers import copy_example as copy_clean

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
RunCli = Callable[..., Result]


def copy_example(name: str, tmp_path: Path) -> Path:
    dest = tmp_path / name
    copy_clean(name, dest)
    return dest


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"no golden file {path}; run with UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_text(encoding="utf-8"), f"{name} differs (UPDATE_GOLDEN=1 rewrites it)"


def plan_schema() -> dict[str, Any]:
    return json.loads((REPO / "schemas" / "plan.schema.json").read_text(encoding="utf-8"))


def masked_json(stdout: str) -> str:
    """The JSON plan, validated against its schema, with fingerprints masked."""
    body = json.loads(stdout)
    jsonschema.validate(body, plan_schema())
    assert HEX32.match(body["plan_hash"]), body["plan_hash"]
    body["plan_hash"] = "<plan hash>"  # of the fingerprints: library versions move it
    for node in body["nodes"]:
        assert HEX32.match(node["fingerprint"]) or node["action"] == "remove", node
        node["fingerprint"] = "<fingerprint>" if node["fingerprint"] else ""
        for reason in node["reasons"]:
            if reason["code"] == "lineage":  # an upstream node's fingerprints, recorded and current
                reason["old"], reason["new"] = "<fingerprint>", "<fingerprint>"
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def plan_all_formats(run_cli: RunCli, root: Path, name: str, *args: str) -> None:
    """Check the text, JSON and markdown plans of root against the goldens name.{txt,json,md}."""
    for fmt, suffix in (("text", "txt"), ("json", "json"), ("markdown", "md")):
        result = run_cli(root, "plan", "--format", fmt, *args)
        assert result.exit_code == 0, result.stderr
        assert result.stderr == ""
        assert "\x1b[" not in result.stdout  # no colour when not a terminal
        check_golden(f"{name}.{suffix}", masked_json(result.stdout) if fmt == "json" else result.stdout)


@pytest.mark.parametrize("example", ["penguins", "churn"])
def test_a_fresh_example_plans_every_node_as_new(run_cli: RunCli, tmp_path: Path, example: str) -> None:
    root = copy_example(example, tmp_path)
    plan_all_formats(run_cli, root, f"{example}_fresh")
    assert run_cli(root, "plan", "--detailed-exitcode").exit_code == 2
    assert not (root / "mlproject.lock").exists()  # plan writes no lock


@pytest.mark.parametrize(("example", "override", "golden"), [
    ("penguins", "seed=7", "penguins_seed"),
    ("churn", "seed=7", "churn_seed"),
    ("churn", "models.churn_xgb.params.max_depth=5", "churn_max_depth"),
])
def test_a_param_override_after_a_build(run_cli: RunCli, tmp_path: Path, example: str, override: str,
                                        golden: str) -> None:
    root = copy_example(example, tmp_path)
    record_build(root)
    built = run_cli(root, "plan", "--detailed-exitcode")
    assert (built.exit_code, built.stderr) == (0, "")
    nodes = len(built.stdout.splitlines()) - 2
    assert built.stdout.endswith(f"\nPlan: 0 to build, {nodes} up to date.\n")
    assert all(line.startswith(" = ") for line in built.stdout.splitlines()[:nodes])

    plan_all_formats(run_cli, root, golden, "-P", override)
    result = run_cli(root, "plan", "--detailed-exitcode", "-P", override)
    assert result.exit_code == 2
    key, _, value = override.partition("=")
    assert re.search(rf"^ ~ models\.\S+ +params\.{key.rsplit('.', 1)[-1]} \S+ → {value}$", result.stdout,
                     re.MULTILINE), result.stdout


def test_the_detailed_exit_code_is_1_on_an_error(run_cli: RunCli, tmp_path: Path) -> None:
    root = copy_example("penguins", tmp_path)
    result = run_cli(root, "plan", "--detailed-exitcode", "nosuch")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "error: unknown target 'nosuch'\n"
    (root / "mlproject.yaml").write_text("version: 1\nproject: [\n")
    result = run_cli(root, "plan", "--detailed-exitcode")
    assert result.exit_code == 1
    assert result.stderr.startswith("mlproject.yaml:3:1: invalid YAML")


def test_a_target_and_downstream_on_the_cli(run_cli: RunCli, tmp_path: Path) -> None:
    root = copy_example("churn", tmp_path)
    record_build(root)
    result = run_cli(root, "plan", "customer_features", "-P", "rows=10")
    assert result.stdout == (
        " ~ steps.generate              params.rows 1000 → 10\n"
        "~? datasets.customers          upstream steps.generate will rebuild; rebuilds only if its output changes\n"
        "~? datasets.events             upstream steps.generate will rebuild; rebuilds only if its output changes\n"
        "~? features.customer_features  upstream datasets.customers will rebuild; rebuilds only if its output "
        "changes\n"
        "                               upstream datasets.events will rebuild; rebuilds only if its output "
        "changes\n"
        "\n"
        "Plan: 1 to build, 3 to check after upstream, 0 up to date.\n")
    result = run_cli(root, "plan", "datasets.events", "--downstream", "--force", "--format", "json")
    nodes = {n["address"]: (n["action"], [r["text"] for r in n["reasons"]]) for n in json.loads(result.stdout)["nodes"]}
    # --force applies to the named targets; what reads them waits on them, what they read stays
    assert nodes.pop("steps.generate") == ("fresh", [])
    assert nodes.pop("datasets.customers") == ("fresh", [])
    assert nodes.pop("datasets.events") == ("build", ["forced"])
    assert {"features.customer_features", "models.churn_xgb", "steps.report"} <= set(nodes)
    assert {action for action, _ in nodes.values()} == {"maybe"}


def test_a_real_process_prints_the_golden_text_without_colour(tmp_path: Path) -> None:
    root = copy_example("penguins", tmp_path)
    done = subprocess.run([sys.executable, "-m", "mlmake", "-C", str(root), "plan", "--detailed-exitcode"],
                          capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TERM")})
    assert (done.returncode, done.stderr) == (2, "")
    check_golden("penguins_fresh.txt", done.stdout)
