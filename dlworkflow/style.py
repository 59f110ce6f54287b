"""One look for every page and figure dlworkflow writes (eda.html, the evaluation figures,
report.html, monitor.html): the colours, the typography and the figure size, in one place.

The pages share CSS_BASE (colours as CSS variables, one font stack, headings, tables, figures and
the "must know" box that opens every report); the figures share RC (matplotlib's settings, put
in place by apply_matplotlib(), which plots.new_figure calls) and DPI."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

# Named colours: ink for text, good/bad/warn for verdicts, primary for a single data series,
# reference for the baseline a series is compared with (reference vs live, before vs after).
PALETTE = {
    "ink": "#1d2430",
    "muted": "#5b6472",
    "line": "#d9dee5",
    "soft": "#f4f6f9",
    "good": "#17703a",
    "bad": "#b3261e",
    "warn": "#8a5a00",
    "caution": "#d35400",
    "primary": "#2c6fb0",
    "reference": "#8c959f",
}
# Distinct colours for categories (classes, runs, boxes), colour-blind safe (Okabe-Ito), first
# the primary blue.
SERIES = ("#2c6fb0", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#8c6d00", "#000000")
FONT = "DejaVu Sans"  # matplotlib's bundled font: the same glyphs on every machine
DPI = 90  # every PNG figure: 1 inch of figure = 90 px, so a 9 pt label is ~11 px everywhere

RC: dict[str, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": [FONT],
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.titleweight": "bold",
    "axes.labelsize": 9.0,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "legend.fontsize": 8.0,
    "legend.frameon": False,
    "axes.edgecolor": PALETTE["muted"],
    "axes.labelcolor": PALETTE["ink"],
    "text.color": PALETTE["ink"],
    "xtick.color": PALETTE["muted"],
    "ytick.color": PALETTE["muted"],
    "axes.spines.top": False,
    "axes.spines.right": False,
    "grid.alpha": 0.3,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "figure.facecolor": "white",
    "image.cmap": "viridis",
}

_applied = False


def apply_matplotlib() -> None:
    """Put RC into matplotlib's settings (once per process; every dlworkflow figure uses it)."""
    global _applied
    if _applied:
        return
    import matplotlib
    from cycler import cycler

    params: Any = matplotlib.rcParams  # typed with literal keys only
    params.update(RC)
    params["axes.prop_cycle"] = cycler(color=list(SERIES))
    _applied = True


_VARS = "; ".join(f"--{name}: {value}" for name, value in PALETTE.items())
CSS_BASE = (
    f":root {{ {_VARS}; }}\n"
    """* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--ink); margin: 0 auto; max-width: 1060px; padding: 24px; }
h1 { font-size: 28px; margin: 0 0 4px; }
h2 { font-size: 21px; border-bottom: 2px solid var(--line); padding-bottom: 4px;
     margin-top: 36px; }
h3 { font-size: 16px; margin: 20px 0 6px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 14px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--soft); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 10px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 13px; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; }
.must-know { border: 1px solid var(--line); border-left: 6px solid var(--ink); border-radius: 8px;
             background: var(--soft); padding: 10px 18px; margin: 12px 0 20px; }
.must-know.good { border-left-color: var(--good); }
.must-know.bad { border-left-color: var(--bad); }
.must-know.warn { border-left-color: var(--warn); }
.must-know h2 { font-size: 15px; border: 0; margin: 4px 0; padding: 0; color: var(--muted);
                text-transform: uppercase; letter-spacing: .05em; }
.must-know ol { margin: 4px 0 6px; padding-left: 22px; font-size: 16px; }
.must-know li { margin: 4px 0; }
@media print { body { max-width: none; padding: 0; } .must-know { break-inside: avoid; } }
"""
)

MUST_KNOW = 3  # the things a reader must know, first on every report


def must_know(points: Sequence[str], *, tone: str = "") -> str:
    """The box that opens a report: exactly MUST_KNOW points (plain text, escaped here), the
    verdict first. tone: good, bad, warn or "" (the colour of the box's edge)."""
    if len(points) != MUST_KNOW:
        raise ValueError(f"a report opens with {MUST_KNOW} points, got {len(points)}")
    if tone not in ("", "good", "bad", "warn"):
        raise ValueError(f"tone {tone!r}: good, bad, warn or ''")
    items = "".join(f"<li>{html.escape(p)}</li>" for p in points)
    cls = f"must-know {tone}".strip()
    return f"<section class='{cls}' id='must-know'><h2>What to know</h2><ol>{items}</ol></section>"
