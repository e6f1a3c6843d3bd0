"""mlmake.registry.gto against GTO's own code: the tags mlmake writes are the ones GTO's
`name_tag` would write, and mlmake reads every tag the way GTO's `parse_name` does."""

from __future__ import annotations

import pytest

from mlmake.registry import gto
from mlmake.registry.record import Record, from_message, to_message

gto_tag = pytest.importorskip("gto.tag")
gto_constants = pytest.importorskip("gto.constants")

NAMES = [
    "churn_xgb@v0.0.1", "churn_xgb@v1.20.3-rc.1", "churn_xgb@v0.0.1!", "churn_xgb#production#3",
    "churn_xgb#production!#4", "examples/churn=churn_xgb@v0.0.1", "examples/churn=churn_xgb#staging#12",
    "churn_xgb@deprecated#5", "v1.0.0", "churn_xgb@1.0.0", "churn_xgb#prod", "_bad@v0.0.1", "a@v0.0.1",
]


@pytest.mark.parametrize("name", NAMES)
def test_a_tag_reads_as_gto_reads_it(name: str) -> None:
    theirs = gto_tag.parse_name(name, raise_on_fail=False)
    mine = gto.parse_tag(name)
    if not theirs:
        assert mine is None
        return
    assert mine is not None
    assert (mine.artifact, mine.action, mine.version, mine.stage, mine.counter) == (
        theirs["name"], theirs["action"].value, theirs.get("version"), theirs.get("stage"), theirs.get("counter"))


def test_the_tags_written_are_gtos() -> None:
    assert gto.version_tag("examples/churn:churn_xgb", "v0.0.2") == gto_tag.name_tag(
        gto_constants.Action.REGISTER, "examples/churn:churn_xgb", version="v0.0.2", simple=True)
    assert gto.stage_tag("churn_xgb", "production", 3) == gto_tag.name_tag(
        gto_constants.Action.ASSIGN, "churn_xgb", stage="production", simple=True) + "#3"


def test_versions_bump_as_gto_bumps_them() -> None:
    from gto.versions import SemVer

    assert SemVer.get_minimal().version == gto.FIRST_VERSION
    for part in ("major", "minor", "patch"):
        theirs = SemVer("v1.2.3").bump(**{f"bump_{part}": True}).version
        assert gto.bump("v1.2.3", part) == theirs  # type: ignore[arg-type]
    assert sorted(["v0.0.10", "v0.0.9", "v1.0.0-rc.1", "v1.0.0"], key=gto.semver_key) == [
        "v0.0.9", "v0.0.10", "v1.0.0-rc.1", "v1.0.0"]


def test_the_record_rides_below_gtos_message() -> None:
    record = Record("churn_xgb", "models.churn_xgb", "ab" * 16, "model", "c" * 40,
                    {"build/models/churn_xgb": {"hash": "dir:1", "size": 3, "md5": "d" * 32 + ".dir"}},
                    {"auc": 0.8}, {"data/customers.csv": "e" * 32}, "examples/churn")
    message = to_message(gto.register_message("examples/churn:churn_xgb", "v0.0.1"), record)
    assert message.splitlines()[:3] == ["Registering artifact examples/churn:churn_xgb version v0.0.1", "",
                                        "mlmake record 1"]
    assert from_message(message) == record
    assert from_message("Registering artifact churn_xgb version v0.0.1") is None  # registered by GTO itself
    assert from_message("x\n\nmlmake record 1\n{not json") is None
