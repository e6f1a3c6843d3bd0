"""Model cards (`cards:`, the `card` kind) on both examples: golden card.md and card.json, and a
card that rebuilds exactly when what it tells changes.

Golden files: tests/golden/card_{churn,penguins}.{md,json}; `UPDATE_GOLDEN=1` rewrites them (then
read the diff). Fingerprints and content hashes (32 hex digits: they cover library versions) are
masked; the metrics are shown to 4 decimals, as the card shows them."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.e2e.test_plan_cli import check_golden
from tests.helpers import build, copy_example

RunCli = Callable[..., Result]
HEX32 = re.compile(r"\b[0-9a-f]{32}\b")
CARDS = {"churn": "churn_xgb", "penguins": "species"}
# each example's model card, as a user adds it to the example's mlproject.yaml
CARD_YAML = {
    "churn": """
cards:                              # a model card per model: build/cards/NAME/card.md and card.json
  churn_xgb:
    model: churn_xgb
    intended_use: >-
      Rank customers by churn risk for the retention team's weekly outreach list.
    limitations: >-
      Trained on synthetic data; not for decisions about an individual customer's contract.
""",
    "penguins": """
cards:
  species:
    model: species
    intended_use: >-
      Teaching and demonstration: a species from a penguin's measurements (Palmer Archipelago, 2007-2009).
    limitations: >-
      Three species from three islands only; the Torgersen slice is small, so its metrics are uncertain.
""",
}


def with_card(root: Path, example: str) -> Path:
    """The example with its model card added."""
    with open(root / "mlproject.yaml", "a", encoding="utf-8") as fh:
        fh.write(CARD_YAML[example])
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tests.helpers import run_cli

    out = {}
    for name in CARDS:
        root = with_card(copy_example(name, tmp_path_factory.mktemp("cards") / name), name)
        result = run_cli(root, "build")
        assert result.exit_code == 0, result.stderr
        out[name] = root
    return out


def masked(text: str) -> str:
    return HEX32.sub("<hash>", text)


@pytest.mark.parametrize("example", sorted(CARDS))
def test_the_card_of_each_example_is_golden(built: dict[str, Path], example: str) -> None:
    folder = built[example] / "build" / "cards" / CARDS[example]
    assert sorted(p.name for p in folder.iterdir()) == ["card.json", "card.md"]
    check_golden(f"card_{example}.md", masked((folder / "card.md").read_text(encoding="utf-8")))
    card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    summary = json.loads((built[example] / "build" / "models" / CARDS[example] / "metrics.json")
                         .read_text(encoding="utf-8"))
    assert (card["metrics"], card["slices"][next(iter(summary["slices"]))]["values"]) == (
        summary["metrics"], next(iter(summary["slices"].values())))
    check_golden(f"card_{example}.json", masked((folder / "card.json").read_text(encoding="utf-8")))


def plan_lines(run_cli: RunCli, root: Path, *args: str) -> list[str]:
    result = run_cli(root, "plan", *args)
    assert result.exit_code == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line[:3].strip() not in ("=", "")]


def edit(root: Path, old: str, new: str) -> None:
    path = root / "mlproject.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_the_card_rebuilds_exactly_when_what_it_tells_changes(run_cli: RunCli, built: dict[str, Path],
                                                              tmp_path: Path) -> None:
    root = tmp_path / "churn"
    shutil.copytree(built["churn"], root, symlinks=True)
    card = "cards.churn_xgb"
    # not told by the card: the deploy targets' descriptions, a step reading the model
    edit(root, "Every customer scored, for", "Every customer scored for")
    assert plan_lines(run_cli, root) == ["Plan: 0 to build, 9 up to date."]

    edit(root, "weekly outreach list.", "monthly outreach list.")
    assert plan_lines(run_cli, root)[0] == (f" ~ {card:<26}  intended_use Rank customers by churn risk "
                                            "for the retention team's weekly outreach list. → Rank customers by "
                                            "churn risk for the retention team's monthly outreach list.")
    result, ran = build(run_cli, root)
    assert (result.exit_code, ran) == (0, {card: "built"}), result.stderr
    assert "monthly outreach list." in (root / "build" / "cards" / "churn_xgb" / "card.md").read_text()

    # the model's description and gates are not its fingerprint, but the card tells them
    edit(root, "description: Who is about to leave.", "description: Who is about to cancel.")
    edit(root, 'auc: ">= 0.70"', 'auc: ">= 0.71"')
    lines = plan_lines(run_cli, root)
    assert [line.split()[:2] for line in lines if line.startswith((" ~", " *"))] == [
        ["*", "models.churn_xgb"], ["~", card]]
    result, ran = build(run_cli, root)
    assert (result.exit_code, ran) == (0, {card: "built"}), result.stderr
    text = (root / "build" / "cards" / "churn_xgb" / "card.md").read_text(encoding="utf-8")
    assert "Who is about to cancel." in text and "| `auc >= 0.71` |" in text

    # a param: the model retrains, and the card with it (its lineage)
    lines = plan_lines(run_cli, root, "-P", "models.churn_xgb.params.max_depth=4")
    assert lines[0] == " ~ models.churn_xgb            params.max_depth 3 → 4"
    assert f" ~ {card:<26}  upstream models.churn_xgb fingerprint changed" in lines

    # an approval of the model is told by the card
    (root / "approvals.yaml").write_text("version: 1\napprovals: {}\n", encoding="utf-8")
    assert plan_lines(run_cli, root) == [f" ~ {card:<26}  approvals.yaml changed",
                                         "Plan: 1 to build, 8 up to date."]
