"""Fixtures shared by every test: tiny projects written inline, and the CLI.

    def test_x(make_project, run_cli):
        root = make_project({"mlproject.yaml": VALID, "data/customers.csv": "id\\n1\\n"})
        result = run_cli(root, "validate")
        assert result.exit_code == 0, result.stderr
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.helpers import run_cli as _run_cli
from tests.helpers import write_files


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[[dict[str, str | bytes]], Path]:
    """`make_project({relpath: text_or_bytes, …}) -> root`: writes the files under tmp_path.

    Calling it again adds (or overwrites) files in the same root."""

    def make(files: dict[str, str | bytes]) -> Path:
        return write_files(tmp_path, files)

    return make


@pytest.fixture
def run_cli() -> Callable[..., Result]:
    """`run_cli(root, *args) -> click Result` for `mlmake -C root args…` (result.stdout, result.stderr)."""
    return _run_cli
