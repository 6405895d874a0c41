"""The metric charts of the model page (governance/portal/metric_charts.py): well-formed SVG with an accessible
name, whatever the metric is called and whatever was recorded."""

import math
import xml.etree.ElementTree as ET

import pytest

from governance.portal.metric_charts import Point, metric_chart_svg, numeric

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 (the chart under test, not untrusted input)


@pytest.mark.parametrize("value", [True, "0.9", None, math.nan, math.inf, [1]])
def test_only_finite_numbers_are_drawn(value):
    assert numeric(value) is None


def test_a_hostile_metric_name_is_escaped_and_the_chart_stays_well_formed():
    svg = metric_chart_svg('<script>x</script>&"\x00', [Point(1, 0.5)], chart_id="c")

    root = parse(svg)
    assert "<script>" not in svg
    assert root.find(f"{SVG}title").text == '<script>x</script>&"\ufffd by version'


def test_a_flat_metric_sits_mid_height_and_an_empty_one_says_so():
    flat = parse(metric_chart_svg("auc", [Point(1, 0.8), Point(2, 0.8)], chart_id="flat"))
    heights = {float(circle.get("cy")) for circle in flat.iter(f"{SVG}circle")}
    assert len(heights) == 1

    empty = parse(metric_chart_svg("auc", [], chart_id="empty", direction="lower"))
    assert empty.find(f"{SVG}desc").text == "No version recorded it as a number. Lower is better."
    assert empty.find(f"{SVG}polyline") is None
