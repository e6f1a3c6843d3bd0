"""The graph as an inline SVG, each node coloured by its state: a column per depth (the longest
path from a source), nodes in build order within a column, an edge from each upstream node."""

from __future__ import annotations

from html import escape

from mlmake.reporting.gather import NodeView

COLORS = {"built": "#2da44e", "stale": "#bf8700", "missing": "#8c959f", "failed": "#cf222e", "removed": "#6e7781"}
BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 190, 38, 60, 16, 10


def graph_svg(nodes: list[NodeView]) -> str:
    """An <svg> of the nodes (in build order) and their upstream edges."""
    if not nodes:
        return ""
    place = _layout(nodes)
    width = max(x for x, _ in place.values()) + BOX_W + PAD
    height = max(y for _, y in place.values()) + BOX_H + PAD
    edges = [_edge(place[up], place[n.address]) for n in nodes for up in n.upstream if up in place]
    boxes = [_box(n, *place[n.address]) for n in nodes]
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" style="max-width:100%;height:auto" role="img" aria-label="the graph">'
            f'{"".join(edges)}{"".join(boxes)}</svg>')


def _layout(nodes: list[NodeView]) -> dict[str, tuple[int, int]]:
    depth: dict[str, int] = {}
    for n in nodes:  # build order: every upstream node comes first
        depth[n.address] = 1 + max((depth[u] for u in n.upstream if u in depth), default=-1)
    rows: dict[int, int] = {}
    place = {}
    for n in nodes:
        row = rows.get(depth[n.address], 0)
        rows[depth[n.address]] = row + 1
        place[n.address] = (PAD + depth[n.address] * (BOX_W + GAP_X), PAD + row * (BOX_H + GAP_Y))
    return place


def _edge(start: tuple[int, int], end: tuple[int, int]) -> str:
    x1, y1 = start[0] + BOX_W, start[1] + BOX_H // 2
    x2, y2 = end[0], end[1] + BOX_H // 2
    mid = (x1 + x2) // 2
    return f'<path d="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}" fill="none" stroke="#8c959f" stroke-width="1.5"/>'


def _box(node: NodeView, x: int, y: int) -> str:
    color = COLORS.get(node.state, "#8c959f")
    title = f"{node.address} ({node.kind}): {node.state}" + (f"; {node.reason}" if node.reason else "")
    return (f'<g class="node {escape(node.state)}"><title>{escape(title)}</title>'
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="#fff" stroke="{color}" '
            f'stroke-width="2"/><rect x="{x}" y="{y}" width="6" height="{BOX_H}" rx="3" fill="{color}"/>'
            f'<text x="{x + 14}" y="{y + 16}" font-size="12" font-family="system-ui,sans-serif">'
            f"{escape(node.address)}</text>"
            f'<text x="{x + 14}" y="{y + 31}" font-size="10" fill="#57606a" font-family="system-ui,sans-serif">'
            f"{escape(node.kind)} · {escape(node.state)}</text></g>")
