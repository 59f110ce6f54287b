"""Multi-label classification: any number of labels per sample (at least one), any modality.

Labels come as one delimited column (`data.label_delimiter`, "|" by default: "cat|dog") or as
one-hot columns (`data.label_columns`: a 1 / true marks the label). The manifest stores the
sorted label set joined by "|". The network outputs one logit per label, trained with binary
cross-entropy; `outputs` are the label probabilities (sigmoid), and a label is predicted where
its probability reaches that label's threshold, tuned on validation for the label's F1 after
training (`fit_on_validation`) and exported with the model.

The split stratifies each sample on its rarest label: Sechidis et al.'s iterative
stratification (2011) distributes samples label by label, rarest label first, which is what
keeps rare labels present in every split; doing it through one stratum per sample keeps the
assignment stable when samples are added (prepare/assign.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.tasks.base import MetricSpec, TargetError, Task, cell_text

if TYPE_CHECKING:
    import torch

SEP = "|"  # how the manifest joins a sample's labels
TRUE = {"1", "1.0", "true", "yes", "y", "t"}
FALSE = {"0", "0.0", "false", "no", "n", "f"}
THRESHOLDS = np.linspace(0.05, 0.95, 19)  # candidates for each label's threshold


class MultiLabel(Task):
    kind = "multilabel"
    default_metric = "macro_f1"
    example_target = "0.6"
    companion_metric = "micro_f1"
    tunes_on_validation = True
    metrics = (
        MetricSpec("macro_f1", description="mean F1 over the labels"),
        MetricSpec("micro_f1", description="F1 over every (sample, label) decision"),
        MetricSpec("map", description="mean over the labels of the average precision"),
        MetricSpec(
            "subset_accuracy", description="share of samples whose label set is exactly right"
        ),
        MetricSpec(
            "hamming_loss",
            higher_is_better=False,
            primary=False,
            description="share of (sample, label) decisions that are wrong",
        ),
    )

    # --- reading targets ------------------------------------------------------------------

    def target_columns(self, data: Any) -> list[str]:
        return list(data.label_columns) if data.label_columns else [data.label_column]

    def read_target(self, record: dict[Any, Any], data: Any) -> str:
        if not data.label_columns:
            return self._parse(
                record.get(data.label_column),
                column=data.label_column,
                delimiter=data.label_delimiter,
            )
        labels = []
        for column in data.label_columns:
            text = cell_text(record.get(column))
            flag = (text or "").lower()
            if flag not in TRUE | FALSE:
                raise TargetError(
                    f"one-hot label column {column!r} holds {str(text)[:20]!r}, not 0/1"
                )
            if flag in TRUE:
                labels.append(self._name(column, column=column))
        return self._joined(labels, column=", ".join(data.label_columns))

    def parse_target(self, raw: Any, *, column: str) -> str:
        return self._parse(raw, column=column, delimiter=SEP)

    def _parse(self, raw: Any, *, column: str, delimiter: str) -> str:
        text = cell_text(raw)
        parts = [p.strip() for p in (text or "").split(delimiter)]
        return self._joined([self._name(p, column=column) for p in parts if p], column=column)

    @staticmethod
    def _name(label: str, *, column: str) -> str:
        if SEP in label:
            raise TargetError(f"label {label[:30]!r} in {column} contains {SEP!r}")
        return label

    @staticmethod
    def _joined(labels: list[str], *, column: str) -> str:
        if not labels:
            raise TargetError(f"no label (empty {column}): a sample needs at least one")
        return SEP.join(sorted(set(labels)))

    def unknown_labels(self, target: str, allowed: set[str]) -> list[str]:
        return [label for label in target.split(SEP) if label not in allowed]

    def target_counts(self, counts: dict[str, int]) -> dict[str, int]:
        out: Counter[str] = Counter()
        for target, n in counts.items():
            for label in str(target).split(SEP):
                out[label] += n
        return dict(sorted(out.items()))

    def strata(self, targets: Sequence[str]) -> list[str]:
        counts = Counter(label for t in targets for label in str(t).split(SEP))
        return [min(str(t).split(SEP), key=lambda label: (counts[label], label)) for t in targets]

    def output_names(self, targets: Sequence[str]) -> list[str]:
        return sorted({label for t in targets for label in str(t).split(SEP) if label})

    def encode(
        self, targets: Sequence[Any], names: Sequence[str], *, size: tuple[int, int] | None = None
    ) -> np.ndarray:
        index = {c: i for i, c in enumerate(names)}
        y = np.zeros((len(targets), len(names)), dtype=np.float32)
        for i, t in enumerate(targets):
            for label in str(t).split(SEP):
                j = index.get(label)
                if j is None:  # a label the model does not know: not judged
                    y[i] = np.nan
                    break
                y[i, j] = 1.0
        return y

    def known(self, y: np.ndarray) -> np.ndarray:
        mask: np.ndarray = ~np.isnan(np.asarray(y)).any(axis=1)
        return mask

    # --- the head ---------------------------------------------------------------------------

    def loss(
        self,
        logits: torch.Tensor,
        y: torch.Tensor,
        target: dict[str, Any],
        *,
        weight: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> torch.Tensor:
        from torch import nn

        y = y.to(logits.dtype)
        if label_smoothing:
            y = y * (1 - label_smoothing) + 0.5 * label_smoothing
        return nn.functional.binary_cross_entropy_with_logits(logits, y)

    def outputs(self, logits: np.ndarray, target: dict[str, Any]) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))

    @staticmethod
    def thresholds(target: dict[str, Any], k: int) -> np.ndarray:
        return np.asarray(target.get("thresholds") or [0.5] * k, dtype=np.float64)

    def decide(self, out: np.ndarray, target: dict[str, Any]) -> np.ndarray:
        """Bool (N, L): the predicted labels."""
        return out >= self.thresholds(target, out.shape[1])

    def fit_on_validation(
        self, y: np.ndarray, out: np.ndarray, target: dict[str, Any]
    ) -> dict[str, Any]:
        """Each label's threshold: the candidate (0.05 ... 0.95) with the best F1 on
        validation; 0.5 for a label validation never shows."""
        keep = self.known(y)
        y, out = y[keep] > 0.5, out[keep]
        chosen = []
        for j in range(out.shape[1]):
            if not y[:, j].any():
                chosen.append(0.5)
                continue
            pred = out[:, j][None, :] >= THRESHOLDS[:, None]  # (T, N)
            tp = (pred & y[:, j]).sum(axis=1)
            f1 = 2 * tp / (pred.sum(axis=1) + y[:, j].sum())
            chosen.append(round(float(THRESHOLDS[int(np.argmax(f1))]), 4))
        return {**target, "thresholds": chosen}

    # --- metrics --------------------------------------------------------------------------

    def scores(
        self, y: np.ndarray, out: np.ndarray, weights: np.ndarray, target: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        return self._scores(y, out, weights, target, with_map=True)

    def metric_scores(
        self,
        name: str,
        y: np.ndarray,
        out: np.ndarray,
        weights: np.ndarray,
        target: dict[str, Any],
    ) -> np.ndarray:
        """One metric; the mean average precision (a sort and cumulative sums per label and
        resample, most of the cost) only when it is the one asked for."""
        self.metric(name)
        scores = self._scores(y, out, weights, target, with_map=name == "map")
        return np.asarray(scores[name], dtype=np.float64)

    def _scores(
        self,
        y: np.ndarray,
        out: np.ndarray,
        weights: np.ndarray,
        target: dict[str, Any],
        *,
        with_map: bool,
    ) -> dict[str, np.ndarray]:
        truth = np.asarray(y) > 0.5
        out = np.asarray(out, dtype=np.float64)
        pred = self.decide(out, target)
        total = weights.sum(axis=1)
        k = truth.shape[1]
        cells = np.concatenate([truth & pred, ~truth & pred, truth & ~pred], axis=1)
        counts = weights @ cells.astype(np.float64)  # (B, 3L): one product for the three
        tp, fp, fn = counts[:, :k], counts[:, k : 2 * k], counts[:, 2 * k :]
        denom = 2 * tp + fp + fn
        with np.errstate(invalid="ignore", divide="ignore"):
            per_label = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), np.nan)
            counted = (denom > 0).sum(axis=1)
            macro = np.where(counted > 0, np.nansum(per_label, axis=1) / counted, np.nan)
            micro_denom = denom.sum(axis=1)
            micro = np.where(micro_denom > 0, 2 * tp.sum(axis=1) / micro_denom, np.nan)
        exact = (truth == pred).all(axis=1).astype(np.float64)
        wrong = (truth != pred).mean(axis=1)
        return {
            "macro_f1": macro,
            "micro_f1": micro,
            **({"map": _mean_ap(truth, out, weights)} if with_map else {}),
            "subset_accuracy": weights @ exact / total,
            "hamming_loss": weights @ wrong / total,
        }

    # --- predictions ------------------------------------------------------------------------

    def prediction(
        self, out: np.ndarray, names: Sequence[str], target: dict[str, Any]
    ) -> dict[str, Any]:
        chosen = self.decide(np.asarray(out)[None, :], target)[0]
        return {
            "labels": [n for n, c in zip(names, chosen) if c],
            "probabilities": {n: float(p) for n, p in zip(names, out)},
        }

    def prediction_columns(
        self, out: np.ndarray, names: Sequence[str], target: dict[str, Any]
    ) -> dict[str, list[Any]]:
        chosen = self.decide(np.asarray(out).reshape(len(out), len(names)), target)
        columns: dict[str, list[Any]] = {
            "labels": [SEP.join(n for n, c in zip(names, row) if c) for row in chosen]
        }
        for j, name in enumerate(names):
            columns[f"p_{name}"] = [f"{float(p):.6f}" for p in out[:, j]]
        return columns


def _mean_ap(truth: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean over the labels with positives of the average precision, per weight row
    (scikit-learn's definition: sum over thresholds of recall gained x precision; tied scores
    form one threshold)."""
    columns = np.ascontiguousarray(weights.T, dtype=np.float64)  # (n, B): a row per sample
    work = np.empty_like(columns)  # one buffer for every label's running sums
    values = [_label_ap(truth[:, j], scores[:, j], columns, work) for j in range(truth.shape[1])]
    if not values:
        return np.full(len(weights), np.nan)
    stacked = np.vstack(values)
    with np.errstate(invalid="ignore"):
        counted = (~np.isnan(stacked)).sum(axis=0)
        return np.where(counted > 0, np.nansum(stacked, axis=0) / np.maximum(counted, 1), np.nan)


def _label_ap(
    truth: np.ndarray, scores: np.ndarray, columns: np.ndarray, work: np.ndarray
) -> np.ndarray:
    """The average precision of one label per resample (columns: weights (n, B), a row per
    sample), NaN where a resample holds no positive. Samples sorted by score, high first; only
    the thresholds (ends of tie groups) that gain positives add to the sum, so the running
    weight of positives runs over the positive rows alone."""
    order = np.argsort(-scores, kind="mergesort")
    pos = truth[order]
    ends = np.append(np.flatnonzero(np.diff(scores[order])), len(order) - 1)  # tie ends
    seen = np.cumsum(pos)[ends]  # positives up to each threshold
    gains = np.flatnonzero(np.diff(seen, prepend=0))  # thresholds that gain positives
    if len(gains) == 0:
        return np.full(columns.shape[1], np.nan)
    zero = np.zeros((1, columns.shape[1]))
    cum_pos = np.concatenate([zero, _running_sum(columns, order[pos], work)])
    cum_tp = cum_pos[seen[gains]]
    gained = cum_pos[np.concatenate([[0], seen[gains][:-1]])]
    np.subtract(cum_tp, gained, out=gained)
    # where no weight is seen yet, no positive is either: precision 0 (the weight's 0 kept)
    precision = _running_sum(columns, order, work)[ends[gains]]
    np.divide(cum_tp, precision, out=precision, where=precision > 0)
    n_pos = cum_pos[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = np.einsum("tb,tb->b", gained, precision) / n_pos
    return np.where(n_pos > 0, ap, np.nan)


def _running_sum(columns: np.ndarray, rows: np.ndarray, work: np.ndarray) -> np.ndarray:
    """The cumulative sums of columns[rows] down the rows, in `work` (the values of np.cumsum,
    added in the same order: one contiguous row at a time, where np.cumsum along this axis
    strides across memory and a fresh array of this size costs its page faults each call)."""
    out = work[: len(rows)]
    np.take(columns, rows, axis=0, out=out)
    for i in range(1, len(rows)):
        np.add(out[i - 1], out[i], out=out[i])
    return out
