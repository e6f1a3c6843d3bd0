"""Third-party kinds through the `mlmake.kinds` entry points: one that works is treated like a
built-in kind by validate, schema, plan and build; one that cannot be used is a clear error at
start-up that names its distribution. Each test installs its distributions as plain dist-info
folders on PYTHONPATH and runs the real CLI in a subprocess (the registry is loaded once per
process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import SKLEARN_PLUGIN_INSTALLED

NOTE_KIND = '''
from dataclasses import dataclass, field
from pathlib import Path

from mlmake.core.kind import ItemPaths, NodeDecl, Result, build_dir
from mlmake.core.spec import INTERNAL, node_config


@dataclass(frozen=True, slots=True)
class Note:
    name: str = field(metadata=INTERNAL)
    span: object = field(metadata=INTERNAL, compare=False)
    text: str


class NoteKind:
    name = "note"
    section = "notes"
    default = True
    word = "note"
    recipe = 1
    libraries = ()
    item_type = Note

    def item_schema(self):
        return {"type": "object", "additionalProperties": False, "required": ["text"],
                "description": "A note written to a file.",
                "properties": {"text": {"type": "string", "description": "What the note says."}}}

    def parse(self, name, span, data):
        return Note(name, span, data["text"])

    def paths(self, item):
        return ItemPaths()

    def check(self, item):
        if item.data["text"].strip() == "":
            return [item.problem(("text",), "a note needs words")]
        return []

    def declare(self, project, item):
        return NodeDecl(f"notes.{item.name}", self.name, item.span, node_config(item),
                        outputs=(build_dir("notes", item.name),), recipe=self.recipe)

    def run(self, task):
        folder = Path(task.staged(next(iter(task.staging))))
        (folder / "note.txt").write_text(task.config["text"] + "\\n", encoding="utf-8")
        return Result(metrics={"words": len(task.config["text"].split())})


KIND = NoteKind()
'''

PROJECT = textwrap.dedent("""\
    version: 1
    project: notes
    notes:
      hello: {text: hello world}
""")


def install(site: Path, dist: str, module: str, source: str, entry: str) -> None:
    """A distribution `dist` with one module and one `mlmake.kinds` entry point, as pip leaves it."""
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[mlmake.kinds]\n{entry}\n", encoding="utf-8")
    (site / f"{module}.py").write_text(source, encoding="utf-8")


def mlmake(root: Path, site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site), "MLMAKE_NO_MEMO": "1"}
    return subprocess.run([sys.executable, "-m", "mlmake", "-C", str(root), *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def project(tmp_path: Path, text: str = PROJECT) -> Path:
    root = tmp_path / "p"
    root.mkdir()
    (root / "mlproject.yaml").write_text(text, encoding="utf-8")
    return root


def test_a_plugin_kind_validates_plans_builds_and_is_in_the_schema(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, "mlmake-notes", "mlmake_notes", NOTE_KIND, "note = mlmake_notes:KIND")
    root = project(tmp_path)
    validate = mlmake(root, site, "validate")
    assert (validate.returncode, validate.stdout) == (0, "mlproject.yaml is valid: 1 nodes (1 notes)\n")
    schema = json.loads(mlmake(root, site, "schema").stdout)
    assert schema["properties"]["notes"]["additionalProperties"] == {"$ref": "#/$defs/note"}
    assert schema["$defs"]["note"]["required"] == ["text"]
    plan = mlmake(root, site, "plan")
    assert plan.stdout.splitlines()[0].split() == ["+", "notes.hello", "new", "node"]
    build = mlmake(root, site, "build")
    assert build.returncode == 0, build.stderr
    assert (root / "build/notes/hello/note.txt").read_text(encoding="utf-8") == "hello world\n"
    assert mlmake(root, site, "plan").stdout.splitlines()[-1] == "Plan: 0 to build, 1 up to date."


def test_a_plugin_kinds_check_runs_in_validate(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, "mlmake-notes", "mlmake_notes", NOTE_KIND, "note = mlmake_notes:KIND")
    root = project(tmp_path, PROJECT.replace("hello world", "' '"))
    result = mlmake(root, site, "validate")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == "mlproject.yaml:4:17: notes.hello.text: a note needs words"


def test_without_the_plugin_its_section_is_an_unknown_key(tmp_path: Path) -> None:
    result = mlmake(project(tmp_path), tmp_path / "empty", "validate")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == "mlproject.yaml:3:1: notes: unknown key 'notes'"


def test_a_kind_missing_a_method_names_its_distribution(tmp_path: Path) -> None:
    site = tmp_path / "site"
    broken = NOTE_KIND.replace("    def run(self, task):", "    def ran(self, task):")
    install(site, "mlmake-notes", "mlmake_notes", broken, "note = mlmake_notes:KIND")
    result = mlmake(project(tmp_path), site, "validate")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == ("error: the kind 'mlmake_notes:KIND' from mlmake-notes 0.1 (entry point note = "
                             "mlmake_notes:KIND) has no run: a kind needs every member of mlmake.core.kind.Kind\n")


def test_two_kinds_claiming_one_section_name_both_distributions(tmp_path: Path) -> None:
    site = tmp_path / "site"
    claim = NOTE_KIND.replace('name = "note"', 'name = "mymodel"').replace('section = "notes"', 'section = "models"')
    install(site, "mlmake-mymodel", "mlmake_mymodel", claim, "mymodel = mlmake_mymodel:KIND")
    result = mlmake(project(tmp_path), site, "plan")
    assert result.returncode == 1
    assert result.stderr == (
        "error: two kinds claim the section 'models' as its default kind: 'model' from mlmake and 'mymodel' "
        "from mlmake-mymodel 0.1 (entry point mymodel = mlmake_mymodel:KIND); a kind that adds to a section "
        "sets default = False\n")


def test_a_kind_claiming_one_of_the_files_own_keys_is_refused(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, "mlmake-notes", "mlmake_notes", NOTE_KIND.replace('section = "notes"', 'section = "params"'),
            "note = mlmake_notes:KIND")
    result = mlmake(project(tmp_path), site, "validate")
    assert (result.returncode, result.stderr) == (1, (
        "error: the kind 'note' from mlmake-notes 0.1 (entry point note = mlmake_notes:KIND) claims the section "
        "'params', which is a key of every project file; a kind needs a section of its own\n"))


def test_two_kinds_with_one_name_name_both_distributions(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, "mlmake-notes", "mlmake_notes", NOTE_KIND, "note = mlmake_notes:KIND")
    install(site, "mlmake-notes2", "mlmake_notes2", NOTE_KIND.replace('section = "notes"', 'section = "memos"'),
            "note = mlmake_notes2:KIND")
    result = mlmake(project(tmp_path), site, "build")
    assert result.returncode == 1
    assert result.stderr == (
        "error: two kinds are named 'note': one from mlmake-notes 0.1 (entry point note = mlmake_notes:KIND), "
        "one from mlmake-notes2 0.1 (entry point note = mlmake_notes2:KIND); uninstall one of them\n")


def test_a_plugin_that_fails_to_import_is_an_error_not_a_crash(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, "mlmake-notes", "mlmake_notes", "raise ImportError('needs sklearn')\n", "note = mlmake_notes:KIND")
    result = mlmake(project(tmp_path), site, "validate")
    assert result.returncode == 1
    assert result.stderr == ("error: cannot load the kind 'mlmake_notes:KIND' from mlmake-notes 0.1 (entry point "
                             "note = mlmake_notes:KIND): ImportError: needs sklearn\n")


@pytest.mark.skipif(SKLEARN_PLUGIN_INSTALLED, reason="mlmake-sklearn is installed in this environment")
def test_a_kind_whose_plugin_is_not_installed_says_so(tmp_path: Path) -> None:
    text = "version: 1\nproject: p\ndatasets:\n  t: {path: t.csv}\nmodels:\n" \
           "  m: {kind: sklearn, features: t, target: y, task: binary}\n"
    result = mlmake(project(tmp_path, text), tmp_path, "validate")
    assert result.returncode == 1
    assert result.stderr.splitlines()[:4] == [
        "mlproject.yaml:6:7: models.m.kind: unknown key 'kind'",
        "    m: {kind: sklearn, features: t, target: y, task: binary}",
        "        ^",
        "  hint: models holds only the model kind here; a kind from a plugin needs its distribution installed "
        "(`mlmake schema` shows the kinds)",
    ]
