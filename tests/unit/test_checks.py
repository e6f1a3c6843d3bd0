"""mlmake.core.checks agrees with the recipes it checks for."""

from __future__ import annotations

from mlmake.kinds.model.training import training_plan


def test_params_extra_is_passed_to_xgboost_as_written() -> None:
    plan = training_plan({"max_depth": 3, "extra": {"grow_policy": "lossguide"}}, "binary", 2, 1, 0)
    assert plan.params["grow_policy"] == "lossguide"
    assert plan.params["max_depth"] == 3
    assert "extra" not in plan.params
