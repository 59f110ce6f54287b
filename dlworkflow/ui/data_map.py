"""The 2-D map of `dlw explore` (reports/explore/records/map.csv) as an inline SVG scatter.

Each point is a link to its sample's page with a <title> (id and label). Hovering a point (or
focusing it with the keyboard) shows its thumbnail, text or row in a panel beside the plot:
pure CSS (`a.pt:hover .tip`), no script, which the UI's CSP forbids. The panel sits outside
the plotting area, so no later point is drawn over it. A point carries its thumbnail's URL in
a CSS custom property (--t), and only the :hover rule turns it into a background image, so a
map of thousands of points loads no image until one is hovered (a background image in a hidden
element is fetched at load by Chromium: measured, 4,250 requests on the demo map).

The SVG text is built once per map.csv (and manifest) and kept, so a page costs a lookup."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import quote

from dlworkflow.ui.data import cached, natural, record, records_folder, samples

if TYPE_CHECKING:
    import numpy as np

    from dlworkflow.project import Project

WIDTH, HEIGHT, PAD = 640, 520, 12  # the plotting area (px) and its margin
PANEL = 190  # the hover panel's width, right of the plot
THUMB = 112
MAX_POINTS = 6_000  # more are a random choice (the page stays ~3 MB and fast to draw)
N_COLOURS = 10  # classes beyond these share the last colour (data.css .c0 ... .c9)


@dataclass
class MapView:
    svg: str  # the <svg> element, ready to embed
    legend: list[tuple[str, int, int]]  # (class, colour index, points)
    n_points: int  # points in map.csv
    n_candidates: int
    n_drawn: int  # points drawn: all, or MAX_POINTS of them


def drawn(candidate: np.ndarray) -> list[int]:
    """The rows drawn: all up to MAX_POINTS; beyond, every candidate and a fixed random
    choice of the others (seed 0, so a reload draws the same points)."""
    import numpy as np

    if len(candidate) <= MAX_POINTS:
        return list(range(len(candidate)))
    marked = np.flatnonzero(candidate)[:MAX_POINTS]
    others = np.flatnonzero(~candidate)
    rng = np.random.default_rng(0)
    chosen = rng.choice(others, size=max(0, MAX_POINTS - len(marked)), replace=False)
    return sorted(int(i) for i in np.concatenate([marked, chosen]))


def map_view(project: Project) -> MapView | None:
    from dlworkflow.explore.records import MAP

    files = (records_folder(project) / MAP, project.paths.manifest)
    return cached(project, "map-svg", files, lambda: _build(project))


def _build(project: Project) -> MapView | None:
    from dlworkflow.explore.records import MAP

    table = record(project, MAP)
    if table is None or table.empty:
        return None
    found = samples(project)
    x, y = table["x"].to_numpy(dtype=float), table["y"].to_numpy(dtype=float)
    x0, x1, y0, y1 = float(x.min()), float(x.max()), float(y.min()), float(y.max())
    sx = (WIDTH - 2 * PAD) / ((x1 - x0) or 1.0)
    sy = (HEIGHT - 2 * PAD) / ((y1 - y0) or 1.0)
    px = PAD + (x - x0) * sx
    py = HEIGHT - PAD - (y - y0) * sy  # y up
    # colour by the browse page's class of each sample (the map's own grouping)
    classes = found.columns["class"]
    class_of = [classes[found.position[s]] for s in table["sample_id"].astype(str).tolist()]
    names = sorted(set(class_of), key=natural)
    colour = {c: min(i, N_COLOURS - 1) for i, c in enumerate(names)}
    counts = {c: 0 for c in names}
    candidate = table["candidate"].astype(str).str.lower().isin(("true", "1")).to_numpy()
    tx = WIDTH + 14
    parts = [
        f"<svg id='embedding-map' class='map' viewBox='0 0 {WIDTH + PANEL} {HEIGHT}' "
        f"width='{WIDTH + PANEL}' height='{HEIGHT}' role='img' "
        "aria-label='2-D map of the samples, coloured by class'>",
        f"<rect class='frame' x='0.5' y='0.5' width='{WIDTH - 1}' height='{HEIGHT - 1}'/>",
        f"<text class='hint' x='{tx}' y='24'>hover a point</text>",
    ]
    order = sorted(drawn(candidate), key=lambda i: bool(candidate[i]))  # candidates on top
    features = found.features
    for i in order:
        sid = str(table.at[i, "sample_id"])
        cls = class_of[i]
        counts[cls] += 1
        at = found.position[sid]
        card = found.card(at)
        href = "/data/sample?id=" + quote(sid, safe="")
        ring = " cand" if candidate[i] else ""
        title = f"{sid} · {card['label']}" + (" · label-issue candidate" if candidate[i] else "")
        thumb = ""
        if card["image"]:  # used by the stylesheet on hover only (a custom property)
            thumb = f" style=\"--t:url('/data/image?id={quote(sid, safe='')}')\""
        parts.append(
            f"<a class='pt{ring}' href='{href}'{thumb}>"
            f"<circle class='c{colour[cls]}' cx='{px[i]:.1f}' cy='{py[i]:.1f}' r='3'/>"
            f"<title>{escape(title)}</title><g class='tip'>{_tip(card, sid, tx, features)}</g></a>"
        )
    parts.append("</svg>")
    legend = [(c, colour[c], counts[c]) for c in names]
    return MapView("".join(parts), legend, len(table), int(candidate.sum()), len(order))


def _tip(card: dict[str, object], sid: str, tx: int, names: list[str]) -> str:
    """The hover panel of one point: its image (or text, or row), id and label."""
    top = 48
    if card["image"]:
        body = "<div class='th'></div>"
    elif card["text"]:
        body = f"<div class='tx'>{escape(str(card['text'])[:240])}</div>"
    elif card["values"]:
        pairs = zip(names, card["values"])  # type: ignore[call-overload]
        values = "<br>".join(f"{escape(n[:24])}: {escape(str(v))}" for n, v in list(pairs)[:8])
        body = f"<div class='tx'>{values}</div>"
    else:
        body = f"<div class='tx'>{escape(str(card['path']))}</div>"
    label = escape(str(card["label"])[:24])
    short = escape(sid if len(sid) <= 24 else "…" + sid[-23:])
    return (  # the id and label on top, then the image, text or row
        f"<text x='{tx}' y='{top}'>{short}</text><text x='{tx}' y='{top + 18}'>label {label}</text>"
        f"<foreignObject x='{tx}' y='{top + 28}' width='{PANEL - 20}' "
        f"height='{HEIGHT - top - 40}'>{body}</foreignObject>"
    )
