"""The trust summary: warnings derived from the evidence, ranked high / medium / low, each
saying what to do about it. Thresholds are named constants."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlworkflow.explore.duplicates import Duplicates
    from dlworkflow.explore.evidence import Evidence

SEVERITIES = ("high", "medium", "low")
IMBALANCE_MEDIUM = 10.0  # largest / smallest class
IMBALANCE_LOW = 3.0
MIN_CLASS_SAMPLES = 30  # fewer samples in a class: its val/test estimates are unreliable
QUARANTINE_MEDIUM = 0.05  # share of candidates quarantined
DUPLICATE_MEDIUM = 0.01  # share of samples that are extra copies within a class
LABEL_ISSUES_HIGH = 0.10  # share of checked samples flagged by confident learning
LABEL_ISSUES_MEDIUM = 0.03


@dataclass(frozen=True)
class Warning:
    severity: str  # high | medium | low
    text: str  # what was found
    action: str  # what to do
    section: str  # anchor of the report section with the evidence

    def line(self) -> str:
        return f"[{self.severity}] {self.text} — {self.action}"


def warnings_for(ev: Evidence) -> list[Warning]:
    from dlworkflow.explore.targets import target_kind

    rules: list[Callable[[Evidence], list[Warning]]] = [
        _leakage,
        _duplicates,
        _label_issues,
        _tabular,
        target_kind(ev.task).warnings,
        _images,
        _text,
        _modality,
        _data,
    ]
    found = [w for rule in rules for w in rule(ev)]
    return sorted(found, key=lambda w: SEVERITIES.index(w.severity))


def _classes_phrase(dups: Duplicates) -> str:
    pairs = list(dups.class_pairs)[:3]
    text = "; ".join(p.replace(" / ", " and ") for p in pairs)
    more = (
        f" (and {len(dups.class_pairs) - 3} more class sets)" if len(dups.class_pairs) > 3 else ""
    )
    return f"classes {text}{more}"


def _duplicates(ev: Evidence) -> list[Warning]:
    from dlworkflow.tasks import task_of

    dense = task_of(ev.task).dense  # boxes / masks: near duplicates' labels differ as they do
    out = []
    for dups, word in ((ev.exact, "exact"), (ev.near, "near")):
        if dups is None or not dups.n_groups:
            continue
        if dups.n_conflicting and not (dense and word == "near"):
            phrase = "different annotations" if dense else _classes_phrase(dups)
            out.append(
                Warning(
                    "high",
                    f"{dups.n_conflicting} {word} duplicate{_s(dups.n_conflicting)} with "
                    f"conflicting labels across {phrase}",
                    "fix the labels or remove one copy before `dlw split`",
                    "duplicates",
                )
            )
        within = dups.n_within
        if within:
            share = within / max(ev.overview.n_samples, 1)
            out.append(
                Warning(
                    "medium" if share >= DUPLICATE_MEDIUM else "low",
                    f"{within} {word} duplicate {'group' if word == 'exact' else 'pair'}"
                    f"{_s(within)} within a class",
                    "remove the extra copies: they overweight those samples and can leak between "
                    "train and test",
                    "duplicates",
                )
            )
    return out


def _leakage(ev: Evidence) -> list[Warning]:
    lk = ev.leakage
    if lk is None:
        return []
    out = []
    for kind in ("exact", "near"):
        n_test = lk.touching_test(kind)
        if n_test:
            out.append(
                Warning(
                    "high",
                    f"{n_test} test sample{_s(n_test)} {kind}-duplicate train/val samples",
                    "the test verdict would be optimistic: set `split.duplicates: remove` (or "
                    "remove the copies) and run `dlw split` again",
                    "leakage",
                )
            )
        table = lk.exact if kind == "exact" else lk.near
        n_dev = table.get("train / val", 0)
        if n_dev:
            out.append(
                Warning(
                    "medium",
                    f"{n_dev} {kind} duplicate{_s(n_dev)} between train and val",
                    "validation scores will be optimistic: remove the copies before tuning",
                    "leakage",
                )
            )
    if lk.leaked_groups:
        out.append(
            Warning(
                "high",
                f"{lk.leaked_groups} group{_s(lk.leaked_groups)} present in more than one split",
                "keep each group in one split (`split.group_by: true`) and run `dlw split` again",
                "leakage",
            )
        )
    return out


#: below this out-of-fold accuracy the quick model's label-issue candidates are a hint only
WEAK_QUICK_MODEL = 0.7


def _label_issues(ev: Evidence) -> list[Warning]:
    li = ev.label_issues
    if li is None or not li.candidates:
        return []
    rate = li.rate
    severity = (
        "high" if rate >= LABEL_ISSUES_HIGH else "medium" if rate >= LABEL_ISSUES_MEDIUM else "low"
    )
    weak = li.model_accuracy < WEAK_QUICK_MODEL  # NaN compares False: judged as before
    if weak:  # a quick model that is often wrong flags right labels too: a hint, no alarm
        severity = "low"
    return [
        Warning(
            severity,
            f"{len(li.candidates)} label-issue candidates ({rate:.1%} of "
            f"{li.n_checked:,} checked samples)"
            + (
                f"; the quick model that found them is {li.model_accuracy:.0%} accurate, so "
                "most may be its own mistakes"
                if weak
                else ""
            ),
            "review the candidates; correct the labels that are wrong and ingest again",
            "label-issues",
        )
    ]


def imbalance_warning(ratio: float, what: str, fix: str) -> list[Warning]:
    """The one imbalance warning of every target kind ("class imbalance 4.2:1 (largest /
    smallest class)"): none under IMBALANCE_LOW or for an undefined ratio (NaN), medium from
    IMBALANCE_MEDIUM; `what` says what was compared, `fix` which metric judges it fairly."""
    if math.isnan(ratio) or ratio < IMBALANCE_LOW:
        return []
    level = "medium" if ratio >= IMBALANCE_MEDIUM else "low"
    return [Warning(level, what.format(ratio=f"{ratio:.1f}:1"), fix, "classes")]


def class_warnings(ev: Evidence) -> list[Warning]:
    """Class balance and small classes (classification)."""
    ov = ev.overview
    out = imbalance_warning(
        ov.imbalance_ratio,
        "class imbalance {ratio} (largest / smallest class)",
        "judge with balanced_accuracy or macro_f1 (`dlw define --metric`), and consider "
        "collecting more of the small classes",
    )
    small = [(k, v) for k, v in ov.class_counts.items() if v < MIN_CLASS_SAMPLES]
    if small:
        names = ", ".join(f"{k} ({v})" for k, v in small[:5])
        out.append(
            Warning(
                "medium",
                f"{len(small)} class{'es' if len(small) > 1 else ''} with fewer than "
                f"{MIN_CLASS_SAMPLES} samples: {names}",
                "collect more samples: validation and test estimates for these classes will be "
                "unreliable",
                "classes",
            )
        )
    return out


def _images(ev: Evidence) -> list[Warning]:
    im = ev.images
    if im is None:
        return []
    out = []
    if im.blank:
        out.append(
            Warning(
                "medium",
                f"{len(im.blank)} blank image{_s(len(im.blank))} (almost no contrast)",
                "remove them, or check the capture pipeline that produced them",
                "images",
            )
        )
    if im.saturated:
        out.append(
            Warning(
                "low",
                f"{len(im.saturated)} saturated image"
                f"{_s(len(im.saturated))} (mostly black or white, unusual for "
                "their class)",
                "look at them; remove those that show nothing",
                "images",
            )
        )
    if len(im.modes) > 1:
        modes = ", ".join(f"{k} ({v})" for k, v in im.modes.items())
        out.append(
            Warning(
                "low",
                f"mixed image modes: {modes}",
                "all are converted to "
                "data.image.channels at split; check that colour is not a "
                "shortcut to the label",
                "images",
            )
        )
    if im.missing_stats:
        out.append(
            Warning(
                "low",
                f"the manifest lacks image statistics ({', '.join(im.missing_stats)})",
                "run `dlw ingest` again with this version of dlworkflow",
                "images",
            )
        )
    return out


def _text(ev: Evidence) -> list[Warning]:
    tx = ev.text
    if tx is None or not tx.n_empty:
        return []
    return [
        Warning(
            "medium",
            f"{tx.n_empty} empty text{_s(tx.n_empty)}",
            "remove them or fix the text column (data.text_column)",
            "text",
        )
    ]


def _modality(ev: Evidence) -> list[Warning]:
    """The series' or the clips' own warnings (series_view, audio_view)."""
    if ev.series is not None:
        from dlworkflow.explore.series_view import series_warnings

        return series_warnings(ev)
    if ev.audio is not None:
        from dlworkflow.explore.audio_view import audio_warnings

        return audio_warnings(ev)
    return []


def _tabular(ev: Evidence) -> list[Warning]:
    from dlworkflow.explore.tabular import HIGH_MISSING

    tb = ev.tabular
    if tb is None:
        return []
    out = [
        Warning(
            "high",
            f"column {lk.column!r} leaks the target: {lk.reason}",
            "drop it from data.feature_columns (or explain why it is available at "
            "prediction time) and ingest again",
            "tabular",
        )
        for lk in tb.leaks
    ]
    missing = [c for c in tb.columns if c.missing >= HIGH_MISSING]
    if missing:
        names = ", ".join(f"{c.name} ({c.missing:.0%})" for c in missing[:5])
        out.append(
            Warning(
                "medium",
                f"{len(missing)} column{_s(len(missing))} with "
                f">= {HIGH_MISSING:.0%} missing values: {names}",
                "impute them deliberately or drop the columns",
                "tabular",
            )
        )
    if tb.n_nonfinite:
        out.append(
            Warning(
                "low",
                f"{tb.n_nonfinite} infinite values in numeric columns",
                "replace them at the source; explore treated them as missing",
                "tabular",
            )
        )
    return out


def _data(ev: Evidence) -> list[Warning]:
    ov = ev.overview
    out = []
    if ov.n_quarantined:
        share = ov.n_quarantined / max(ov.n_quarantined + ov.n_samples, 1)
        reasons = ", ".join(f"{k} ({v})" for k, v in list(ov.quarantine_reasons.items())[:3])
        out.append(
            Warning(
                "medium" if share >= QUARANTINE_MEDIUM else "low",
                f"{ov.n_quarantined} sample{_s(ov.n_quarantined)} quarantined at "
                f"ingest ({share:.1%}): {reasons}",
                "check the reasons; fix or replace the files and ingest again",
                "overview",
            )
        )
    if ev.unreadable:
        n = len(ev.unreadable)
        out.append(
            Warning(
                "low",
                f"{n} sample{_s(n)} could not be read during exploration",
                "they were skipped; see the list in the overview",
                "overview",
            )
        )
    return out


def _s(n: int) -> str:
    return "" if n == 1 else "s"
