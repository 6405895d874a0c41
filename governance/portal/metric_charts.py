"""A metric across a model's versions as a small line chart: drawn here as SVG text (no script: the portal's
Content-Security-Policy allows none inline, and a chart needs none), always shown beside a table of the same numbers.

Pure: numbers in, markup out. Every text is escaped for XML; values that are not finite numbers are left out of the
line (the table beside it shows them as recorded).
"""

import math
from dataclasses import dataclass
from numbers import Real

from artifacts.lineage_graph import xml_text

WIDTH, HEIGHT = 320, 140
LEFT, RIGHT, TOP, BOTTOM = 56, 14, 14, 28
LINE = "#2452c2"
GRID = "#d9dde5"
INK = "#5b6475"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif"


@dataclass(frozen=True)
class Point:
    version: int
    value: float


def numeric(value: object) -> float | None:
    """`value` as a float when it is a finite number (not a bool, not NaN or infinity), else None."""
    if isinstance(value, bool) or not isinstance(value, Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _label(value: float) -> str:
    return f"{value:.4g}"


def metric_chart_svg(metric: str, points: list[Point], *, chart_id: str, direction: str = "") -> str:
    """An SVG line chart of `metric` over version numbers, oldest left; `chart_id` makes its title's and
    description's ids unique on the page; `direction` ("higher" or "lower" is better) is said in its description."""
    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    title = f"{metric} by version"
    if points:
        first, last = points[0], points[-1]
        description = (
            f"{len(points)} version{'s' if len(points) != 1 else ''}, from {_label(first.value)} at v{first.version} "
            f"to {_label(last.value)} at v{last.version}."
        )
    else:
        description = "No version recorded it as a number."
    if direction:
        description += f" {direction.capitalize()} is better."
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="metric-chart" role="img" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" aria-labelledby="{title_id}" aria-describedby="{desc_id}" '
        f'font-family="{FONT}" font-size="11">',
        f'<title id="{title_id}">{xml_text(title)}</title><desc id="{desc_id}">{xml_text(description)}</desc>',
    ]
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_width}" height="{plot_height}" fill="none" stroke="{GRID}"/>'
    )
    if points:
        low, high = min(p.value for p in points), max(p.value for p in points)
        span = high - low

        def y_of(value: float) -> float:
            # A flat line sits in the middle rather than on an edge.
            return TOP + plot_height / 2 if span == 0 else TOP + (high - value) / span * plot_height

        def x_of(index: int) -> float:
            return LEFT + plot_width / 2 if len(points) == 1 else LEFT + index * plot_width / (len(points) - 1)

        coordinates = [(x_of(index), y_of(point.value)) for index, point in enumerate(points)]
        for value in {high, low}:
            parts.append(
                f'<text x="{LEFT - 6}" y="{y_of(value) + 4:.1f}" text-anchor="end" fill="{INK}">'
                f"{xml_text(_label(value))}</text>"
            )
        for index, ((x, _), point) in enumerate(zip(coordinates, points, strict=True)):
            if index in (0, len(points) - 1) or len(points) <= 8:
                parts.append(
                    f'<text x="{x:.1f}" y="{HEIGHT - 10}" text-anchor="middle" fill="{INK}">v{point.version}</text>'
                )
        if len(coordinates) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coordinates)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{LINE}" stroke-width="2"/>')
        for (x, y), point in zip(coordinates, points, strict=True):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{LINE}">'
                f"<title>v{point.version}: {xml_text(_label(point.value))}</title></circle>"
            )
    parts.append("</svg>")
    return "".join(parts)
