"""The asset graph as the UI draws it, from the definitions alone (no Spark, no run): every
real dependency is an edge, and the groups follow the data's order."""

from ui_helpers import EXPECTED_EDGES, GROUPS

from recsys_dagster.assets.helpers import GROUP_ORDER
from recsys_dagster.definitions import defs


def graph():
    nodes = defs.resolve_asset_graph().asset_nodes
    groups = {n.key.to_user_string(): n.group_name for n in nodes}
    edges = {(p.to_user_string(), n.key.to_user_string()) for n in nodes for p in n.parent_keys}
    return groups, edges


def test_every_asset_is_in_its_group_with_the_edges_of_the_design():
    groups, edges = graph()
    assert groups == GROUPS
    assert edges == EXPECTED_EDGES


def test_no_edge_runs_from_a_later_group_into_an_earlier_one():
    groups, edges = graph()
    rank = {group: i for i, group in enumerate(GROUP_ORDER)}
    assert set(groups.values()) == set(GROUP_ORDER)
    backwards = sorted((a, b) for a, b in edges if rank[groups[a]] > rank[groups[b]])
    assert backwards == []


def test_serving_assets_take_the_evaluation_as_an_input_not_a_bare_dependency():
    """Each served table publishes by what evaluation_metrics recorded about the model
    (publishing.record_to_publish), so the edge carries data, loaded by the IO manager."""
    nodes = {n.key.to_user_string(): n for n in defs.resolve_asset_graph().asset_nodes}
    for name, node in nodes.items():
        if node.group_name != "serving":
            continue
        spec = node.assets_def
        inputs = {key.to_user_string() for key in spec.keys_by_input_name.values()}
        assert "evaluation_metrics" in inputs, name
