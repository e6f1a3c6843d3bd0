"""Where `mlmake build` runs: --scheduler (or $MLMAKE_SCHEDULER, which click reads into it), else the
`runner:` of the --env environment, else this machine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mlmake.building.cluster import Setting, remote_url, setting
from tests.helpers import load

FILE = """\
version: 1
project: where
environments:
  cluster: {runner: {scheduler: "tcp://dask:8786"}}
  shared: {runner: {scheduler: "tcp://dask:8786", shared_fs: true}}
  plain: {params: {}}
steps:
  s: {cmd: [python, s.py], outs: [out.txt]}
"""


def test_the_command_line_wins_then_the_environments_runner_then_this_machine(
        make_project: Callable[[dict[str, str | bytes]], Path]) -> None:
    root = make_project({"mlproject.yaml": FILE, "s.py": ""})
    project, _ = load(root, "cluster")
    assert setting(project, "cluster", "tcp://other:1", False) == Setting("tcp://other:1", False)
    assert setting(project, "cluster", None, False) == Setting("tcp://dask:8786", False)
    assert setting(project, "cluster", None, True) == Setting("tcp://dask:8786", True)
    assert setting(project, "shared", None, False) == Setting("tcp://dask:8786", True)
    assert setting(project, "plain", None, False) is None
    assert setting(project, None, None, True) is None


def test_the_workers_reach_a_folder_remote_by_its_absolute_path(
        make_project: Callable[[dict[str, str | bytes]], Path]) -> None:
    root = make_project({"mlproject.yaml": FILE + "remote: {url: ../shared-remote}\n", "s.py": ""})
    project, _ = load(root)
    assert remote_url(project) == str((root / ".." / "shared-remote").resolve())
    cloud = make_project({"mlproject.yaml": FILE + "remote: {url: s3://bucket/x}\n"})
    assert remote_url(load(cloud)[0]) == "s3://bucket/x"
