"""The build's folders: staging, placing outputs, keeping what a failed node wrote."""

from __future__ import annotations

from pathlib import Path

from mlmake.building.workspace import LocalWorkspace


def test_an_output_the_recipe_did_not_write_is_named_and_the_old_one_stays(tmp_path: Path) -> None:
    (tmp_path / "build").mkdir()
    (tmp_path / "build/scores.parquet").write_text("old")
    workspace = LocalWorkspace(tmp_path)
    staged = workspace.stage("deploy.batch", ("build/deploy/batch", "build/scores.parquet"), in_place=False)
    assert workspace.place(staged["build/deploy/batch"], "build/deploy/batch") == ""
    assert workspace.place(staged["build/scores.parquet"], "build/scores.parquet") == (
        "declared output 'build/scores.parquet' was not written")
    assert (tmp_path / "build/deploy/batch").is_dir()
    assert (tmp_path / "build/scores.parquet").read_text() == "old"


def test_what_a_failed_node_wrote_is_kept_and_an_empty_staging_folder_dropped(tmp_path: Path) -> None:
    workspace = LocalWorkspace(tmp_path)
    staged = workspace.stage("models.churn", ("build/models/churn",), in_place=False)
    Path(staged["build/models/churn"], "model.json").write_text("{}")
    assert workspace.keep_failed("models.churn") == ".mlmake/failed/models.churn"
    assert (tmp_path / ".mlmake/failed/models.churn/0-churn/model.json").read_text() == "{}"
    workspace.stage("features.cf", ("build/features/cf",), in_place=False)
    assert workspace.keep_failed("features.cf") == ""
    assert not (tmp_path / ".mlmake/tmp/features.cf").exists()
