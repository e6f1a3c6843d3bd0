"""mlmake/state/fingerprint.py: typed fingerprint components, and the lock's plain form of them."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlmake.core.errors import MlmakeError
from mlmake.core.plain import Json
from mlmake.state.fingerprint import Components, Lineage, fingerprint
from mlmake.state.hashing import hash_json
from mlmake.state.lock import LOCK_FILE, Entry, Lock, read_lock, render_lock

FULL = Components(config={"x": [1, "a", None, True, 1.5]}, params={"seed": 7}, recipe=2,
                  libraries={"polars": "1.0"}, inputs={"data/x.csv": "ab"}, code={"x.py": ""},
                  upstream={"steps.a": {"build/a": "cd"}}, lineage=Lineage("deploy.d", {"steps.a": "ef"}))


def test_the_fingerprint_is_the_hash_of_the_plain_form_as_before() -> None:
    # the value mlmake gave this 8-key dict before the components were typed: existing locks stay fresh
    assert fingerprint(FULL) == "6f615e06e08476f6f434c9b235921148"
    assert list(FULL.to_plain()) == ["config", "params", "recipe", "libraries", "inputs", "code", "upstream",
                                     "lineage"]


def test_plain_form_round_trips() -> None:
    assert Components.from_plain(FULL.to_plain()) == FULL
    assert Components.from_plain(FULL.to_plain()).to_plain() == FULL.to_plain()


def test_a_recorded_entry_keeps_what_this_mlmake_does_not_make_and_lacks_what_it_lacked() -> None:
    # an older lock without `params`, a newer one with a component this mlmake does not know
    plain = {"config": {}, "recipe": 1, "libraries": {}, "inputs": {}, "code": {}, "upstream": {}, "extra": [1]}
    comps = Components.from_plain(plain)
    assert comps.to_plain() == plain
    assert comps.value("params") is None and comps.value("extra") == [1] and comps.value("lineage") is None
    assert comps.params == {} and comps.unrecorded == frozenset({"params"})


def test_a_run_record_reads_the_inputs_and_upstream_hashes() -> None:
    assert FULL.sources() == {"data/x.csv": "ab", "steps.a": {"build/a": "cd"}}


@pytest.mark.parametrize("component, value, where, why", [
    ("recipe", '"one"', "6:13: nodes.steps.a.recipe", "expected a number, got a string"),
    ("config", "[1, 2]", "6:13: nodes.steps.a.config", "expected a mapping, got a list"),
    ("inputs", "{data/x.csv: 5}", "6:26: nodes.steps.a.inputs.data/x.csv", "expected a string, got a number"),
    ("upstream", "{steps.b: [x]}", "6:25: nodes.steps.a.upstream.steps.b", "expected a mapping, got a list"),
    ("lineage", "{upstream: {}}", "6:14: nodes.steps.a.lineage.node", "expected a string, got nothing"),
])
def test_a_component_of_the_wrong_shape_is_a_located_error(tmp_path: Path, component: str, value: str,
                                                            where: str, why: str) -> None:
    line = f"    {component}: {value}"
    (tmp_path / LOCK_FILE).write_text(f"lock_version: 1\nnodes:\n  steps.a:\n    fingerprint: \"f\"\n"
                                      f"    kind: \"cmd\"\n{line}\n", encoding="utf-8")
    with pytest.raises(MlmakeError) as caught:
        read_lock(tmp_path)
    col = int(where.split(":")[1])
    assert str(caught.value) == (f"{LOCK_FILE} is malformed:\n{LOCK_FILE}:{where}: {why}\n  {line}\n"
                                 f"  {' ' * (col - 1)}^\nhint: restore it from git (git checkout {LOCK_FILE})")


def test_an_entry_is_written_back_byte_for_byte(tmp_path: Path) -> None:
    text = ("# Written by mlmake after each successful node. Commit it; do not edit it by hand.\n"
            "lock_version: 1\nnodes:\n  steps.a:\n    code: {}\n    config:\n      cmd:\n        - \"true\"\n"
            "    extra: 3\n    fingerprint: \"f\"\n    inputs: {}\n    kind: \"cmd\"\n    metrics: {}\n"
            "    outputs: {}\n    recipe: 1\n    upstream: {}\n")
    (tmp_path / LOCK_FILE).write_text(text, encoding="utf-8")
    lock = read_lock(tmp_path)
    assert render_lock(Lock(dict(lock.nodes))) == text
    assert lock.nodes["steps.a"] == Entry("f", "cmd", Components.from_plain(
        {"config": {"cmd": ["true"]}, "recipe": 1, "inputs": {}, "code": {}, "upstream": {}, "extra": 3}))


_TEXT = st.text(max_size=6)
_HASHES = st.dictionaries(_TEXT, _TEXT, max_size=3)
_PLAIN = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
                      max_leaves=8)


@settings(max_examples=60, deadline=None)
@given(config=st.dictionaries(_TEXT, _PLAIN, max_size=3), params=st.dictionaries(_TEXT, _PLAIN, max_size=3),
       recipe=st.integers(0, 9), libraries=_HASHES, inputs=_HASHES, code=_HASHES,
       upstream=st.dictionaries(_TEXT, _HASHES, max_size=2),
       lineage=st.none() | st.builds(Lineage, _TEXT, _HASHES))
def test_any_components_round_trip_and_hash_their_plain_form(config: dict[str, Json], params: dict[str, Json],
                                                            recipe: int, libraries: dict[str, str],
                                                            inputs: dict[str, str], code: dict[str, str],
                                                            upstream: dict[str, dict[str, str]],
                                                            lineage: Lineage | None) -> None:
    comps = Components(config, params, recipe, libraries, inputs, code, upstream, lineage)
    plain = comps.to_plain()
    assert Components.from_plain(plain) == comps
    assert fingerprint(comps) == hash_json(plain)
    assert set(plain) == {"config", "params", "recipe", "libraries", "inputs", "code", "upstream"} | (
        {"lineage"} if lineage else set())
