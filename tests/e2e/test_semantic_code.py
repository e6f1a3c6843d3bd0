"""Python code is fingerprinted by its meaning: a comment, a reformat or a docstring edit of
a `python:` hook or a step's script rebuilds nothing, and `plan` says why the node is up to
date (text, JSON, markdown); a real change rebuilds. Other files keep byte hashing.

Before: adding a comment to features/build.py planned `~ features.spend  code
features/build.py changed` and retrained everything downstream of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlmake.state.lock import read_lock

PROJECT = """\
version: 1
project: meaning
datasets:
  customers:
    path: data/customers.csv
features:
  spend:
    from: customers
    key: customer_id
    python: features/build.py:spend
steps:
  report:
    cmd: [python, scripts/report.py, out/report.txt]
    deps: [scripts/words.txt]
    outs: [out/report.txt]
"""
HOOK = '''\
"""Feature hooks."""
import polars as pl


def spend(customers):
    """Spend in cents."""
    return customers.with_columns((pl.col("amount") * 100).alias("spend"))
'''
REFORMATTED = '''\
"""Feature hooks: spend per customer."""
import polars as pl

# a comment, another docstring, other quotes and line breaks: the same code
def spend( customers ):
    """Spend per customer, in cents."""
    return customers.with_columns(
        (pl.col('amount') * 100).alias('spend'),
    )
'''
SCRIPT = "import sys\n\nopen(sys.argv[1], 'w').write('one')\n"
FILES: dict[str, str | bytes] = {
    "mlproject.yaml": PROJECT,
    "data/customers.csv": "customer_id,amount\n1,2.5\n2,3.0\n",
    "features/build.py": HOOK,
    "scripts/report.py": SCRIPT,
    "scripts/words.txt": "one\n",
}


def built(make_project: Any, run_cli: Any) -> Path:
    root = make_project(FILES)
    result = run_cli(root, "build")
    assert result.exit_code == 0, result.stderr
    return root


def test_a_reformatted_hook_rebuilds_nothing_and_the_plan_says_why(make_project: Any, run_cli: Any) -> None:
    root = built(make_project, run_cli)
    (root / "features/build.py").write_text(REFORMATTED, encoding="utf-8")
    plan = run_cli(root, "plan", "--detailed-exitcode")
    assert plan.exit_code == 0
    assert plan.stdout == (" = datasets.customers\n"
                           " = features.spend      code features/build.py reformatted, same meaning\n"
                           " = steps.report\n"
                           "\nPlan: 0 to build, 3 up to date.\n")
    build = run_cli(root, "build")
    assert build.exit_code == 0, build.stderr
    assert build.stdout == "Nothing to build: every node is up to date.\nBuild: 0 built, 3 up to date.\n"
    # the lock now records the new bytes, as a clean build would: the note is gone
    assert run_cli(root, "plan").stdout.splitlines()[1] == " = features.spend"


def test_the_json_and_markdown_plans_carry_the_note(make_project: Any, run_cli: Any) -> None:
    root = built(make_project, run_cli)
    (root / "features/build.py").write_text(REFORMATTED, encoding="utf-8")
    nodes = {n["address"]: n for n in json.loads(run_cli(root, "plan", "--format", "json").stdout)["nodes"]}
    spend = nodes["features.spend"]
    assert spend["action"] == "fresh"
    assert [(r["code"], r["subject"], r["text"]) for r in spend["reasons"]] == [
        ("code_reformatted", "features/build.py", "code features/build.py reformatted, same meaning")]
    markdown = run_cli(root, "plan", "--format", "markdown").stdout
    assert "Nothing to build: every node is up to date." in markdown
    assert "| `=` | `features.spend` | features | code features/build.py reformatted, same meaning |" in markdown


def test_a_real_change_of_the_hook_rebuilds(make_project: Any, run_cli: Any) -> None:
    root = built(make_project, run_cli)
    (root / "features/build.py").write_text(HOOK.replace("* 100", "* 1000"), encoding="utf-8")
    assert run_cli(root, "plan").stdout.splitlines()[1] == " ~ features.spend      code features/build.py changed"
    assert run_cli(root, "build").exit_code == 0
    assert run_cli(root, "plan", "--detailed-exitcode").exit_code == 0


def test_a_commented_step_script_rebuilds_nothing_a_changed_one_does(make_project: Any, run_cli: Any) -> None:
    root = built(make_project, run_cli)
    commented = "# writes the report\nimport sys\nopen(sys.argv[1], \"w\").write(\"one\")\n"
    (root / "scripts/report.py").write_text(commented, encoding="utf-8")
    assert run_cli(root, "plan").stdout.splitlines()[2] == (
        " = steps.report        code scripts/report.py reformatted, same meaning")
    (root / "scripts/report.py").write_text(SCRIPT.replace("one", "two"), encoding="utf-8")
    assert run_cli(root, "plan").stdout.splitlines()[2] == " ~ steps.report        code scripts/report.py changed"
    assert run_cli(root, "build").exit_code == 0
    assert (root / "out/report.txt").read_text() == "two"


def test_a_file_that_is_not_python_keeps_byte_hashing(make_project: Any, run_cli: Any) -> None:
    root = built(make_project, run_cli)
    (root / "scripts/words.txt").write_text("one \n", encoding="utf-8")  # only whitespace, still a change
    assert run_cli(root, "plan").stdout.splitlines()[2] == " ~ steps.report        scripts/words.txt changed"


def test_the_lock_records_the_meaning_and_the_bytes_of_python_code(make_project: Any, run_cli: Any) -> None:
    root = built(make_project, run_cli)
    entry = read_lock(root).nodes["features.spend"]
    assert entry.components.code["features/build.py"].startswith("py:")
    assert list(entry.code_bytes) == ["features/build.py"]
    assert not entry.code_bytes["features/build.py"].startswith("py:")
