"""Lineage as a picture: nodes and edges in, a self-contained SVG document out.

The layout is grandalf's layered (Sugiyama) algorithm, the one Graphviz's `dot` uses: every edge points the same
way (data flows left to right), a chain's nodes fall on distinct layers, and the order within each layer is chosen
to cut crossings. Edges that skip layers are routed through the layout's dummy points, so they bend around the
nodes in between instead of crossing them.

Pure: no database, no request. Every piece of text is escaped for XML and stripped of characters XML cannot hold,
because labels may carry free text (descriptions, metadata) written by any contributor.
"""

import re
from dataclasses import dataclass
from html import escape
from itertools import pairwise
from typing import Literal

NodeKind = Literal["dataset_version", "run", "artifact_version"]

NODE_WIDTH = 190
NODE_HEIGHT = 46
LAYER_GAP = 70  # between layers: the room edges have to curve
SIBLING_GAP = 18  # between nodes of one layer
COMPONENT_GAP = 36  # between parts of the graph that no edge joins
MARGIN = 16
LABEL_CHARACTERS = 26

#: Fill and stroke per kind; the second line of each node says its kind in words, so colour is never the only cue.
KIND_COLOURS: dict[str, tuple[str, str]] = {
    "dataset_version": ("#e3f4e8", "#1f7a3d"),
    "run": ("#fff3d6", "#8a5a00"),
    "artifact_version": ("#e6edfb", "#2452c2"),
}
#: A deleted version, whatever its kind: greyed, with a dashed outline (and "deleted" in its spoken name).
DELETED_COLOURS = ("#f1f2f4", "#6b7280")
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif"

# XML 1.0 allows tab, newline, carriage return and everything from U+0020 except surrogates, U+FFFE and U+FFFF.
NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class GraphNode:
    """One box: `label` on the first line, `detail` (its kind, a digest…) on the second, a link when `href`.
    A `deleted` version is drawn dashed and greyed, and says so: it is part of the lineage, not missing from it."""

    key: str
    kind: NodeKind
    label: str
    detail: str = ""
    href: str | None = None
    current: bool = False
    deleted: bool = False


@dataclass(frozen=True)
class Placed:
    node: GraphNode
    x: float  # left
    y: float  # top


def xml_text(value: object) -> str:
    """`value` as text safe inside an XML element or a double- or single-quoted attribute."""
    return escape(NOT_XML.sub("\ufffd", str(value)), quote=True)


def shorten(text: str, limit: int = LABEL_CHARACTERS) -> str:
    """`text` cut to `limit` characters with an ellipsis, at the end of a word where one ends in its second half:
    what a node shows is then whole words of the name a screen reader hears (the link's full label), not a word
    cut in two that no listener could match to it."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    word_end = max((i for i, char in enumerate(cut) if not char.isalnum()), default=-1)
    return (cut[:word_end] if word_end >= limit // 2 else cut) + "…"


class _Box:
    """What grandalf reads of a vertex (its size) and writes back (its centre, `xy`).

    grandalf stacks layers top to bottom; the picture reads left to right, so the layout is asked for the
    transposed sizes and its coordinates are swapped back when drawing.
    """

    def __init__(self) -> None:
        self.w, self.h = NODE_HEIGHT, NODE_WIDTH
        self.xy = (0.0, 0.0)


class _Route:
    def __init__(self) -> None:
        self.points: list[tuple[float, float]] = []

    def setpath(self, points: list[tuple[float, float]]) -> None:
        self.points = list(points)


def layout(
    nodes: list[GraphNode], edges: list[tuple[str, str]]
) -> tuple[list[Placed], list[list[tuple[float, float]]], float, float]:
    """Where each node goes (top-left corner), each edge's points from source centre to target centre, and the
    picture's width and height. Parts of the graph that no edge joins are stacked one under the other."""
    # Imported here, not at the top: grandalf loads numpy (~13 MiB of resident memory), which a web worker would
    # otherwise carry from its first request on, lineage pictures or not (benchmarks/README.md, "Where the memory
    # goes").
    from grandalf.graphs import Edge, Graph, Vertex
    from grandalf.layouts import SugiyamaLayout

    vertices = {node.key: Vertex(node) for node in nodes}
    for vertex in vertices.values():
        vertex.view = _Box()
    graph_edges = []
    for source, target in edges:
        if source in vertices and target in vertices and source != target:
            edge = Edge(vertices[source], vertices[target])
            edge.view = _Route()
            graph_edges.append(edge)
    graph = Graph(list(vertices.values()), graph_edges)

    placed: list[Placed] = []
    routes: list[list[tuple[float, float]]] = []
    top, width = MARGIN, 0.0
    for component in graph.C:
        sugiyama = SugiyamaLayout(component)
        sugiyama.xspace, sugiyama.yspace = SIBLING_GAP, LAYER_GAP
        # Layer 0 is every node nothing flows into: the oldest data.
        sugiyama.init_all()
        sugiyama.draw()
        # Transposed back: grandalf's y (layers) is our x, its x (order in a layer) our y.
        centres = {v: (v.view.xy[1], v.view.xy[0]) for v in component.sV}
        dx = MARGIN + NODE_WIDTH / 2 - min(x for x, _ in centres.values())
        dy = top + NODE_HEIGHT / 2 - min(y for _, y in centres.values())
        for vertex, (cx, cy) in centres.items():
            x, y = cx + dx - NODE_WIDTH / 2, cy + dy - NODE_HEIGHT / 2
            placed.append(Placed(node=vertex.data, x=x, y=y))
            width = max(width, x + NODE_WIDTH + MARGIN)
        routes.extend([(py + dx, px + dy) for px, py in edge.view.points] for edge in component.sE)
        top = max(y for _, y in centres.values()) + dy + NODE_HEIGHT / 2 + COMPONENT_GAP
    height = top - COMPONENT_GAP + MARGIN if placed else 2 * MARGIN
    return placed, routes, max(width, 2 * MARGIN), height


def _edge_path(points: list[tuple[float, float]]) -> str:
    """From the source's right side to the target's left, through the layout's dummy points, as curves that leave
    and arrive horizontally."""
    (sx, sy), (tx, ty) = points[0], points[-1]
    route = [(sx + NODE_WIDTH / 2, sy), *points[1:-1], (tx - NODE_WIDTH / 2, ty)]
    parts = [f"M{route[0][0]:.1f},{route[0][1]:.1f}"]
    for (ax, ay), (bx, by) in pairwise(route):
        bend = (bx - ax) / 2
        parts.append(f"C{ax + bend:.1f},{ay:.1f} {bx - bend:.1f},{by:.1f} {bx:.1f},{by:.1f}")
    return " ".join(parts)


def _node(placed: Placed) -> str:
    node = placed.node
    fill, stroke = DELETED_COLOURS if node.deleted else KIND_COLOURS[node.kind]
    label, detail = shorten(node.label), shorten(node.detail, LABEL_CHARACTERS + 4)
    states = (" (deleted)" if node.deleted else "") + (" (this version)" if node.current else "")
    spoken = (f"{node.label}, {node.detail}" if node.detail else node.label) + states
    # The link's name starts with the words it shows (WCAG 2.5.3, axe's label-content-name-mismatch): a speech-input
    # user says what they see. A label cut to fit the box is followed by its whole text, in parentheses.
    link_name = f"{label}, {detail}" if detail else label
    if label != node.label or detail != node.detail:
        link_name += f" ({node.label}, {node.detail})" if node.detail else f" ({node.label})"
    link_name += states
    dashed = ' stroke-dasharray="5 3"' if node.deleted else ""
    box = (
        f'<rect x="{placed.x:.1f}" y="{placed.y:.1f}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="6" '
        f'fill="{fill}" stroke="{stroke}" stroke-width="{3 if node.current else 1.2}"{dashed}/>'
        f'<text x="{placed.x + 10:.1f}" y="{placed.y + 19:.1f}" font-size="13" font-weight="600" fill="#1d2330">'
        # The space after the label is not drawn (SVG collapses it) but separates the two lines' words in the text
        # a browser or an accessibility checker reads from the link: "model v3", not "modelv3".
        f"{xml_text(label)} </text>"
        f'<text x="{placed.x + 10:.1f}" y="{placed.y + 36:.1f}" font-size="11.5" fill="#5b6475">'
        f"{xml_text(detail)}</text>"
    )
    marks = [mark for mark, on in (("deleted", node.deleted), ("current", node.current)) if on]
    classes = " ".join(["node", node.kind, *marks])
    inner = f'<g class="{classes}" data-node="{xml_text(node.key)}"><title>{xml_text(spoken)}</title>{box}</g>'
    if node.href:
        return f'<a href="{xml_text(node.href)}" aria-label="{xml_text(link_name)}">{inner}</a>'
    return inner


def render_svg(
    nodes: list[GraphNode], edges: list[tuple[str, str]], *, title: str, description: str, id_prefix: str = "lineage"
) -> str:
    """An SVG document of the graph: `edges` are (source key, target key) with data flowing source → target;
    edges naming a node not in `nodes` are left out. `title` and `description` become its accessible name and
    description; `id_prefix` keeps its ids unique when several pictures share a page."""
    placed, routes, width, height = layout(nodes, edges)
    title_id, desc_id, arrow_id = (f"{id_prefix}-{part}" for part in ("title", "desc", "arrow"))
    paths = "".join(
        f'<path d="{_edge_path(points)}" fill="none" stroke="#8a93a5" stroke-width="1.4" '
        f'marker-end="url(#{arrow_id})"/>'
        for points in routes
    )
    boxes = "".join(_node(p) for p in sorted(placed, key=lambda p: (p.x, p.y)))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" role="group" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" aria-labelledby="{title_id}" '
        f'aria-describedby="{desc_id}" font-family="{FONT}">'
        f'<title id="{title_id}">{xml_text(title)}</title><desc id="{desc_id}">{xml_text(description)}</desc>'
        f'<defs><marker id="{arrow_id}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8a93a5"/></marker></defs>'
        f'<g class="edges">{paths}</g><g class="nodes">{boxes}</g></svg>'
    )
