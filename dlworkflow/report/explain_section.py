"""The report's Explanations section: what `dlw explain` wrote to reports/explain/<split>/
(explanations.json and its figures): per split the method, the permutation importance of a
table, and the figures of the most confident mistakes and of random correct predictions. When
nothing was explained yet, it names the command."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.fileio import read_json
from dlworkflow.report.findings import fmt
from dlworkflow.report.html import Section, code, esc, figure, paragraph, table

if TYPE_CHECKING:
    from dlworkflow.report.evidence import Evidence

SPLITS = ("val", "train")
NAMES = {"val": "validation", "train": "train"}
KINDS = (("mistake", "Most confident mistakes"), ("correct", "Random correct predictions"))


def explanation_index(root: Path, split: str) -> dict[str, Any] | None:
    """reports/explain/<split>/explanations.json, or None when absent or unreadable."""
    path = root / "reports" / "explain" / split / "explanations.json"
    try:
        index = read_json(path)
    except (OSError, ValueError):
        return None
    return index if isinstance(index, dict) and isinstance(index.get("items"), list) else None


def explanations(ev: Evidence) -> Section:
    found = [(s, i) for s in SPLITS if (i := explanation_index(ev.root, s)) is not None]
    if not found:
        body = (  # optional: not a missing step (ReportResult.missing)
            f"<p class='note' id='no-explanations'>No explanations yet: run {code('dlw explain')}"
            " to draw saliency maps (images), token attributions (texts) or permutation "
            "importance and per-row attributions (tables) for the most confident mistakes "
            "and random correct predictions on validation.</p>"
        )
        return Section("explanations", "Explanations", body)
    weights = (ev.trained or {}).get("weights_sha256")
    parts = [_split(ev.root, split, index, weights) for split, index in found]
    return Section("explanations", "Explanations", "".join(parts))


def _split(root: Path, split: str, index: dict[str, Any], weights: str | None) -> str:
    body = [f"<h3>On {NAMES[split]} ({esc(index.get('n_samples'))} samples)</h3>"]
    body.append(
        f"<p>{esc(index.get('method'))}, for {esc(index.get('target', 'the predicted class'))}"
        f"; model {esc(index.get('model'))}. Made with {code(f'dlw explain --split {split}')}."
        "</p>"
    )
    if weights and index.get("weights_sha256") not in (None, weights):
        body.append(
            f"<p class='note'>Made with an earlier model: run "
            f"{code(f'dlw explain --split {split}')} again.</p>"
        )
    importance = index.get("importance")
    if isinstance(importance, dict) and importance.get("features"):
        conf = importance.get("confidence", 0.95)
        body.append(
            table(
                ["feature", f"fall of {importance.get('metric')}", f"{conf:.0%} CI"],
                [
                    (e["name"], fmt(e.get("drop")), f"{fmt(e.get('low'))} to {fmt(e.get('high'))}")
                    for e in importance["features"]
                ],
            )
        )
        if importance.get("figure"):
            body.append(figure(_inside(root, importance["figure"]), "permutation importance"))
    for kind, title in KINDS:
        items = [i for i in index["items"] if i.get("kind") == kind and i.get("figure")]
        body.append(f"<h3>{esc(title)} ({len(items)})</h3>")
        if not items:
            body.append(paragraph("None on this split."))
            continue
        cells = [
            figure(
                _inside(root, i["figure"]),
                f"{i['sample_id']}: true {i['true']}, predicted {i['predicted']} "
                f"({i['confidence']:.2f})",
            )
            for i in items
        ]
        body.append(f"<div class='two'>{''.join(cells)}</div>")
    return "".join(body)


def _inside(root: Path, relative: str) -> Path:
    """A figure named by the index, only from reports/explain (else a name that is not found)."""
    folder = (root / "reports" / "explain").resolve()
    path = (root / str(relative)).resolve()
    return path if path.is_relative_to(folder) else folder / "not-an-explanation-figure.png"
