"""Which inputs the model relies on, measured on the validation split (evaluate.importance):
each input is taken away in turn and the primary metric measured again on the same samples.

- tables: permutation importance. Each feature's column is shuffled across the validation
  rows (REPEATS times, on the encoded table: the same as shuffling the raw column); a
  feature whose shuffling does not hurt (the interval of the metric's fall reaches 0) is
  flagged: the model does not need it.
- images: occlusion. Each cell of a GRID x GRID grid is set to the normalisation mean (0
  after normalising) on every sample; with more than one channel, each channel is set to
  its mean too. Which regions (and channels) the metric depends on.
- texts: word ablation. Each of the TOP_WORDS words found in most validation texts is removed
  from every text.
- series and audio clips: occlusion of channels and time segments (series), of time segments
  of the waveform and bands of the log-mel spectrogram (audio): see
  dlworkflow.evaluate.signal_importance.

The fall of the metric (in its better direction: positive when the input helps) gets a paired
bootstrap interval over the samples (the resamples of dlworkflow.evaluate.scores, the same
for the base and every ablation). Images and texts are measured on a seeded subsample of at
most MAX_FORWARDS / (number of ablations) samples, so the cost stays near one pass over a
couple of thousand samples whatever the model.

Dense tasks (detection, segmentation) are not measured yet, and the record says why
(`not_applicable`, `summary`): occluding a cell hides the very objects or pixels that are
judged there, so the fall of mAP or mIoU says where the objects are, not what the model
relies on.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.evaluate.ablation_passes import forward, subsample
from dlworkflow.evaluate.bootstrap import bc_interval
from dlworkflow.evaluate.scores import resample_counts, scalar_metrics
from dlworkflow.evaluate.signal_importance import audio_occlusion, series_occlusion
from dlworkflow.evaluate.task_scores import finite

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.models.meta import ModelMeta
    from dlworkflow.tasks import Task
    from dlworkflow.workspace import Workspace

GRID = 4  # images: occlusion cells per side
TOP_WORDS = 12  # texts: the words present in most validation texts, each removed in turn
REPEATS = 3  # tables: permutations per feature
MAX_FEATURES = 32  # tables: features measured (the rest are listed as not measured)
MAX_ROWS = 5000  # tables: validation rows used
MAX_FORWARDS = {"image": 1024, "text": 4096}  # single-sample forward passes, at most
BATCH = 512
PROBABILITY_FALL = ("sequence", "audio")  # their entries also carry p_true_fall
TINY = 1e-9  # a fall this small is no fall (rounding of differences of equal scores)
WORD = re.compile(r"[^\W\d_]{2,}")
DENSE_NOT_APPLICABLE = (
    "not measured: input importance is not applicable to dense tasks yet ({task}): "
    "occluding a cell hides the very objects or pixels judged there, so the fall of "
    "{metric} would say where the objects are, not what the model relies on"
)

Score = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (outputs, weights (B, n)) -> (B,)
Ablation = tuple[str, list[np.ndarray]]  # (name, outputs of each repeat)


def metric_score(task: Task, y: np.ndarray, target: dict[str, Any], metric: str) -> Score:
    """The metric of outputs for weight rows (B, n): classification's vectorised scores, or
    the task's own."""
    if task.kind == "classification":
        return lambda out, w: scalar_metrics(y, out, w, only=metric)[metric]
    return lambda out, w: task.metric_scores(metric, y, out, w, target)


def importance_section(
    project: Workspace,
    model: Any,
    meta: ModelMeta,
    task: Task,
    *,
    metric: str,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, Any] | None:
    """The importance of the model's inputs on validation (module docstring); None when
    evaluate.importance is off."""
    if not project.config.evaluate.importance:
        return None
    from dlworkflow.store import load_split

    modality = str(meta.get("modality", "image"))
    base: dict[str, Any] = {
        "split": "val",
        "model": str(meta.get("name")),
        "weights_sha256": meta.get("weights_sha256"),
        "metric": metric,
        "modality": modality,
    }
    if task.dense:
        return {
            **base,
            "method": None,
            "n": 0,
            "features": [],
            "flagged": [],
            "not_applicable": True,
            "summary": DENSE_NOT_APPLICABLE.format(task=task.name, metric=metric),
        }
    start = time.perf_counter()
    rows = load_split(project, "val")
    names = list(meta["classes"])
    target = dict(meta.get("target") or {})
    y_all = task.encode(rows["label"].astype(str).tolist(), names)
    known = task.known(y_all)
    rows, y = rows[known].reset_index(drop=True), y_all[known]
    if len(y) < 2:
        return {
            **base,
            "method": None,
            "n": int(len(y)),
            "features": [],
            "flagged": [],
            "summary": "not measured: fewer than 2 labelled validation samples",
        }
    rng = np.random.default_rng(seed)
    measure = METHODS.get(modality, _occlusion)
    chosen, outputs, ablations, info = measure(project, model, meta, task, rows, target, rng)
    y = y[chosen]
    higher = task.metric(metric).higher_is_better
    entries = falls(
        metric_score(task, y, target, metric),
        outputs,
        ablations,
        len(y),
        sign=1.0 if higher else -1.0,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )
    base_value = float(metric_score(task, y, target, metric)(outputs, np.ones((1, len(y))))[0])
    if modality in PROBABILITY_FALL and task.kind == "classification":
        probability_falls(entries, outputs, ablations, y)
    report = {
        **base,
        **info,
        "n": int(len(y)),
        "baseline": finite(base_value),
        "confidence": confidence,
        "features": entries,
        "flagged": [e["name"] for e in entries if e["low"] is not None and e["low"] <= TINY],
    }
    report["summary"] = summary(report)
    report["seconds"] = round(time.perf_counter() - start, 3)
    return report


def probability_falls(
    entries: list[dict[str, Any]], base: np.ndarray, ablations: list[Ablation], y: np.ndarray
) -> None:
    """Adds `p_true_fall` to each entry: how much the mean probability of the true class
    falls without the input (a point estimate). It moves where the metric cannot: a model
    whose decisions do not change still grows less sure without what it relies on."""
    rows = np.arange(len(y))
    before = float(np.mean(base[rows, y]))
    outs = dict(ablations)
    for entry in entries:
        after = np.mean([np.mean(o[rows, y]) for o in outs[entry["name"]]])
        entry["p_true_fall"] = finite(before - float(after))


def falls(
    score: Score,
    base: np.ndarray,
    ablations: list[Ablation],
    n: int,
    *,
    sign: float,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> list[dict[str, Any]]:
    """Per ablation: how far the metric falls without the input (sign: +1 when higher is
    better), with its paired BC bootstrap interval; largest fall first."""
    ones = np.ones((1, n))
    b0 = score(base, ones)[0]
    points = [sign * (b0 - np.mean([score(o, ones)[0] for o in outs])) for _, outs in ablations]
    replicates: list[list[np.ndarray]] = [[] for _ in ablations]
    for w in resample_counts(n, n_resamples=n_resamples, seed=seed):
        bw = score(base, w)
        for i, (_, outs) in enumerate(ablations):
            ablated = np.mean([score(o, w) for o in outs], axis=0)
            replicates[i].append(sign * (bw - ablated))
    entries = []
    for (name, _), point, reps in zip(ablations, points, replicates):
        low, high = bc_interval(np.concatenate(reps), float(point), confidence)
        entries.append(
            {"name": name, "drop": finite(float(point)), "low": finite(low), "high": finite(high)}
        )
    return sorted(entries, key=lambda e: -np.inf if e["drop"] is None else -e["drop"])


def summary(report: dict[str, Any]) -> str:
    """One sentence: what was taken away, on how many samples, what matters most and least."""
    entries = [e for e in report["features"] if e["drop"] is not None]
    metric, n = report["metric"], report["n"]
    if not entries:
        return f"{report.get('method')}: no input could be measured on {n} validation samples"

    def show(e: dict[str, Any]) -> str:
        ci = f" [{e['low']:+.3f}, {e['high']:+.3f}]" if e["low"] is not None else ""
        return f"{e['name']} {e['drop']:+.3f}{ci}"

    top = ", ".join(show(e) for e in entries[:3])
    text = f"{report['method']} on {n} validation samples: {metric} falls most without {top}"
    flagged = report["flagged"]
    if report["modality"] == "tabular":
        text += (
            f"; {len(flagged)} of {len(entries)} features whose permutation does not hurt "
            f"(interval reaches 0): {', '.join(flagged)}"
            if flagged
            else f"; every one of the {len(entries)} features helps (interval above 0)"
        )
    else:
        text += f"; least: {show(entries[-1])}"
    moved = [e for e in entries if (e.get("p_true_fall") or 0.0) > TINY]
    if "p_true_fall" in entries[0]:
        top_p = max(entries, key=lambda e: e.get("p_true_fall") or 0.0)
        text += (
            f"; the probability of the true class falls most without {top_p['name']} "
            f"({top_p['p_true_fall']:+.3f} on average)"
            if moved
            else "; no occlusion lowers the probability of the true class"
        )
    return text


# --- the ablations of each modality: (chosen rows, base outputs, ablations, info) ---------


def _occlusion(
    project: Workspace,
    model: Any,
    meta: ModelMeta,
    task: Task,
    rows: pd.DataFrame,
    target: dict[str, Any],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, list[Ablation], dict[str, Any]]:
    import torch

    from dlworkflow.models.meta import image_size
    from dlworkflow.store import image_tensor

    channels = int(meta["in_channels"])
    n_ablations = GRID * GRID + (channels if channels > 1 else 0)
    chosen = subsample(len(rows), n_ablations, MAX_FORWARDS["image"], rng)
    pixels = image_tensor(
        project,
        rows,
        channels=channels,
        size=image_size(meta),
        max_pixels=project.config.data.max_image_pixels,
    )
    mean = torch.tensor(meta["mean"], dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(meta["std"], dtype=torch.float32).view(1, -1, 1, 1)
    x = (torch.from_numpy(np.ascontiguousarray(pixels[chosen])).float().div_(255.0) - mean) / std
    h, w = x.shape[2], x.shape[3]
    hs, ws = np.array_split(np.arange(h), GRID), np.array_split(np.arange(w), GRID)
    masks: list[tuple[str, Any]] = []
    for i, rr in enumerate(hs):
        for j, cc in enumerate(ws):
            masks.append(
                (f"r{i}c{j}", (slice(None), slice(rr[0], rr[-1] + 1), slice(cc[0], cc[-1] + 1)))
            )
    if channels > 1:
        masks.extend((f"channel {c}", (c, slice(None), slice(None))) for c in range(channels))
    outputs = task.outputs(forward(model, x, batch=BATCH), target)
    ablations: list[Ablation] = []
    for name, region in masks:
        occluded = x.clone()
        occluded[(slice(None), *region)] = 0.0  # the normalisation mean
        ablations.append((name, [task.outputs(forward(model, occluded, batch=BATCH), target)]))
    info = {
        "method": f"occlusion of a {GRID}x{GRID} grid (cells set to the normalisation mean)"
        + (" and of each channel" if channels > 1 else ""),
        "grid": GRID,
        "image_size": [int(h), int(w)],
    }
    return chosen, outputs, ablations, info


def _word_ablation(
    project: Workspace,
    model: Any,
    meta: ModelMeta,
    task: Task,
    rows: pd.DataFrame,
    target: dict[str, Any],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, list[Ablation], dict[str, Any]]:
    from dlworkflow.models.predict import predict_logits

    texts = rows["text"].fillna("").astype(str).tolist()
    df = Counter(w for t in texts for w in set(WORD.findall(t.lower())))
    words = [w for w, _ in sorted(df.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_WORDS]]
    chosen = subsample(len(rows), len(words) + 1, MAX_FORWARDS["text"], rng)
    sub = rows.iloc[chosen].reset_index(drop=True)

    def outputs_of(frame: pd.DataFrame) -> np.ndarray:
        logits = predict_logits(project, model, meta, frame).astype(np.float64)
        return np.asarray(task.outputs(logits, target), dtype=np.float64)

    ablations: list[Ablation] = []
    for word in words:
        pattern = re.compile(rf"\b{re.escape(word)}\b", re.IGNORECASE)
        changed = sub.copy()
        changed["text"] = [pattern.sub("", t) for t in sub["text"].fillna("").astype(str)]
        ablations.append((repr(word), [outputs_of(changed)]))
    info = {
        "method": f"removal of each of the {len(words)} words present in most validation texts",
        "words": words,
    }
    return chosen, outputs_of(sub), ablations, info


def _permutation(
    project: Workspace,
    model: Any,
    meta: ModelMeta,
    task: Task,
    rows: pd.DataFrame,
    target: dict[str, Any],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, list[Ablation], dict[str, Any]]:
    import torch

    from dlworkflow.models import encode_table

    prep = meta["preprocessing"]
    chosen = subsample(len(rows), 1, MAX_ROWS, rng)
    sub = rows.iloc[chosen].reset_index(drop=True)
    x = encode_table(sub, prep)
    blocks: dict[str, tuple[int, int]] = {n: (j, j + 1) for j, n in enumerate(prep["numeric"])}
    col = len(prep["numeric"])
    for name, cats in prep["categories"].items():
        blocks[name] = (col, col + len(cats) + 1)
        col += len(cats) + 1
    features = [f for f in prep["features"] if f in blocks]
    skipped: list[str] = []
    if len(features) > MAX_FEATURES:
        from dlworkflow.evaluate.auto_slices import proxy_ranking

        ranked = proxy_ranking(
            sub,
            task,
            task.encode(sub["label"].astype(str).tolist(), list(meta["classes"])),
            features,
        )
        features, skipped = ranked[:MAX_FEATURES], ranked[MAX_FEATURES:]

    def outputs_of(table: np.ndarray) -> np.ndarray:
        return np.asarray(
            task.outputs(forward(model, torch.from_numpy(table), batch=BATCH), target)
        )

    ablations: list[Ablation] = []
    for name in features:
        a, b = blocks[name]
        outs = []
        for _ in range(REPEATS):
            shuffled = x.copy()
            shuffled[:, a:b] = x[rng.permutation(len(x)), a:b]
            outs.append(outputs_of(shuffled))
        ablations.append((name, outs))
    info = {
        "method": f"permutation of each feature ({REPEATS} repeats)",
        "repeats": REPEATS,
        "not_measured": skipped,
    }
    return chosen, outputs_of(x), ablations, info


METHODS = {
    "image": _occlusion,
    "text": _word_ablation,
    "tabular": _permutation,
    "sequence": series_occlusion,
    "audio": audio_occlusion,
}


def most_important(importance: dict[str, Any] | None, k: int) -> list[str]:
    """The k inputs whose removal hurts most (a positive fall), from importance_section."""
    if not importance:
        return []
    return [e["name"] for e in importance.get("features") or [] if (e["drop"] or 0) > 0][:k]


def importance_rows(importance: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The terminal's row for importance."""
    if not importance:
        return []
    return [("importance (val)", str(importance.get("summary")))]
