"""graph.py: references, shared outputs, cycles, order and selection."""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from mlmake.core.errors import MlmakeError, Span, SpecError
from mlmake.core.graph import Graph, build_graph, to_networkx
from mlmake.core.spec import load_project
from tests.helpers import VALID, errors_of, load

MakeProject = Callable[[dict[str, str | bytes]], Path]
F = "mlproject.yaml"
HEAD = "version: 1\nproject: demo\n"

CHAIN = HEAD + textwrap.dedent("""\
    datasets:
      customers: {path: data/customers.csv}
      events: {path: data/events.csv}
    features:
      base: {from: [customers, events], sql: SELECT 1}
      extra: {from: base, python: hooks/extra.py:make}
    models:
      m: {features: extra, target: y, task: binary}
      raw_model: {features: customers, target: y, task: binary}
    steps:
      prep: {cmd: echo, outs: [build/prep]}
      report: {cmd: echo, deps: [models.m, build/prep/x.txt, scripts/r.py], outs: [build/report.html]}
    deploy:
      api: {model: m, kind: http}
      nightly: {model: m, kind: batch, input: events, output: build/scores.parquet}
    """)


@pytest.fixture
def chain(make_project: MakeProject) -> Graph:
    return load(make_project({F: CHAIN}))[1]


def test_valid_graph(make_project: MakeProject) -> None:
    graph = load(make_project({F: VALID}))[1]
    assert list(graph.nodes) == ["datasets.customers", "features.customer_features", "models.churn", "steps.report"]
    assert graph.uses["steps.report"] == {"models.churn": ("build/models/churn",)}
    assert graph.files["steps.report"] == ("scripts/report.py",)


def test_order_is_topological_and_deterministic(chain: Graph) -> None:
    order = list(chain.nodes)
    for address, ups in chain.uses.items():
        assert all(order.index(u) < order.index(address) for u in ups)
    # among ready nodes, the one declared first (sections in registry order) goes first
    assert order == [
        "datasets.customers", "datasets.events", "features.base", "features.extra", "models.m", "models.raw_model",
        "steps.prep", "steps.report", "deploy.api", "deploy.nightly",
    ]


def test_edges_and_what_each_node_reads(chain: Graph) -> None:
    assert chain.uses["features.base"] == {"datasets.customers": ("build/datasets/customers",),
                                           "datasets.events": ("build/datasets/events",)}
    assert chain.files["features.extra"] == ("hooks/extra.py",)
    assert chain.files["datasets.customers"] == ("data/customers.csv",)
    assert chain.uses["deploy.nightly"] == {"models.m": ("build/models/m",),
                                            "datasets.events": ("build/datasets/events",)}
    # a file under another node's output folder is an edge to that node
    assert chain.uses["steps.report"] == {"models.m": ("build/models/m",), "steps.prep": ("build/prep",)}
    assert chain.files["steps.report"] == ("scripts/r.py",)


def test_upstream_downstream_and_closure(chain: Graph) -> None:
    assert chain.upstream("features.extra") == ("features.base",)
    assert set(chain.downstream("models.m")) == {"deploy.api", "deploy.nightly", "steps.report"}
    assert chain.closure(["features.extra"], down=False) == {
        "features.extra", "features.base", "datasets.customers", "datasets.events"}


def test_select(chain: Graph) -> None:
    assert chain.select([]) == list(chain.nodes)
    assert chain.select(["m"]) == [
        "datasets.customers", "datasets.events", "features.base", "features.extra", "models.m"]
    assert chain.select(["features.extra"], downstream=True) == [
        "datasets.customers", "datasets.events", "features.base", "features.extra", "models.m", "steps.prep",
        "steps.report", "deploy.api", "deploy.nightly"]


def test_resolve_target(chain: Graph, make_project: MakeProject) -> None:
    assert chain.resolve_target("report") == "steps.report"
    assert chain.resolve_target("models.m") == "models.m"
    with pytest.raises(MlmakeError) as info:
        chain.resolve_target("reprot")
    assert str(info.value) == "unknown target 'reprot' (did you mean 'report'?)"
    with pytest.raises(MlmakeError) as info:
        chain.resolve_target("zzz")
    assert str(info.value) == "unknown target 'zzz'"
    twin = load(make_project({F: HEAD + "datasets: {x: {path: x.csv}}\nmodels: {x: {features: x, target: y, "
                                        "task: binary}}\n"}))[1]
    with pytest.raises(MlmakeError) as info:
        twin.resolve_target("x")
    assert str(info.value) == "target 'x' is ambiguous: datasets.x, models.x"


def test_features_prefer_a_feature_set_over_a_dataset_of_the_same_name(make_project: MakeProject) -> None:
    text = HEAD + ("datasets: {t: {path: t.csv}, s: {path: s.csv}}\n"
                   "features: {t: {from: s, sql: x}, u: {from: t, sql: x}}\n")
    graph = load(make_project({F: text}))[1]
    assert graph.upstream("features.u") == ("features.t",)
    assert graph.upstream("features.t") == ("datasets.s",)


def test_feature_set_named_like_its_own_input_reads_the_dataset(make_project: MakeProject) -> None:
    text = HEAD + "datasets: {t: {path: t.csv}}\nfeatures: {t: {from: t, sql: x}}\n"
    _, graph = load(make_project({F: text}))
    assert graph.upstream("features.t") == ("datasets.t",)


def test_feature_set_reading_only_itself_is_an_error(make_project: MakeProject) -> None:
    text = HEAD + "features: {t: {from: t, sql: x}}\n"
    assert errors_of(make_project({F: text})).splitlines()[0] == (
        "mlproject.yaml:3:22: features.t.from[0]: features.t refers to itself")


def test_to_networkx(chain: Graph) -> None:
    g = to_networkx(chain)
    assert set(g.nodes) == set(chain.nodes)
    assert g.has_edge("features.extra", "models.m") and not g.has_edge("models.m", "features.extra")
    assert g.nodes["models.m"]["kind"] == "model"


# --- errors ------------------------------------------------------------------------


def test_unknown_reference_with_did_you_mean(make_project: MakeProject) -> None:
    root = make_project({F: VALID.replace("features: customer_features", "features: custmer_features")})
    assert errors_of(root) == textwrap.dedent("""\
        mlproject.yaml:16:15: models.churn.features: unknown feature set or dataset 'custmer_features'
              features: custmer_features
                        ^
          hint: did you mean 'customer_features'?
        1 error found""")


def test_unknown_reference_lists_the_known_names(make_project: MakeProject) -> None:
    root = make_project({F: VALID.replace("from: customers", "from: zzz")})
    assert errors_of(root) == textwrap.dedent("""\
        mlproject.yaml:11:11: features.customer_features.from[0]: unknown feature set or dataset 'zzz'
              from: zzz
                    ^
          hint: known: customer_features, customers
        1 error found""")


def test_unknown_address_in_deps(make_project: MakeProject) -> None:
    root = make_project({F: VALID.replace("models.churn]", "models.chrun]")})
    assert errors_of(root) == textwrap.dedent("""\
        mlproject.yaml:24:31: steps.report.deps[1]: unknown node 'models.chrun'
              deps: [scripts/report.py, models.chrun]
                                        ^
          hint: did you mean 'models.churn'?
        1 error found""")


def test_unknown_model_of_a_deploy_target(make_project: MakeProject) -> None:
    root = make_project({F: VALID + "deploy:\n  api: {model: curn, kind: http}\n"})
    assert errors_of(root) == textwrap.dedent("""\
        mlproject.yaml:27:16: deploy.api.model: unknown model 'curn'
            api: {model: curn, kind: http}
                         ^
          hint: did you mean 'churn'?
        1 error found""")


def test_self_reference(make_project: MakeProject) -> None:
    root = make_project({F: HEAD + "steps:\n  s: {cmd: echo, deps: [steps.s]}\n"})
    assert errors_of(root) == textwrap.dedent("""\
        mlproject.yaml:4:25: steps.s.deps[0]: steps.s refers to itself
            s: {cmd: echo, deps: [steps.s]}
                                  ^
        1 error found""")


def test_cycle_is_shown_as_its_full_path(make_project: MakeProject) -> None:
    text = HEAD + textwrap.dedent("""\
        datasets:
          raw: {path: data/raw.csv}
        features:
          a:
            from: [raw, b]
            sql: SELECT 1
          b:
            from: a
            sql: SELECT 1
        """)
    assert errors_of(make_project({F: text})) == textwrap.dedent("""\
        mlproject.yaml:7:5: features.a: dependency cycle: features.a → features.b → features.a
              from: [raw, b]
              ^
          hint: remove one of these references
        1 error found""")


def test_longer_cycle_through_steps_and_files(make_project: MakeProject) -> None:
    text = HEAD + textwrap.dedent("""\
        steps:
          one: {cmd: echo, deps: [build/three.txt], outs: [build/one.txt]}
          two: {cmd: echo, deps: [build/one.txt], outs: [build/two.txt]}
          three: {cmd: echo, deps: [steps.two], outs: [build/three.txt]}
        """)
    assert errors_of(make_project({F: text})).splitlines()[0] == (
        "mlproject.yaml:4:8: steps.one: dependency cycle: steps.one → steps.three → steps.two → steps.one")


def test_cycle_through_a_produced_file(make_project: MakeProject) -> None:
    root = make_project({F: VALID.replace("data/customers.csv", "build/report.html")})
    assert errors_of(root) == textwrap.dedent("""\
        mlproject.yaml:8:5: datasets.customers: dependency cycle: datasets.customers → steps.report → \
models.churn → features.customer_features → datasets.customers
              path: build/report.html
              ^
          hint: remove one of these references
        1 error found""")


def test_duplicate_outputs(make_project: MakeProject) -> None:
    text = HEAD + textwrap.dedent("""\
        steps:
          one:
            cmd: echo one
            outs: [build/out.txt]
          two:
            cmd: echo two
            outs: [build/out.txt]
        """)
    assert errors_of(make_project({F: text})) == textwrap.dedent("""\
        mlproject.yaml:8:5: steps.two: output 'build/out.txt' is also written by steps.one
              cmd: echo two
              ^
          hint: each file or folder must have one producer
        1 error found""")


@pytest.mark.parametrize("out", ["build/datasets/a", "build/datasets/a/x.parquet", "build", "./build/datasets/a"])
def test_outputs_that_overlap_a_node_folder(make_project: MakeProject, out: str) -> None:
    text = HEAD + f"datasets:\n  a: {{path: x.csv}}\nsteps:\n  s: {{cmd: echo, outs: ['{out}']}}\n"
    assert errors_of(make_project({F: text})).splitlines()[0] == (
        f"mlproject.yaml:6:6: steps.s: output '{out}' is also written by datasets.a")


def test_every_graph_error_in_one_pass(make_project: MakeProject) -> None:
    text = HEAD + textwrap.dedent("""\
        datasets:
          a: {path: x.csv}
        models:
          m: {features: b, target: y, task: binary}
        steps:
          s: {cmd: echo, outs: [build/datasets/a]}
          t: {cmd: echo, deps: [models.n]}
        """)
    assert [line for line in errors_of(make_project({F: text})).splitlines() if line.startswith(("mlp", "3"))] == [
        "mlproject.yaml:8:6: steps.s: output 'build/datasets/a' is also written by datasets.a",
        "mlproject.yaml:6:17: models.m.features: unknown feature set or dataset 'b'",
        "mlproject.yaml:9:25: steps.t.deps[0]: unknown node 'models.n'",
        "3 errors found",
    ]


def test_graph_of_a_project_without_its_document(make_project: MakeProject) -> None:
    project = load_project(make_project({F: VALID.replace("features: customer_features", "features: nope")}))
    bare = dataclasses.replace(project, doc=None)
    with pytest.raises(SpecError) as info:
        build_graph(bare)
    [diag] = info.value.diagnostics
    assert (diag.span, diag.path) == (Span(F, 15, 3), "models.churn.features")
    assert diag.message == "unknown feature set or dataset 'nope'"
