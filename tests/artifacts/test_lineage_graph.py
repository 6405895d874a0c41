"""The lineage picture's nodes (artifacts/lineage_graph.py): what each shows, and the name each link has for
assistive technology, which must contain the words on screen (WCAG 2.5.3, axe's label-content-name-mismatch)."""

import re
import xml.etree.ElementTree as ET

from artifacts.lineage_graph import GraphNode, render_svg, shorten

SVG = "{http://www.w3.org/2000/svg}"


def _picture(nodes: list[GraphNode]) -> ET.Element:
    return ET.fromstring(render_svg(nodes, [], title="t", description="d"))  # noqa: S314 (the picture under test)


def _links(nodes: list[GraphNode]) -> list[ET.Element]:
    return list(_picture(nodes).iter(f"{SVG}a"))


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text.lower())


def _contains_in_order(name: str, visible: str) -> bool:
    words, shown = _words(name), _words(visible)
    return any(words[i : i + len(shown)] == shown for i in range(len(words) - len(shown) + 1))


def test_a_long_label_is_cut_at_the_end_of_a_word_when_one_ends_late_enough():
    assert shorten("Baseline on the October 1-21 snapshot") == "Baseline on the October…"
    assert shorten("abcdefghijklmnopqrstuvwxyz0123") == "abcdefghijklmnopqrstuvwxy…"
    assert shorten("short") == "short"


def test_each_links_name_holds_its_visible_words_in_order_and_the_whole_label():
    long_name = "Retrain on the October 1-28 snapshot, preprocessor from run A"
    nodes = [
        GraphNode(key="run:1", kind="run", label=long_name, detail="run · 0123456789", href="/versions/1/#run-1"),
        GraphNode(key="artifact_version:2", kind="artifact_version", label="model", detail="Model v2", href="/v/2/"),
    ]

    for link in _links(nodes):
        visible = " ".join("".join(text.itertext()) for text in link.iter(f"{SVG}text"))
        assert _contains_in_order(link.get("aria-label"), visible), (link.get("aria-label"), visible)
    assert long_name in _links(nodes)[0].get("aria-label")


def test_this_versions_node_is_marked_current():
    nodes = [
        GraphNode(key="artifact_version:2", kind="artifact_version", label="m", current=True),
        GraphNode(key="artifact_version:3", kind="artifact_version", label="n"),
    ]
    svg = _picture(nodes)

    classes = [group.get("class").split() for group in svg.iter(f"{SVG}g") if "node" in group.get("class", "")]
    assert ["node", "artifact_version", "current"] in classes
    assert ["node", "artifact_version"] in classes
