"""Random broken specs raise a located SpecError (or an MlmakeError), never anything else.

Loading is what `mlmake validate` does: parse -P, load, resolve, check, build the graph.
"""

from __future__ import annotations

import io
import json
import traceback
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

import mlmake
from mlmake.core.errors import Diagnostic, MlmakeError, SpecError
from mlmake.core.source import load_text
from tests.helpers import VALID, load, write_files

FILE = "mlproject.yaml"
PACKAGE = Path(mlmake.__file__).resolve().parent
FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

RICH = """\
version: 1
project: rich
description: every section
params: {seed: 42, depth: 6, cols: [a], name: customers}
environments:
  dev: {params: {depth: 3}}
  prod: {remote: {url: s3://bucket/x, options: {region: eu}}}
remote: {url: .mlmake/remote}
datasets:
  customers:
    path: data/${params.name}.csv
    format: csv
    schema:
      id: {type: int64, unique: true, nullable: false}
      plan: {type: str, allowed: [basic, pro]}
      age: {type: int64, min: 0, max: 120}
    checks: [{rows: ">= 1"}]
  events: {path: data/events.parquet}
features:
  base: {from: [customers, events], key: id, sql: SELECT 1}
  hooked: {from: base, python: hooks/f.py:make}
models:
  m:
    features: hooked
    target: churned
    task: binary
    drop: "${params.cols}"
    split: {test_size: 0.2, seed: "${params.seed}", stratify: true}
    params: {max_depth: "${params.depth}"}
    metrics: [auc, logloss]
    gates: {auc: ">= 0.5"}
    slices: [plan]
steps:
  report: {cmd: "python report.py --x 1", deps: [report.py, models.m], outs: [build/report.html]}
deploy:
  api: {model: m, kind: http}
  nightly: {model: m, kind: batch, input: customers, output: build/scores.parquet}
"""
BASES = [load_text(VALID, FILE).data, load_text(RICH, FILE).data]

KEYS = ["version", "project", "params", "datasets", "features", "models", "steps", "deploy", "path", "from",
        "sql", "python", "features", "task", "cmd", "deps", "outs", "model", "kind", "remote", "url", "seed"]
TRICKY = ["${params.seed}", "${params.nope}", "${seed}", "$${params.seed}", "x${params.cols}y", "../x.csv",
          "/etc/passwd", "~/x", ".git/x", ".", "", "models.m", "models.churn", "steps.report", "build",
          "build/report.html", "'unclosed", 'say "hi', "a\\", "customers", "base", "hooked", "m", "churn",
          ">= 1", "f.py:g", "9x", "binary", "csv", "int64", "\x00", "é", "\ud800"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(),
                    st.text(max_size=12), st.sampled_from(TRICKY))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)),
                                                 inner, max_size=4)), max_leaves=12)

FRAGMENTS = ["version: 1\n", "project: demo\n", "datasets:\n", "  a: {path: x.csv}\n", "models:\n",
             "  m: {features: a, target: y, task: binary}\n", "steps:\n", "  s: {cmd: echo}\n", "features:\n",
             "  f: {from: a, sql: x}\n", "params: {a: 1}\n", "!!int ", "!!str ", "!!python/object:os.system ",
             "&a ", "*a", "<<: ", "? ", "- ", "[", "]", "{", "}", ":", ": ", ",", "'", '"', "|\n", ">\n", "#",
             "---\n", "...\n", "%YAML 1.2\n", "\t", "  ", "\n", "${params.a}", "$${", "x", "1", "null", "~",
             "\ufeff", "\x85", "\u2028", "\r\n"]


PRINTABLE = st.characters(max_codepoint=0x2FF, exclude_categories=["Cc", "Cs"])


def located(d: Diagnostic) -> bool:
    """In the file (line ≥ 1) or on the command line (-P/--env, line 0)."""
    s = d.span
    if s is None:
        return False
    if s.file == FILE:
        return s.line >= 1 and s.col >= 1
    return s.line == 0 and s.file.startswith(("-P ", "--env "))


# (exception, innermost mlmake function) of failures pinned by strict xfail tests;
# delete each entry when its fix lands
KNOWN_BUGS: dict[tuple[str, str], str] = {}


def _known_bug(exc: BaseException) -> bool:
    if isinstance(exc, SpecError):
        return False
    ours = [f.name for f in traceback.extract_tb(exc.__traceback__)
            if Path(f.filename).is_relative_to(PACKAGE) and not f.name.startswith("<")]  # not <listcomp>
    return bool(ours) and (type(exc).__name__, ours[-1]) in KNOWN_BUGS


def assert_loads_or_reports(root: Path, env: str | None = None, params: tuple[str, ...] = ()) -> None:
    try:
        load(root, env, params)
    except SpecError as exc:
        if _known_bug(exc):
            return
        assert exc.diagnostics
        bad = [d.render() for d in exc.diagnostics if not located(d)]
        assert not bad, "\n".join(bad)
        assert exc.render().endswith(" found")
    except MlmakeError as exc:
        assert exc.render().startswith("error: ")
    except Exception as exc:
        if not _known_bug(exc):
            raise


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def write(root: Path, text: str | bytes) -> Path:
    return write_files(root, {FILE: text})


def paths_of(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += paths_of(v, prefix + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += paths_of(v, prefix + (i,))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    data = json.loads(json.dumps(draw(st.sampled_from(BASES))))
    for _ in range(draw(st.integers(1, 3))):
        paths = paths_of(data)
        if len(paths) < 2:
            break
        path = draw(st.sampled_from(paths[1:]))  # not the root: test_random_yaml_text covers that
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        op = draw(st.sampled_from(["drop", "rename", "retype", "retype"]))
        if op == "drop":
            del parent[last]
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)))] = parent.pop(last)
        else:
            parent[last] = draw(values)
    return data


def dump(data: Any, block: bool) -> str:
    if not block:
        return json.dumps(data, indent=2)
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


@FUZZ
@given(data=mutated(), block=st.booleans())
def test_mutated_specs(root: Path, data: Any, block: bool) -> None:
    assert_loads_or_reports(write(root, dump(data, block)))


@FUZZ
@given(text=st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(PRINTABLE, max_size=5)), max_size=30).map("".join),
       head=st.booleans())
def test_random_yaml_text(root: Path, text: str, head: bool) -> None:
    assert_loads_or_reports(write(root, ("version: 1\nproject: demo\n" if head else "") + text))


@FUZZ
@given(blob=st.binary(max_size=200), raw=st.booleans())
def test_random_bytes(root: Path, blob: bytes, raw: bool) -> None:
    assert_loads_or_reports(write(root, blob if raw else blob.decode("utf-8", errors="replace")))


OVERRIDE_KEYS = ["seed", "depth", "params.seed", "params", "models", "remote", "remote.url", "version",
                 "models.m.params.max_depth", "models.m.split.seed", "models.m.target.x", "datasets.customers.path",
                 "models.n.x", "steps.report.cmd", "a..b", ".", " ", "environments.dev"]
OVERRIDE_VALUES = ["7", "abc", "[1, 2]", "{a: 1}", "", "!!python/object/apply:os.system [x]", "${params.seed}",
                   "../x.csv", "[", "true", "null", "1.5", "'x"]


@FUZZ
@given(
    env=st.one_of(st.none(), st.sampled_from(["dev", "prod", "prd", ""]), st.text(max_size=6)),
    params=st.lists(st.one_of(
        st.tuples(st.sampled_from(OVERRIDE_KEYS), st.sampled_from(OVERRIDE_VALUES)).map("=".join),
        st.tuples(st.sampled_from(OVERRIDE_KEYS), st.text(max_size=6)).map("=".join),
        st.tuples(st.text(max_size=6), st.sampled_from(OVERRIDE_VALUES)).map("=".join)), max_size=3),
)
def test_random_env_and_overrides(root: Path, env: str | None, params: list[str]) -> None:
    assert_loads_or_reports(write(root, RICH), env, tuple(params))


def test_the_bases_are_valid(tmp_path: Path) -> None:
    for text in (VALID, RICH):
        load(write(tmp_path, text))
