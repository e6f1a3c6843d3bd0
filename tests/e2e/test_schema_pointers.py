"""Every `# yaml-language-server: $schema=…` line points an editor at a schema file that is
there: in the repository (templates and examples, relative to the file) and in a project
made by `mlmake init` (the copy written beside it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import run_cli

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "schemas" / "mlproject.schema.json"
MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$", re.M)
PROJECT_FILES = sorted(REPO.glob("templates/*/mlproject.yaml")) + sorted(REPO.glob("examples/*/mlproject.yaml"))


def pointer(project_file: Path) -> str:
    found = MODELINE.findall(project_file.read_text(encoding="utf-8"))
    assert len(found) == 1, f"{project_file}: {found}"
    return str(found[0])


@pytest.mark.parametrize("project_file", PROJECT_FILES, ids=lambda p: p.parent.relative_to(REPO).as_posix())
def test_the_repositorys_project_files_point_at_the_schema(project_file: Path) -> None:
    target = project_file.parent / pointer(project_file)
    assert target.is_file(), f"{project_file} points at {target}, which is not there"
    assert target.samefile(SCHEMA)


@pytest.mark.parametrize("template", sorted(p.parent.name for p in REPO.glob("templates/*/mlproject.yaml")))
def test_init_points_the_new_project_at_the_copy_beside_it(tmp_path: Path, template: str) -> None:
    result = run_cli(tmp_path, "init", "app", "--template", template)
    assert result.exit_code == 0, result.stderr
    project_file = tmp_path / "app" / "mlproject.yaml"
    assert pointer(project_file) == "mlproject.schema.json"
    assert (project_file.parent / "mlproject.schema.json").read_bytes() == SCHEMA.read_bytes()
