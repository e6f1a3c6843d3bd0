"""Code dependencies through the CLI: a `python:` hook's fingerprint covers the project
modules it imports (transitively, relative imports and imports inside functions too), a
`python SCRIPT` or `python -m MODULE` step's the same, and every kind takes `deps:` for
files no analysis can see. Libraries stay library versions, never files.

Before: editing a module a feature hook imported planned "0 to build" and the table kept
the old values (6182.7 where a clean build gives 618270).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

PROJECT = """\
version: 1
project: hooks
datasets:
  customers:
    path: data/customers.csv
features:
  spend:
    from: customers
    key: customer_id
    python: features/build.py:spend
"""
FILES: dict[str, str | bytes] = {
    "mlproject.yaml": PROJECT,
    "data/customers.csv": "customer_id,amount\n1,6182.7\n2,3.5\n",
    "features/__init__.py": "",
    "features/build.py": """\
import json

import polars as pl

from features.units import SCALE


def spend(customers):
    from features.rounding import DIGITS  # imported where it is used: still a dependency

    return customers.with_columns((pl.col("amount") * SCALE).round(DIGITS).alias("spend"))
""",
    "features/units.py": "from .constants import CENTS  # noqa: F401\n\nSCALE = 1\n",
    "features/constants.py": "CENTS = 100\n",
    "features/rounding.py": "DIGITS = 2\n",
}


def spend(root: Path) -> list[float]:
    return pl.read_parquet(root / "build/features/spend/data.parquet")["spend"].to_list()


def test_editing_a_module_a_hook_imports_rebuilds_the_feature_set(make_project: Any, run_cli: Any) -> None:
    root = make_project(FILES)
    assert run_cli(root, "build").exit_code == 0
    assert spend(root) == [6182.7, 3.5]
    (root / "features/units.py").write_text("SCALE = 100\n", encoding="utf-8")
    plan = run_cli(root, "plan")
    assert plan.stdout == (" = datasets.customers\n"
                           " ~ features.spend      features/constants.py no longer read\n"
                           "                       code features/units.py changed\n"
                           "\nPlan: 1 to build, 1 up to date.\n")
    result = run_cli(root, "build")
    assert result.exit_code == 0, result.stderr
    assert spend(root) == [618270.0, 350.0]  # what a clean build gives
    assert run_cli(root, "plan", "--detailed-exitcode").exit_code == 0


def test_a_module_imported_inside_a_function_is_a_dependency(make_project: Any,
                                                                          run_cli: Any) -> None:
    root = make_project(FILES)
    assert run_cli(root, "build").exit_code == 0
    (root / "features/rounding.py").write_text("DIGITS = 0\n", encoding="utf-8")
    assert run_cli(root, "plan").stdout.splitlines()[1] == " ~ features.spend      code features/rounding.py changed"
    assert run_cli(root, "build").exit_code == 0
    assert spend(root) == [6183.0, 4.0]


def test_a_transitive_relative_import_is_a_dependency(make_project: Any, run_cli: Any) -> None:
    root = make_project(FILES)
    assert run_cli(root, "build").exit_code == 0
    (root / "features/constants.py").write_text("CENTS = 1000\n", encoding="utf-8")
    assert run_cli(root, "plan").stdout.splitlines()[1] == " ~ features.spend      code features/constants.py changed"


def test_why_lists_each_code_file_and_no_library(make_project: Any, run_cli: Any) -> None:
    root = make_project(FILES)
    assert run_cli(root, "build").exit_code == 0
    lines = run_cli(root, "why", "features.spend").stdout.splitlines()
    code = lines[lines.index("= code") + 1:lines.index("= upstream")]
    assert [line.split(":")[0] for line in code] == [
        "    = features/__init__.py", "    = features/build.py", "    = features/constants.py",
        "    = features/rounding.py", "    = features/units.py"]


STEP = """\
version: 1
project: steps
steps:
  script:
    cmd: [python, scripts/make.py, out/a.txt]
    outs: [out/a.txt]
  module:
    cmd: [python, -m, tools.gen, out/b.txt]
    outs: [out/b.txt]
"""
STEP_FILES: dict[str, str | bytes] = {
    "mlproject.yaml": STEP,
    "scripts/make.py": "import sys\n\nfrom helpers import TEXT\n\nopen(sys.argv[1], 'w').write(TEXT)\n",
    "scripts/helpers.py": "TEXT = 'one'\n",
    "tools/__init__.py": "",
    "tools/gen.py": "import sys\n\nfrom tools.words import WORD\n\nopen(sys.argv[1], 'w').write(WORD)\n",
    "tools/words.py": "WORD = 'one'\n",
}


def test_a_python_step_depends_on_its_script_and_the_modules_it_imports(make_project: Any, run_cli: Any) -> None:
    root = make_project(STEP_FILES)
    assert run_cli(root, "build").exit_code == 0
    (root / "scripts/helpers.py").write_text("TEXT = 'two'\n", encoding="utf-8")
    (root / "tools/words.py").write_text("WORD = 'two'\n", encoding="utf-8")
    assert run_cli(root, "plan").stdout == (" ~ steps.script  code scripts/helpers.py changed\n"
                                            " ~ steps.module  code tools/words.py changed\n"
                                            "\nPlan: 2 to build, 0 up to date.\n")
    assert run_cli(root, "build").exit_code == 0
    assert (root / "out/a.txt").read_text() == "two" and (root / "out/b.txt").read_text() == "two"


DEPS = """\
version: 1
project: deps
datasets:
  customers:
    path: data/customers.csv
    deps: [data/README.md]
features:
  spend:
    from: customers
    python: features/build.py:spend
    deps: [features/rates.csv]
"""
DEPS_FILES: dict[str, str | bytes] = {
    "mlproject.yaml": DEPS,
    "data/customers.csv": "customer_id,amount\n1,2.0\n",
    "data/README.md": "customers, as exported\n",
    "features/build.py": """\
import pathlib

import polars as pl


def spend(customers):
    rate = float((pathlib.Path(__file__).parent / "rates.csv").read_text().split()[-1])
    return customers.with_columns((pl.col("amount") * rate).alias("spend"))
""",
    "features/rates.csv": "rate\n1.5\n",
}


def test_deps_declare_what_no_analysis_can_see(make_project: Any, run_cli: Any) -> None:
    root = make_project(DEPS_FILES)
    assert run_cli(root, "build").exit_code == 0
    assert spend(root) == [3.0]
    (root / "features/rates.csv").write_text("rate\n2.5\n", encoding="utf-8")
    (root / "data/README.md").write_text("customers, as exported on Monday\n", encoding="utf-8")
    assert run_cli(root, "plan").stdout == (" ~ datasets.customers  data/README.md changed\n"
                                            " ~ features.spend      features/rates.csv changed\n"
                                            "\nPlan: 2 to build, 0 up to date.\n")
    assert run_cli(root, "build").exit_code == 0
    assert spend(root) == [5.0]


def test_a_dep_outside_the_project_is_a_located_error(make_project: Any, run_cli: Any) -> None:
    root = make_project({**DEPS_FILES, "mlproject.yaml": DEPS.replace("[features/rates.csv]", "[../rates.csv]")})
    result = run_cli(root, "validate")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == ("mlproject.yaml:11:12: features.spend.deps[0]: "
                                             "the path '../rates.csv' leaves the project")
