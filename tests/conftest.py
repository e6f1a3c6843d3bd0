"""Fixtures shared by every test: tiny projects written inline, and the CLI.

    def test_x(make_project, run_cli):
        root = make_project({"mlproject.yaml": VALID, "data/customers.csv": "id\\n1\\n"})
        result = run_cli(root, "validate")
        assert result.exit_code == 0, result.stderr
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from tests.helpers import run_cli as _run_cli
from tests.helpers import write_files


@pytest.fixture(scope="session", autouse=True)
def _no_user_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Nothing a test runs writes to the real ~/.cache: the XDG cache folder is a temporary one."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        mp.delenv("MLMAKE_REMOTE", raising=False)
        yield


@pytest.fixture(scope="module", autouse=True)
def module_remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The default remote of a module's shared fixtures: their own, so that what one module
    built is never restored in another one. A test that plays another clone on the same
    machine sets MLMAKE_REMOTE back to it."""
    remote = tmp_path_factory.mktemp("module-remote")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLMAKE_REMOTE", str(remote))
        yield remote


@pytest.fixture(autouse=True)
def _test_remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's own default remote (a test that shares one across clones sets it itself)."""
    monkeypatch.setenv("MLMAKE_REMOTE", str(tmp_path.parent / f"{tmp_path.name}-default-remote"))


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
