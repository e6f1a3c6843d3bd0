"""mlmake/render.py: plans and graphs as text, JSON, markdown, mermaid and dot."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jsonschema

from mlmake.core.schema import data_dir
from mlmake.outputs import render
from mlmake.planning.plan import ABSENT, BUILD, FRESH, MAYBE, NEW, REMOVE, RESTORE, Decision, Plan, Reason
from mlmake.state.fingerprint import Components
from mlmake.state.lock import Entry
from tests.fakes import load

MakeProject = Callable[[dict[str, str | bytes]], Path]

PLAN = Plan((
    Decision("steps.a", "cmd", NEW, (Reason("new"),), "f1"),
    Decision("models.m", "model", BUILD, (Reason("config", "params.max_depth", 6, 8),
                                      Reason("input", "data/x.csv", "h1", "h2")), "f2"),
    Decision("steps.b", "cmd", MAYBE, (Reason("upstream_pending", "models.m"),), "f3"),
    Decision("steps.c", "cmd", FRESH, (), "f4"),
    Decision("datasets.d", "dataset", ABSENT, (), "f5", missing=("build/datasets/d",)),
    Decision("steps.gone", "cmd", REMOVE, (Reason("removed"),)),
))

GRAPH_YAML = """\
version: 1
project: demo
steps:
  a:
    cmd: [python, -c, pass]
    outs: [build/a.txt]
  b:
    cmd: [python, -c, pass]
    deps: [steps.a]
    outs: [build/b.txt]
  c:
    cmd: [python, -c, pass]
    deps: [steps.a, build/b.txt]
    outs: [build/c.txt]
"""


def plan_schema() -> dict[str, object]:
    return json.loads((data_dir() / "schemas" / "plan.schema.json").read_text(encoding="utf-8"))


def test_text_plan_lines_and_styles() -> None:
    assert render.plan_lines(PLAN) == [
        (" + steps.a     new node", "green"),
        (" ~ models.m    params.max_depth 6 → 8", "yellow"),
        ("               data/x.csv changed", "yellow"),
        ("~? steps.b     upstream models.m will rebuild; rebuilds only if its output changes", "cyan"),
        (" = steps.c", ""),
        (" = datasets.d  up to date; not in this workspace: build/datasets/d", "dim"),
        (" - steps.gone  no longer in mlproject.yaml", "red"),
        ("", ""),
        ("Plan: 2 to build, 1 to check after upstream, 2 up to date (1 not in this workspace), 1 to remove.",
         "bold"),
    ]


def test_an_empty_plan() -> None:
    assert render.plan_lines(Plan(())) == [("", ""), ("Plan: 0 to build, 0 up to date.", "bold")]


def test_restore_lines_and_restorable_outputs() -> None:
    plan = Plan((
        Decision("steps.a", "cmd", RESTORE, (Reason("input", "data/x.csv"), Reason("cached", "0123abcd")), "f"),
        Decision("steps.b", "cmd", ABSENT, (), "f", missing=("build/b.txt",), restorable=True),
    ))
    assert render.plan_lines(plan) == [
        (" < steps.a  data/x.csv changed", "blue"),
        ("            built before (fingerprint 0123abcd): restore from the cache", "blue"),
        (" = steps.b  up to date; restorable from the DVC remote: build/b.txt", "dim"),
        ("", ""),
        ("Plan: 0 to build, 1 to restore from cache, 1 up to date (1 not in this workspace).", "bold"),
    ]
    body = json.loads(render.plan_json(plan, "demo"))
    jsonschema.validate(body, plan_schema())
    assert (body["has_changes"], body["summary"]["restore"], body["nodes"][0]["symbol"]) == (True, 1, "<")
    assert body["nodes"][1]["restorable"] is True


def test_step_note() -> None:
    assert render.step_note(PLAN.steps[3]) == []
    assert render.step_note(PLAN.steps[4]) == ["up to date; not in this workspace: build/datasets/d"]
    assert render.step_note(PLAN.steps[1]) == ["params.max_depth 6 → 8", "data/x.csv changed"]


def test_json_plan_is_documented_and_valid() -> None:
    body = json.loads(render.plan_json(PLAN, "demo"))
    jsonschema.validate(body, plan_schema())
    assert body["format_version"] == 1 and body["project"] == "demo" and body["has_changes"] is True
    assert body["summary"] == {"new": 1, "build": 1, "maybe": 1, "restore": 0, "check": 0, "fresh": 1, "absent": 1,
                               "remove": 1, "text": PLAN.summary()}
    assert [n["address"] for n in body["nodes"]] == [s.address for s in PLAN.steps]
    assert body["nodes"][1] == {
        "address": "models.m", "kind": "model", "action": "build", "symbol": "~", "fingerprint": "f2",
        "reasons": [
            {"code": "config", "subject": "params.max_depth", "old": 6, "new": 8, "text": "params.max_depth 6 → 8"},
            {"code": "input", "subject": "data/x.csv", "old": "h1", "new": "h2", "text": "data/x.csv changed"},
        ],
        "missing_outputs": [],
        "restorable": False,
    }
    assert body["nodes"][4]["missing_outputs"] == ["build/datasets/d"]
    assert body["nodes"][5]["fingerprint"] == ""


def test_json_plan_of_nothing_to_do() -> None:
    body = json.loads(render.plan_json(Plan((Decision("steps.c", "cmd", FRESH, (), "f"),)), "demo"))
    jsonschema.validate(body, plan_schema())
    assert body["has_changes"] is False


def test_the_schema_names_every_reason_code_the_planner_can_give() -> None:
    import inspect

    from mlmake.planning import plan

    codes = set(plan_schema()["properties"]["nodes"]["items"]["properties"]["reasons"]["items"]  # type: ignore[index]
                ["properties"]["code"]["enum"])
    source = inspect.getsource(plan.Reason.text)
    spoken = {line.split('"')[1] for line in source.splitlines() if line.strip().startswith('"') and '":' in line}
    assert spoken == codes


def test_markdown_plan(make_project: MakeProject) -> None:
    _, graph = load(make_project({"mlproject.yaml": GRAPH_YAML}))
    plan = Plan((Decision("steps.a", "cmd", FRESH),
                 Decision("steps.b", "cmd", BUILD, (Reason("config", "x", "a|b", "<c>"),)),
                 Decision("steps.c", "cmd", MAYBE, (Reason("upstream_pending", "steps.b"),))))
    assert render.plan_markdown(plan, graph, "demo") == """\
### mlmake plan: `demo`

**Plan: 1 to build, 1 to check after upstream, 1 up to date.**

| | node | kind | why |
|---|---|---|---|
| `~` | `steps.b` | cmd | x a\\|b → &lt;c&gt; |
| `~?` | `steps.c` | cmd | upstream steps.b will rebuild; rebuilds only if its output changes |

<details><summary>Graph</summary>

```mermaid
flowchart LR
  n0["steps.a<br/><small>cmd</small>"]:::fresh
  n1["steps.b<br/><small>cmd</small>"]:::build
  n2["steps.c<br/><small>cmd</small>"]:::maybe
  n0 --> n1
  n0 --> n2
  n1 --> n2
  classDef build fill:#fff8c5,stroke:#9a6700,color:#9a6700
  classDef maybe fill:#ddf4ff,stroke:#0969da,color:#0969da,stroke-dasharray:4 2
  classDef fresh fill:#f6f8fa,stroke:#8c959f,color:#57606a
```

</details>
"""


def test_markdown_keeps_a_multiline_reason_in_its_row(make_project: MakeProject) -> None:
    _, graph = load(make_project({"mlproject.yaml": GRAPH_YAML}))
    odd = Reason("something_new", "a\nb")  # a future reason whose text has a newline
    text = render.plan_markdown(Plan((Decision("steps.a", "cmd", BUILD, (odd,)),)), graph, "demo")
    assert "| `~` | `steps.a` | cmd | something_new a<br>b |\n" in text


def test_markdown_says_when_there_is_nothing_to_build(make_project: MakeProject) -> None:
    _, graph = load(make_project({"mlproject.yaml": GRAPH_YAML}))
    text = render.plan_markdown(Plan((Decision("steps.a", "cmd", FRESH),)), graph, "demo")
    assert "Nothing to build: every node is up to date.\n" in text
    assert "| node |" not in text


SQL_CHANGE = Reason("config", "sql", "SELECT a\nFROM t\n", "SELECT a\nFROM t\nWHERE a > 0\n")


def test_a_multiline_sql_change_keeps_one_line_per_reason(make_project: MakeProject) -> None:
    # every `sql: |` feature set: the query once came out raw, cutting the text plan and the PR table
    plan = Plan((Decision("features.f", "features", BUILD, (SQL_CHANGE,)),))
    assert render.plan_lines(plan)[0] == (" ~ features.f  sql changed", "yellow")
    assert all("\n" not in line for line, _ in render.plan_lines(plan))
    _, graph = load(make_project({"mlproject.yaml": GRAPH_YAML}))
    rows = [line for line in render.plan_markdown(plan, graph, "demo").splitlines() if line.startswith("| `")]
    assert len(rows) == 1 and rows[0].endswith(" |")


def test_graph_as_text_mermaid_and_dot(make_project: MakeProject) -> None:
    _, graph = load(make_project({"mlproject.yaml": GRAPH_YAML}))
    assert render.graph_text(graph) == (
        "steps.a  cmd       <- -\n"
        "steps.b  cmd       <- steps.a\n"
        "steps.c  cmd       <- steps.a, steps.b\n")
    assert render.mermaid(graph) == (
        "flowchart LR\n"
        '  n0["steps.a<br/><small>cmd</small>"]\n'
        '  n1["steps.b<br/><small>cmd</small>"]\n'
        '  n2["steps.c<br/><small>cmd</small>"]\n'
        "  n0 --> n1\n"
        "  n0 --> n2\n"
        "  n1 --> n2\n")
    assert render.dot(graph) == (
        "digraph mlmake {\n"
        "  rankdir=LR;\n"
        "  node [shape=box, style=rounded];\n"
        '  "steps.a" [label="steps.a\\n(cmd)"];\n'
        '  "steps.b" [label="steps.b\\n(cmd)"];\n'
        '  "steps.c" [label="steps.c\\n(cmd)"];\n'
        '  "steps.a" -> "steps.b";\n'
        '  "steps.a" -> "steps.c";\n'
        '  "steps.b" -> "steps.c";\n'
        "}\n")


def test_why_marks_the_components_that_differ() -> None:
    step = Decision("models.m", "model", BUILD, (Reason("config", "params.max_depth", 6, 8),), "new-fp",
                Components.from_plain({"config": {"params": {"max_depth": 8}}, "recipe": 1, "inputs": {}}))
    recorded = Entry("old-fp", "model", Components.from_plain({"config": {"params": {"max_depth": 6}}, "recipe": 1,
                                                               "inputs": {}}))
    assert render.why_lines(step, recorded) == [
        "models.m (model): build",
        "  fingerprint  recorded old-fp  current new-fp",
        "~ config",
        '    ~ params: {"max_depth": 6} → {"max_depth": 8}',
        "= recipe",
        "    = 1",
        "= inputs",
        "  reason: params.max_depth 6 → 8",
    ]


def test_why_of_a_node_never_built_and_of_an_absent_one() -> None:
    step = Decision("steps.a", "cmd", NEW, (Reason("new"),), "fp",
                Components.from_plain({"recipe": 1, "code": {"x.py": "h" * 200}}))
    assert render.why_lines(step, None) == [
        "steps.a (cmd): new",
        "  fingerprint  recorded -  current fp",
        "~ recipe",
        "    ~ null → 1",
        "~ code",
        "    ~ x.py: - → " + "h" * 97 + "...",
        "  reason: new node",
    ]
    absent = Decision("steps.a", "cmd", ABSENT, (), "fp", Components(), ("build/a.txt",))
    assert render.why_lines(absent, Entry("fp", "cmd", Components.from_plain({})))[-1] == \
        "  outputs not in this workspace: build/a.txt"


def test_a_comma_inside_a_value_is_shown_as_written() -> None:
    # _show() once rendered lists as canonical(value).replace(",", ", "), rewriting commas inside strings
    reason = Reason("config", "cmd", ["python", "x.py", "--cols", "a,b"], ["python", "x.py", "--cols", "a,c"])
    assert reason.text() == 'cmd ["python", "x.py", "--cols", "a,b"] → ["python", "x.py", "--cols", "a,c"]'
