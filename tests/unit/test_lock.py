"""mlmake/lock.py: mlproject.lock written sorted and atomically, read back equal, its JSON cache."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlmake.core import source
from mlmake.core.errors import MlmakeError
from mlmake.core.source import load_text
from mlmake.state.hashing import hash_bytes
from mlmake.state.lock import LOCK_FILE, Entry, Lock, dump_yaml, read_lock, with_entry, write_lock
from tests.helpers import write_files

CACHE = ".mlmake/cache/lock.json"

A = Entry("f" * 32, "cmd",
          {"config": {"cmd": ["python", "-c", "pass"], "deps": ["data/x.csv"], "outs": ["build/a.txt"]},
           "recipe": 1, "libraries": {}, "inputs": {}, "code": {"data/x.csv": "1" * 32}, "upstream": {}},
          {"build/a.txt": {"hash": "2" * 32, "size": 10}})
B = Entry("e" * 32, "model",
          {"config": {"params": {"max_depth": 6, "eta": 0.1, "missing": None, "flag": True}, "gates": {}},
           "recipe": 1, "libraries": {"xgboost": "2.1.0"}, "inputs": {}, "code": {},
           "upstream": {"steps.a": {"build/a.txt": "2" * 32}}},
          {"build/models/m": {"hash": "dir:" + "3" * 32, "size": 123}}, {"auc": 0.91, "rows": 100})

EXPECTED_B = """\
  models.m:
    code: {}
    config:
      gates: {}
      params:
        eta: 0.1
        flag: true
        max_depth: 6
        missing: null
    fingerprint: "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
    inputs: {}
    kind: "model"
    libraries:
      xgboost: "2.1.0"
    metrics:
      auc: 0.91
      rows: 100
    outputs:
      build/models/m:
        hash: "dir:33333333333333333333333333333333"
        size: 123
    recipe: 1
    upstream:
      steps.a:
        build/a.txt: "22222222222222222222222222222222"
"""


def test_an_absent_lock_is_empty(tmp_path: Path) -> None:
    assert read_lock(tmp_path) == Lock()


def test_write_then_read_gives_the_same_lock(tmp_path: Path) -> None:
    lock = Lock({"steps.a": A, "models.m": B})
    write_lock(tmp_path, lock)
    assert read_lock(tmp_path) == lock
    (tmp_path / CACHE).unlink()
    assert read_lock(tmp_path) == lock  # from the YAML itself, not the cache


def test_the_file_is_versioned_sorted_and_block_style(tmp_path: Path) -> None:
    write_lock(tmp_path, Lock({"steps.a": A, "models.m": B}))
    text = (tmp_path / LOCK_FILE).read_text(encoding="utf-8")
    header = "# Written by mlmake after each successful node. Commit it; do not edit it by hand.\n"
    assert text.startswith(header + "lock_version: 1\nnodes:\n  models.m:\n")
    assert EXPECTED_B in text
    assert text.index("  models.m:") < text.index("  steps.a:")


def test_the_bytes_do_not_depend_on_insertion_order_or_place(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    write_lock(tmp_path / "x", Lock({"steps.a": A, "models.m": B}))
    shuffled = Entry(B.fingerprint, B.kind, dict(reversed(list(B.components.items()))),
                     B.outputs, dict(reversed(list(B.metrics.items()))))
    (tmp_path / "y").mkdir()
    write_lock(tmp_path / "y", Lock({"models.m": shuffled, "steps.a": A}))
    assert (tmp_path / "x" / LOCK_FILE).read_bytes() == (tmp_path / "y" / LOCK_FILE).read_bytes()


def test_the_write_is_atomic_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    write_lock(tmp_path, Lock({"steps.a": A}))
    first_inode = os.stat(tmp_path / LOCK_FILE).st_ino
    write_lock(tmp_path, Lock({"steps.a": A, "models.m": B}))
    assert os.stat(tmp_path / LOCK_FILE).st_ino != first_inode  # renamed over, never rewritten in place
    assert sorted(p.name for p in tmp_path.iterdir()) == [".mlmake", LOCK_FILE]
    assert sorted(os.listdir(tmp_path / ".mlmake/cache")) == ["lock.json"]


def test_with_entry_returns_a_new_lock(tmp_path: Path) -> None:
    one = Lock({"steps.a": A})
    two = with_entry(one, "models.m", B)
    assert one == Lock({"steps.a": A}) and two == Lock({"steps.a": A, "models.m": B})
    assert with_entry(two, "steps.a", None) == Lock({"models.m": B})
    assert with_entry(two, "steps.zzz", None) == two


def test_entry_dict_round_trip() -> None:
    assert Entry.from_dict(B.to_dict()) == B
    assert Entry.from_dict({"fingerprint": "x"}) == Entry("x", "", {}, {}, {})


# --- the JSON cache ------------------------------------------------------------------


def test_the_json_cache_is_keyed_by_the_lock_bytes(tmp_path: Path) -> None:
    write_lock(tmp_path, Lock({"steps.a": A}))
    cached = json.loads((tmp_path / CACHE).read_text())
    assert cached["key"] == hash_bytes((tmp_path / LOCK_FILE).read_bytes())
    assert cached["data"]["nodes"]["steps.a"] == A.to_dict()


def test_a_matching_cache_is_read_instead_of_the_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_lock(tmp_path, Lock({"steps.a": A}))

    def no_parse(*args: object) -> None:
        raise AssertionError("the YAML was parsed although the cache matched")

    monkeypatch.setattr(source, "load_text", no_parse)  # the YAML parser, imported when needed
    assert read_lock(tmp_path) == Lock({"steps.a": A})


def test_a_changed_lock_invalidates_the_cache(tmp_path: Path) -> None:
    write_lock(tmp_path, Lock({"steps.a": A}))
    other = tmp_path / "other"
    other.mkdir()
    write_lock(other, Lock({"models.m": B}))
    # the lock changes under mlmake's feet (git checkout, a merge): the cache must not win
    os.replace(other / LOCK_FILE, tmp_path / LOCK_FILE)
    assert read_lock(tmp_path) == Lock({"models.m": B})
    assert json.loads((tmp_path / CACHE).read_text())["key"] == hash_bytes((tmp_path / LOCK_FILE).read_bytes())


@pytest.mark.parametrize("cache", ["{broken", "[]", '{"key": "nope", "data": {}}'])
def test_a_broken_or_stale_cache_falls_back_to_the_yaml(tmp_path: Path, cache: str) -> None:
    write_lock(tmp_path, Lock({"steps.a": A}))
    write_files(tmp_path, {CACHE: cache})
    assert read_lock(tmp_path) == Lock({"steps.a": A})


# --- bad locks -------------------------------------------------------------------------


def _error(tmp_path: Path, text: str | bytes) -> str:
    write_files(tmp_path, {LOCK_FILE: text})
    with pytest.raises(MlmakeError) as info:
        read_lock(tmp_path)
    return info.value.render()


def test_a_corrupt_lock_is_a_clear_error(tmp_path: Path) -> None:
    assert _error(tmp_path, "lock_version: 1\nnodes:\n  steps.a: [\n") == (
        "error: mlproject.lock is not readable:\n"
        "mlproject.lock:4:1: invalid YAML: expected the node content, but found '<stream end>'\n"
        "1 error found\n"
        "hint: restore it from git (git checkout mlproject.lock)")


def test_a_lock_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    message = _error(tmp_path, b"lock_version: 1\n\xff\xfe\n")
    assert message.startswith("error: mlproject.lock is not readable:\n")
    assert message.endswith("hint: restore it from git (git checkout mlproject.lock)")


@pytest.mark.parametrize(("text", "shown"), [("lock_version: 2\nnodes: {}\n", "2"),
                                             ("nodes: {}\n", "None"),
                                             ("lock_version: '1'\n", "'1'"),
                                             ("- 1\n", "None")])
def test_an_unknown_lock_version_is_refused(tmp_path: Path, text: str, shown: str) -> None:
    assert _error(tmp_path, text) == (
        f"error: mlproject.lock: lock_version {shown} is not one this mlmake reads (1); "
        "upgrade mlmake or restore the file from git")


@pytest.mark.parametrize(("nodes", "where"), [
    ("  steps.a: {kind: cmd}\n", "3:12: nodes.steps.a.fingerprint: expected a fingerprint string\n"
                                 "    steps.a: {kind: cmd}\n             ^"),
    ("  steps.a: 3\n", "3:12: nodes.steps.a: expected a mapping, got a number\n    steps.a: 3\n             ^"),
    ("  - steps.a\n", "3:3: nodes: expected a mapping of nodes, got a list\n    - steps.a\n    ^"),
    ("  steps.a: {fingerprint: f, outputs: build/a}\n",
     "3:38: nodes.steps.a.outputs: expected a mapping, got a string\n"
     "    steps.a: {fingerprint: f, outputs: build/a}\n                                       ^"),
    ("  steps.a:\n    fingerprint: f\n    outputs: {build/a: 3}\n    metrics: [1]\n",
     "6:14: nodes.steps.a.metrics: expected a mapping, got a list\n      metrics: [1]\n               ^\n"
     "mlproject.lock:5:24: nodes.steps.a.outputs.build/a: expected a mapping, got a number\n"
     "      outputs: {build/a: 3}\n                         ^"),
])
def test_a_malformed_entry_is_an_error_naming_its_line(tmp_path: Path, nodes: str, where: str) -> None:
    assert _error(tmp_path, f"lock_version: 1\nnodes:\n{nodes}") == (
        f"error: mlproject.lock is malformed:\nmlproject.lock:{where}\n"
        "hint: restore it from git (git checkout mlproject.lock)")


def test_a_lock_nested_past_the_limit_is_an_error_naming_its_line(tmp_path: Path) -> None:
    deep = "[" * 5000 + "]" * 5000
    assert _error(tmp_path, f"lock_version: 1\nnodes:\n  steps.a:\n    fingerprint: f\n    config: {deep}\n") == (
        "error: mlproject.lock is not readable:\n"
        "mlproject.lock:5:1: nested deeper than 100 levels\n"
        f"  {('config: ' + deep)[:120]}\n  ^\n"
        "hint: restore it from git (git checkout mlproject.lock)")


def test_a_lock_nested_by_indentation_past_the_limit_is_an_error(tmp_path: Path) -> None:
    body = "".join(f"{' ' * (2 * i)}k{i}:\n" for i in range(400))
    message = _error(tmp_path, f"lock_version: 1\n{body}")
    assert message.startswith("error: mlproject.lock is not readable:\n"
                              "mlproject.lock:103:1: nested deeper than 100 levels\n")


def test_a_corrupt_lock_is_not_saved_by_an_old_cache(tmp_path: Path) -> None:
    write_lock(tmp_path, Lock({"steps.a": A}))
    write_files(tmp_path, {LOCK_FILE: "lock_version: 1\nnodes: [\n"})
    with pytest.raises(MlmakeError):
        read_lock(tmp_path)


# --- the YAML writer -------------------------------------------------------------------


def test_dump_yaml_quotes_every_string_and_sorts_every_mapping() -> None:
    value = {"b": [1, {"y": "2", "x": None}, []], "a": {"true": "yes", "k": 1.5, "j": {}, "1x": False},
             "c": "line\n\"quoted\"", "d": [[1, 2], "s"]}
    assert dump_yaml(value) == (
        'a:\n'
        '  "1x": false\n'
        '  j: {}\n'
        '  k: 1.5\n'
        '  "true": "yes"\n'
        'b:\n'
        '  - 1\n'
        '  - x: null\n'
        '    "y": "2"\n'
        '  - []\n'
        'c: "line\\n\\"quoted\\""\n'
        'd:\n'
        '  - - 1\n'
        '    - 2\n'
        '  - "s"\n')


def test_dump_yaml_special_floats_round_trip() -> None:
    back = load_text(dump_yaml({"a": float("nan"), "b": float("inf"), "c": float("-inf"), "d": 1e300}), "x").data
    assert math.isnan(back["a"]) and back["b"] == math.inf and back["c"] == -math.inf and back["d"] == 1e300


# Printable text as people write it in keys (column names, paths, params) and values.
_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Co", "Cn", "Zl", "Zp"), max_codepoint=0xFFFF),
                max_size=8)
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT
_VALUES = st.recursive(_SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(_TEXT, c, max_size=3),
                       max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_TEXT, _VALUES, max_size=4))
def test_dump_yaml_reads_back_as_the_same_data(value: dict[str, object]) -> None:
    assert (load_text(dump_yaml(value), "x").data or {}) == value


def test_keys_outside_the_basic_plane_read_back() -> None:
    value = {"data/🐧.csv": "1", "schema": {"𝑥": {"type": "int64"}}}
    assert load_text(dump_yaml(value), "x").data == value


@pytest.mark.parametrize("text", ["a\x85b", "a\x9fb"])
def test_c1_controls_in_values_read_back(text: str) -> None:
    assert load_text(dump_yaml({"sql": text}), "x").data == {"sql": text}
