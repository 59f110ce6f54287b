"""`dlw augment-preview` for series and audio projects (images: train/augment.py).

Both draw a few training samples (seeded by `--seed`, the train split only) and
PREVIEW_VERSIONS augmented versions of each, made by the transforms training builds from
`augment:` (train/augment_signals.py), version k with the seed `seed + k`; the figure names
the seeds and the switched-on options, and is written to reports/augment_preview.png.

- sequence: one panel per training series, a few series of each class (rows: classes), one
  channel each (the series' most variable one, named): the original in black, the augmented
  versions overlaid in colour. Series ops (jitter to window_slice) are each applied to a
  series with probability augment_signals.SERIES_P, so a version may equal the original.
- audio: one row per clip (a few of each class): its log-mel spectrogram (the audio models'
  front end, preprocess.audio.LogMel at data.audio.sample_rate, PREVIEW_MELS bands) and
  those of its augmented versions: the waveform ops (gain, circular time shift, noise), then
  the SpecAugment masks, as the audio model applies them in training.

Mixup blends two samples of a batch and is not drawn (it is named as such).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dlworkflow.errors import ConfigError
from dlworkflow.train import augment_keys, augment_signals

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from dlworkflow.config import Augment
    from dlworkflow.workspace import Workspace

PREVIEW_VERSIONS = 3  # augmented versions of each sample
MAX_CLASSES = 6  # rows of the figure (classes, first by name)
SERIES_PER_CLASS = 3
CLIPS = 6  # audio rows
PREVIEW_MELS = 64  # the audio models' default n_mels
COLOURS = ("tab:orange", "tab:blue", "tab:green", "tab:red", "tab:purple")


def signal_preview(
    project: Workspace, *, modality: str, n: int, seed: int, versions: int = PREVIEW_VERSIONS
) -> Path:
    """reports/augment_preview.png of a sequence or audio project (module doc)."""
    from dlworkflow import store

    cfg = project.config.augment
    ops = [k for k in augment_keys.applied(cfg, modality) if k != "mixup"]
    if not ops:
        keys = [k for k in augment_keys.keys_for(modality) if k != "mixup"]
        raise ConfigError(
            f"There is nothing to preview: every {modality} option under augment: is 0 (off).",
            expected=f"at least one of {', '.join(keys)} above 0",
            received=str({k: getattr(cfg, k) for k in augment_keys.keys_for(modality)}),
            fix="set e.g. augment: {jitter: 0.03, time_warp: 0.2} in dlworkflow.yaml"
            if modality == "sequence"
            else "set e.g. augment: {gain_db: 6, time_shift: 0.1, freq_mask: 8} in dlworkflow.yaml",
        )
    rows = store.load_split(project, "train")
    classes = [str(c) for c in store.read_split_info(project).classes]
    if modality == "sequence":
        picked = _picked(rows, classes, per_class=SERIES_PER_CLASS, limit=n, seed=seed)
    else:
        picked = _picked(rows, classes, per_class=2, limit=min(n, CLIPS), seed=seed)
    seeds = [seed + k for k in range(versions)]
    words = _ops_words(cfg, ops, modality) + (["mixup (not drawn)"] if cfg.mixup else [])
    title = f"augment-preview: {', '.join(words)}; versions with seeds {_seeds(seeds)}"
    if modality == "sequence":
        png = _series_figure(project, picked, cfg, seeds, title)
    else:
        png = _audio_figure(project, picked, cfg, seeds, title)
    from dlworkflow.fileio import atomic_write_bytes
    from dlworkflow.train.augment import PREVIEW_FILE

    path = project.paths.reports / PREVIEW_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, png)
    return path


def _picked(
    rows: pd.DataFrame, classes: list[str], *, per_class: int, limit: int, seed: int
) -> pd.DataFrame:
    """Seeded rows of each class in class order: at most MAX_CLASSES classes, `per_class`
    rows of each and about `limit` rows in all (at least one of each class shown)."""
    import pandas as pd

    labels = rows["label"].astype(str)
    shown = [c for c in classes if (labels == c).any()][: max(1, min(MAX_CLASSES, limit))]
    each = max(1, min(per_class, limit // max(len(shown), 1)))
    parts = [
        rows[labels == c].sample(n=min(each, int((labels == c).sum())), random_state=seed)
        for c in shown
    ]
    return pd.concat(parts) if parts else rows.head(0)


def _seeds(seeds: list[int]) -> str:
    return ", ".join(str(s) for s in seeds)


def _ops_words(cfg: Augment, ops: list[str], modality: str) -> list[str]:
    if modality == "sequence":
        p = augment_signals.SERIES_P
        return [f"{op} {getattr(cfg, op):g} (p {p:g})" for op in ops]
    words = {
        "gain_db": f"gain +-{cfg.gain_db:g} dB",
        "time_shift": f"circular shift up to {cfg.time_shift:g} of the clip",
        "noise_snr_db": f"noise at SNR {cfg.noise_snr_db:g}-"
        f"{cfg.noise_snr_db + augment_signals.NOISE_SPAN_DB:g} dB "
        f"(p {augment_signals.NOISE_P:g})",
        "freq_mask": f"{augment_signals.SPEC_MASKS} frequency masks up to {cfg.freq_mask:g} mels",
        "time_mask": f"{augment_signals.SPEC_MASKS} time masks up to {cfg.time_mask:g} frames",
    }
    return [words[op] for op in ops]


def series_versions(
    project: Workspace, picked: pd.DataFrame, cfg: Augment, seeds: list[int]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """(the rows' NaN-padded series (N, C, T), one augmented batch per seed): the series
    transform training builds from `augment:`, mixup left out."""
    from dlworkflow.store.series import series_tensor

    x = torch.from_numpy(series_tensor(project, picked))
    y = torch.zeros(len(x), dtype=torch.int64)
    settings = augment_signals.series_settings(cfg)
    outs = []
    for s in seeds:
        transform = augment_signals.SeriesTransform(settings, mixup=0.0, num_classes=1, seed=s)
        outs.append(transform(x, y)[0].numpy())
    return x.numpy(), outs


def clip_spectrograms(
    project: Workspace, picked: pd.DataFrame, cfg: Augment, seeds: list[int]
) -> list[np.ndarray]:
    """Log-mel dB (N, PREVIEW_MELS, frames) of the rows' clips, then of their augmented
    versions, one per seed: the waveform transform, then SpecAugment (mixup left out)."""
    from dlworkflow.preprocess.audio import LogMel
    from dlworkflow.store.clips import ClipSettings, clip_tensor

    settings = ClipSettings.from_config(project.config.data.audio)
    waves = torch.from_numpy(clip_tensor(project, picked, settings))  # (N, S)
    y = torch.zeros(len(waves), dtype=torch.int64)
    front = LogMel(sample_rate=settings.sample_rate, n_mels=PREVIEW_MELS)
    columns = [_spectrogram(front, waves)]
    for s in seeds:
        wave = augment_signals.audio_transform(
            cfg.model_copy(update={"mixup": 0.0}),
            samples=int(waves.shape[-1]),
            num_classes=1,
            seed=s,
        )
        moved = wave(waves, y)[0] if wave is not None else waves
        columns.append(_spectrogram(front, moved, augment_signals.spec_augment(cfg, seed=s)))
    return columns


def _series_figure(
    project: Workspace, picked: pd.DataFrame, cfg: Augment, seeds: list[int], title: str
) -> bytes:
    from dlworkflow.plots import new_figure, png_bytes

    x, outs = series_versions(project, picked, cfg, seeds)
    labels = picked["label"].astype(str).tolist()
    classes = list(dict.fromkeys(labels))
    columns = max(labels.count(c) for c in classes)
    fig = new_figure(3.6 * columns, 2.2 * len(classes) + 0.6)
    for i, (sample_id, label) in enumerate(zip(picked["sample_id"].astype(str), labels)):
        row, col = classes.index(label), labels[:i].count(label)
        ax = fig.add_subplot(len(classes), columns, row * columns + col + 1)
        original = x[i]
        channel = int(np.nanargmax(np.nanstd(original, axis=1)))
        for k, out in enumerate(outs):
            ax.plot(
                out[i, channel],
                color=COLOURS[k % len(COLOURS)],
                lw=0.9,
                alpha=0.8,
                label=f"seed {seeds[k]}",
            )
        ax.plot(original[channel], color="black", lw=1.4, label="original")
        ax.set_title(f"{label}: {sample_id[:28]} (channel {channel})", fontsize=8)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=6, loc="upper left")
    fig.suptitle(_wrapped(title, int(14 * fig.get_figwidth())), fontsize=9)
    return png_bytes(fig)


def _audio_figure(
    project: Workspace, picked: pd.DataFrame, cfg: Augment, seeds: list[int], title: str
) -> bytes:
    from dlworkflow.plots import new_figure, png_bytes

    columns = clip_spectrograms(project, picked, cfg, seeds)
    n = len(columns[0])
    low = min(float(c.min()) for c in columns)
    high = max(float(c.max()) for c in columns)
    names = ["original", *(f"seed {s}" for s in seeds)]
    fig = new_figure(2.6 * len(columns), 1.9 * n + 0.7)
    for i, (sample_id, label) in enumerate(zip(picked["sample_id"].astype(str), picked["label"])):
        for j, column in enumerate(columns):
            ax = fig.add_subplot(n, len(columns), i * len(columns) + j + 1)
            ax.imshow(column[i], origin="lower", aspect="auto", cmap="magma", vmin=low, vmax=high)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(f"{label}\n{sample_id.rsplit('/', 1)[-1][:24]}", fontsize=7)
            if i == 0:
                ax.set_title(names[j], fontsize=8)
    fig.suptitle(_wrapped(title, int(14 * fig.get_figwidth())), fontsize=9)
    return png_bytes(fig)


def _spectrogram(front: Any, waves: torch.Tensor, spec: Any = None) -> np.ndarray:
    """(N, n_mels, frames) log-mel dB of the waveforms, masked by `spec` (in training mode)."""
    with torch.no_grad():
        out = front(waves)
        if spec is not None:
            spec.train()
            out = spec(out)
    return out[:, 0].numpy()


def _wrapped(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))
