"""codedeps: the project files a hook or a script runs, found from its imports."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlmake.core.codedeps import Workspace, python_files, script_files


class Files:
    """An in-memory project: path → text; folders are implied by the paths."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files

    def read(self, rel: str) -> bytes | None:
        text = self.files.get(rel)
        return None if text is None else text.encode()

    def is_dir(self, rel: str) -> bool:
        return any(p.startswith(rel + "/") for p in self.files)


def test_a_file_without_project_imports_is_itself() -> None:
    files = Files({"hook.py": "import os\nimport json, polars as pl\nfrom collections import abc\n"})
    assert python_files(files, "hook.py") == ("hook.py",)


def test_import_finds_a_module_file_at_the_root() -> None:
    files = Files({"f/hook.py": "import helpers\n", "helpers.py": ""})
    assert python_files(files, "f/hook.py") == ("f/hook.py", "helpers.py")


def test_the_entry_folder_is_searched_before_the_root() -> None:
    files = Files({"s/run.py": "import util\n", "s/util.py": "", "util.py": ""})
    assert python_files(files, "s/run.py") == ("s/run.py", "s/util.py")


def test_a_dotted_import_runs_each_package_init_on_the_way() -> None:
    files = Files({"hook.py": "import a.b.c\n", "a/__init__.py": "", "a/b/__init__.py": "", "a/b/c.py": ""})
    assert python_files(files, "hook.py") == ("a/__init__.py", "a/b/__init__.py", "a/b/c.py", "hook.py")


def test_a_namespace_package_needs_no_init() -> None:
    files = Files({"hook.py": "from lib.tools import clean\n", "lib/tools.py": ""})
    assert python_files(files, "hook.py") == ("hook.py", "lib/tools.py")


def test_from_import_of_a_submodule_and_of_a_name() -> None:
    files = Files({"hook.py": "from pkg import sub, VALUE\n", "pkg/__init__.py": "VALUE = 1\n", "pkg/sub.py": ""})
    assert python_files(files, "hook.py") == ("hook.py", "pkg/__init__.py", "pkg/sub.py")


def test_star_import() -> None:
    files = Files({"hook.py": "from consts import *\n", "consts.py": ""})
    assert python_files(files, "hook.py") == ("consts.py", "hook.py")


@pytest.mark.parametrize(("source", "found"), [
    ("from . import sibling\n", "pkg/inner/sibling.py"),
    ("from .sibling import x\n", "pkg/inner/sibling.py"),
    ("from .. import top\n", "pkg/top.py"),
    ("from ..top import x\n", "pkg/top.py"),
    ("from ...beyond import x\n", "beyond.py"),  # above the root stays at the root
])
def test_relative_imports_start_at_the_importing_files_package(source: str, found: str) -> None:
    files = Files({"pkg/inner/mod.py": source, "pkg/inner/sibling.py": "", "pkg/top.py": "", "beyond.py": "",
                   "hook.py": "import pkg.inner.mod\n"})
    assert found in python_files(files, "hook.py")


def test_imports_anywhere_in_the_file_count() -> None:
    files = Files({"hook.py": "def f():\n    import late\n\nif False:\n    from cond import x\n\n"
                              "try:\n    import opt\nexcept ImportError:\n    pass\n",
                   "late.py": "", "cond.py": "", "opt.py": ""})
    assert python_files(files, "hook.py") == ("cond.py", "hook.py", "late.py", "opt.py")


def test_transitive_imports_and_cycles_end() -> None:
    files = Files({"hook.py": "import a\n", "a.py": "import b\n", "b.py": "import a\nimport c\n", "c.py": ""})
    assert python_files(files, "hook.py") == ("a.py", "b.py", "c.py", "hook.py")


def test_a_file_that_does_not_parse_is_still_a_dependency_without_imports() -> None:
    files = Files({"hook.py": "import broken\n", "broken.py": "import other\ndef (:\n", "other.py": ""})
    assert python_files(files, "hook.py") == ("broken.py", "hook.py")


def test_a_missing_entry_is_itself() -> None:
    assert python_files(Files({}), "gone.py") == ("gone.py",)


def test_names_that_are_not_modules_resolve_to_nothing() -> None:
    files = Files({"hook.py": "import a.b\nfrom pkg import nothing\n", "a.py": "", "pkg/__init__.py": ""})
    # a.b cannot be imported (a is a module, not a package); a name in pkg is no file
    assert python_files(files, "hook.py") == ("hook.py", "pkg/__init__.py")


SCRIPTS = {"scripts/run.py": "import helpers\n", "scripts/helpers.py": "", "tools/__init__.py": "",
           "tools/gen.py": "from tools import words\n", "tools/words.py": "", "app/__init__.py": "",
           "app/__main__.py": "import app.core\n", "app/core.py": ""}


@pytest.mark.parametrize(("argv", "found"), [
    (["python", "scripts/run.py", "--rows", "3"], ("scripts/helpers.py", "scripts/run.py")),
    (["python3", "-u", "-W", "ignore", "./scripts/run.py"], ("scripts/helpers.py", "scripts/run.py")),
    (["python", "-m", "tools.gen", "x"], ("tools/__init__.py", "tools/gen.py", "tools/words.py")),
    (["python", "-mtools.gen"], ("tools/__init__.py", "tools/gen.py", "tools/words.py")),
    (["python", "-m", "app"], ("app/__init__.py", "app/__main__.py", "app/core.py")),
    (["python", "-m", "json.tool"], ()),  # the standard library
    (["python", "-c", "import helpers"], ()),
    (["python", "../outside.py"], ()),
    (["python", "scripts/missing.py"], ()),
    (["python"], ()),
    (["bash", "scripts/run.py"], ()),
    ([], ()),
])
def test_script_files(argv: list[str], found: tuple[str, ...]) -> None:
    assert script_files(Files(SCRIPTS), argv) == found


def test_the_workspace_reads_files_and_knows_folders(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("from . import mod\n")
    (tmp_path / "pkg" / "mod.py").write_text("")
    (tmp_path / "hook.py").write_text("import pkg\n")
    workspace = Workspace(tmp_path)
    assert python_files(workspace, "hook.py") == ("hook.py", "pkg/__init__.py", "pkg/mod.py")
    assert workspace.is_dir("pkg") and not workspace.is_dir("hook.py")
    assert workspace.read("pkg") is None and workspace.read("absent.py") is None
