"""ExploreResult: what `dlw explore` prints in the terminal and shows in a notebook."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dlworkflow.explore.render import esc, table
from dlworkflow.explore.trust import Warning
from dlworkflow.results import StepResult
from dlworkflow.style import PALETTE

TOP_WARNINGS = 5  # warnings listed in the terminal summary
SEVERITY_COLOURS = {"high": PALETTE["bad"], "medium": PALETTE["caution"], "low": PALETTE["muted"]}


@dataclass
class ExploreResult(StepResult):
    report: str
    n_samples: int
    n_classes: int
    imbalance_ratio: float
    exact_groups: int
    exact_conflicting: int
    near_pairs: int | None
    near_conflicting: int | None
    n_outliers: int | None
    label_issues: int | None
    label_checked: int | None
    seconds: float
    warnings: list[Warning] = field(default_factory=list)
    class_counts: dict[str, int] = field(default_factory=dict)
    target_rows: list[tuple[str, str]] = field(default_factory=list)  # regression, multi-label
    embedded: int | None = None  # samples with features on the map
    embedded_cached: int = 0  # of which taken from the embedding cache
    near_searched: int | None = None  # samples the near-duplicate search covered

    @property
    def headline(self) -> str:
        high = sum(w.severity == "high" for w in self.warnings)
        return f"{len(self.warnings)} warnings ({high} high)"

    def title(self) -> str:
        return "Step 3: data explored"

    def rows(self) -> list[tuple[str, Any]]:
        target: list[tuple[str, Any]] = (
            [("samples", f"{self.n_samples:,}"), *self.target_rows]
            if self.target_rows
            else [
                ("samples", f"{self.n_samples:,} in {self.n_classes} classes"),
                ("imbalance (max / min)", f"{self.imbalance_ratio:.2f}"),
            ]
        )
        rows: list[tuple[str, Any]] = [
            ("report", self.report),
            *target,
            (
                "exact duplicates",
                f"{self.exact_groups:,} groups ({self.exact_conflicting:,} conflicting)",
            ),
        ]
        if self.near_pairs is not None:
            searched = (
                f" among {self.near_searched:,} searched" if self.near_searched is not None else ""
            )
            rows.append(
                (
                    "near duplicates",
                    f"{self.near_pairs:,} ({self.near_conflicting:,} conflicting){searched}",
                )
            )
        if self.embedded is not None:
            cached = f" ({self.embedded_cached:,} from the cache)" if self.embedded_cached else ""
            rows.append(("mapped", f"{self.embedded:,} of {self.n_samples:,}{cached}"))
        if self.n_outliers is not None:
            rows.append(("outliers (blank, saturated)", self.n_outliers))
        if self.label_issues is not None:
            rows.append(
                (
                    "label-issue candidates",
                    f"{self.label_issues:,} of {self.label_checked:,} checked",
                )
            )
        rows.append(("warnings", self.headline))
        rows += [
            (f"  {w.severity}", f"{w.text} — {w.action}") for w in self.warnings[:TOP_WARNINGS]
        ]
        if len(self.warnings) > TOP_WARNINGS:
            rows.append(("  …", f"{len(self.warnings) - TOP_WARNINGS} more in the report"))
        rows.append(("time", f"{self.seconds:.1f} s"))
        return rows

    def _repr_html_(self) -> str:
        numbers = [
            row for row in self.rows() if not row[0].startswith("  ") and row[0] != "warnings"
        ]
        return (
            f"<div><h3>{esc(self.title())}: {esc(self.headline)}</h3>"
            f"{self._warning_list()}{table([], numbers)}"
            f"{self._class_chart()}"
            f"<p>Full report: <code>{esc(self.report)}</code></p></div>"
        )

    def _warning_list(self) -> str:
        """The warnings, styled inline (a notebook has none of eda.html's CSS or anchors)."""
        if not self.warnings:
            return "<p>No warnings: nothing found that should stop you.</p>"
        items = "".join(
            f"<li><strong style='color:{SEVERITY_COLOURS.get(w.severity, '#555')}'>"
            f"{esc(w.severity.upper())}</strong> {esc(w.text)} — <em>{esc(w.action)}</em> "
            f"(section <code>{esc(w.section)}</code> of the report)</li>"
            for w in self.warnings
        )
        return f"<ol>{items}</ol>"

    def _class_chart(self) -> str:
        """Samples per class, inline (a data: URI), the smallest class in red when uneven."""
        if not self.class_counts:
            return ""
        from dlworkflow.explore.figures import bar_chart
        from dlworkflow.explore.render import figure

        values = list(self.class_counts.values())
        uneven = min(values) < max(values)
        return figure(
            bar_chart(
                list(self.class_counts),
                values,
                title="samples per class",
                highlight=[uneven and v == min(values) for v in values],
            ),
            "samples per class",
        )
