"""Line charts as inline SVG, drawn on the server: no script (the ui's CSP forbids it), no
matplotlib per request (a chart is a few hundred bytes of markup, built in microseconds).

    chart = line_chart([Series("run 1", points=[(1, 0.5), (2, 0.7)])], x_label="epoch",
                       y_label="val_accuracy", title="validation accuracy")
    chart.svg   # markup for a template (`|safe`): every text in it is escaped here

Series get one colour each, in order (colour-blind safe, Okabe-Ito); a series may be dashed,
drawn as markers only, or as a step line (a best-so-far curve). The legend sits under the plot
as SVG text, so a chart copied out of the page keeps it.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

# One colour a series (runs, trials): colour-blind safe, the ui's blue first.
COLOURS = ("#2c6fb0", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#8c6d00", "#000000")
INK, MUTED, GRID = "#1d2430", "#5b6472", "#d9dee5"
WIDTH, HEIGHT = 560, 260
LEFT, RIGHT, TOP, BOTTOM = 58, 14, 26, 40
LEGEND_ROW = 18
LEGEND_COLUMNS = 2


def colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]


@dataclass
class Series:
    label: str
    points: list[tuple[float, float]]
    colour: str = ""  # "" : the next palette colour
    dashed: bool = False
    markers: bool = True
    line: bool = True
    step: bool = False  # a step line (hold each value until the next x)
    marker: str = "circle"  # or "cross"


@dataclass
class Chart:
    svg: str
    n_points: int
    labels: list[str] = field(default_factory=list)


def _ticks(low: float, high: float, n: int = 5) -> list[float]:
    if high <= low:
        return [low]
    raw = (high - low) / n
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    out, value = [], first
    while value <= high + step * 1e-9:
        out.append(round(value, 12))
        value += step
    return out


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.001:
        return f"{value:.2g}"
    return f"{value:.4g}"


def line_chart(
    series: list[Series],
    *,
    x_label: str,
    y_label: str,
    title: str = "",
    chart_id: str = "",
    integer_x: bool = True,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Chart:
    """The chart of `series` (their finite points); an empty chart says "no points"."""
    kept = []
    for i, s in enumerate(series):
        pts = sorted((float(x), float(y)) for x, y in s.points if math.isfinite(y))
        kept.append((s, pts, s.colour or colour(i)))
    every = [p for _, pts, _ in kept for p in pts]
    legend_rows = math.ceil(len(kept) / LEGEND_COLUMNS) if kept else 0
    total_h = height + legend_rows * LEGEND_ROW
    e = html.escape
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {total_h}" width="{width}" height="{total_h}" '
        'style="max-width:100%;height:auto"'
        + (f' id="{e(chart_id)}"' if chart_id else "")
        + f' aria-label="{e(title or y_label)}">',
        f"<title>{e(title or y_label)}</title>",
    ]
    if title:
        parts.append(
            f'<text x="{LEFT}" y="16" font-size="13" font-weight="600" fill="{INK}">'
            f"{e(title)}</text>"
        )
    x0, x1, y0, y1 = LEFT, width - RIGHT, TOP, height - BOTTOM
    if not every:
        parts.append(
            f'<text x="{(x0 + x1) / 2}" y="{(y0 + y1) / 2}" text-anchor="middle" '
            f'font-size="12" fill="{MUTED}">no points recorded</text></svg>'
        )
        return Chart("".join(parts), 0, [s.label for s, _, _ in kept])
    xs, ys = [p[0] for p in every], [p[1] for p in every]
    xlo, xhi = min(xs), max(xs)
    ylo, yhi = min(ys), max(ys)
    if xhi == xlo:
        xlo, xhi = xlo - 1, xhi + 1
    if yhi == ylo:
        pad = abs(ylo) * 0.05 or 0.5
        ylo, yhi = ylo - pad, yhi + pad
    else:
        pad = (yhi - ylo) * 0.06
        ylo, yhi = ylo - pad, yhi + pad

    def px(x: float) -> float:
        return x0 + (x - xlo) / (xhi - xlo) * (x1 - x0)

    def py(y: float) -> float:
        return y1 - (y - ylo) / (yhi - ylo) * (y1 - y0)

    for t in _ticks(ylo, yhi):
        parts.append(
            f'<line x1="{x0}" x2="{x1}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="{GRID}"/>'
            f'<text x="{x0 - 6}" y="{py(t) + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{MUTED}">{_fmt(t)}</text>'
        )
    xticks = _ticks(xlo, xhi)
    if integer_x:
        xticks = sorted({round(t) for t in xticks if abs(t - round(t)) < 1e-9})
    for t in xticks:
        parts.append(
            f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{y1}" y2="{y1 + 4}" stroke="{MUTED}"/>'
            f'<text x="{px(t):.1f}" y="{y1 + 16}" text-anchor="middle" font-size="11" '
            f'fill="{MUTED}">{_fmt(t)}</text>'
        )
    parts.append(
        f'<line x1="{x0}" x2="{x1}" y1="{y1}" y2="{y1}" stroke="{MUTED}"/>'
        f'<line x1="{x0}" x2="{x0}" y1="{y0}" y2="{y1}" stroke="{MUTED}"/>'
        f'<text x="{(x0 + x1) / 2}" y="{height - 6}" text-anchor="middle" font-size="12" '
        f'fill="{INK}">{e(x_label)}</text>'
        f'<text x="14" y="{(y0 + y1) / 2}" text-anchor="middle" font-size="12" fill="{INK}" '
        f'transform="rotate(-90 14 {(y0 + y1) / 2})">{e(y_label)}</text>'
    )
    for s, pts, c in kept:
        parts.append(f'<g class="series" data-label="{e(s.label)}">')
        if s.line and len(pts) > 1:
            coords = []
            for k, (x, y) in enumerate(pts):
                if s.step and k:
                    coords.append(f"{px(x):.1f},{py(pts[k - 1][1]):.1f}")
                coords.append(f"{px(x):.1f},{py(y):.1f}")
            dash = ' stroke-dasharray="5 4"' if s.dashed else ""
            parts.append(
                f'<polyline fill="none" stroke="{c}" stroke-width="2"{dash} '
                f'points="{" ".join(coords)}"/>'
            )
        if s.markers or len(pts) == 1:
            for x, y in pts:
                tip = f"<title>{e(s.label)}: {_fmt(x)}, {_fmt(y)}</title>"
                if s.marker == "cross":
                    a, b = px(x), py(y)
                    parts.append(
                        f'<path d="M{a - 4:.1f},{b - 4:.1f}L{a + 4:.1f},{b + 4:.1f}'
                        f'M{a - 4:.1f},{b + 4:.1f}L{a + 4:.1f},{b - 4:.1f}" stroke="{c}" '
                        f'stroke-width="2">{tip}</path>'
                    )
                else:
                    parts.append(
                        f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{c}">{tip}</circle>'
                    )
        parts.append("</g>")
    column = (width - LEFT) / LEGEND_COLUMNS
    for k, (s, _, c) in enumerate(kept):
        lx = LEFT + (k % LEGEND_COLUMNS) * column
        ly = height + (k // LEGEND_COLUMNS) * LEGEND_ROW + 4
        dash = ' stroke-dasharray="5 4"' if s.dashed else ""
        parts.append(
            f'<g class="legend"><line x1="{lx:.1f}" x2="{lx + 22:.1f}" y1="{ly:.1f}" '
            f'y2="{ly:.1f}" stroke="{c}" stroke-width="3"{dash}/>'
            f'<text x="{lx + 28:.1f}" y="{ly + 4:.1f}" font-size="12" fill="{INK}">'
            f"{e(s.label[:34])}</text></g>"
        )
    parts.append("</svg>")
    return Chart("".join(parts), len(every), [s.label for s, _, _ in kept])
