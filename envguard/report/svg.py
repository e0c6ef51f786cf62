"""A lineage graph drawn as inline SVG: layered left to right, no JavaScript, no network."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from html import escape

__all__ = ["lineage_svg"]

_W, _H, _GAP_X, _GAP_Y = 190, 30, 70, 14
_COLOURS = {
    "sha256": "#dbeafe",
    "run": "#dcfce7",
    "models": "#fef9c3",
    "proof": "#f3e8ff",
    "s3": "#ffedd5",
    "dvc-stage": "#e0f2fe",
    "approval": "#fce7f3",
}


def _label(node: str) -> str:
    if node.startswith("sha256:"):
        return "data " + node[7:19] + "…"
    return node if len(node) <= 26 else node[:25] + "…"


def _colour(node: str, prod: set[str]) -> str:
    if node in prod:
        return "#fecaca"
    kind = node.split(":", 1)[0]
    return _COLOURS.get(kind, "#f1f5f9")


def lineage_svg(edges: Iterable[tuple[str, str, str]], prod: set[str] | None = None) -> str:
    """SVG of the graph ``edges`` (src, dst, relation); nodes in ``prod`` are drawn red."""
    prod = prod or set()
    edge_list = list(dict.fromkeys(edges))
    if not edge_list:
        return '<p class="muted">No lineage recorded yet.</p>'
    parents: dict[str, set[str]] = defaultdict(set)
    nodes: dict[str, None] = {}
    for src, dst, _ in edge_list:
        nodes.setdefault(src)
        nodes.setdefault(dst)
        if src != dst:
            parents[dst].add(src)
    layer: dict[str, int] = {}

    def depth(node: str, seen: frozenset[str] = frozenset()) -> int:
        if node in layer:
            return layer[node]
        ups = [p for p in parents.get(node, ()) if p not in seen]
        value = 0 if not ups else 1 + max(depth(p, seen | {node}) for p in ups)
        layer[node] = value
        return value

    for node in nodes:
        depth(node)
    columns: dict[int, list[str]] = defaultdict(list)
    for node in nodes:
        columns[layer[node]].append(node)
    pos: dict[str, tuple[int, int]] = {}
    for col, members in columns.items():
        for row, node in enumerate(sorted(members)):
            pos[node] = (20 + col * (_W + _GAP_X), 20 + row * (_H + _GAP_Y))
    width = 40 + (max(columns) + 1) * (_W + _GAP_X)
    height = 40 + max(len(m) for m in columns.values()) * (_H + _GAP_Y)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="lineage graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
        'markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#64748b"/>'
        "</marker></defs>",
    ]
    for src, dst, relation in edge_list:
        (x1, y1), (x2, y2) = pos[src], pos[dst]
        dash = ' stroke-dasharray="5,3"' if relation == "masked" else ""
        parts.append(
            f'<line x1="{x1 + _W}" y1="{y1 + _H // 2}" x2="{x2}" y2="{y2 + _H // 2}" '
            f'stroke="#64748b"{dash} marker-end="url(#arrow)">'
            f"<title>{escape(relation)}</title></line>"
        )
    for node, (x, y) in pos.items():
        parts.append(
            f'<g><rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="5" '
            f'fill="{_colour(node, prod)}" stroke="#475569"/>'
            f'<text x="{x + 8}" y="{y + 19}" font-size="12" font-family="sans-serif">'
            f"{escape(_label(node))}</text><title>{escape(node)}</title></g>"
        )
    parts.append("</svg>")
    return "".join(parts)
