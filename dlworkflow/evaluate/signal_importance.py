"""Occlusion importance of series and audio inputs (dlworkflow.evaluate.importance's methods
for the sequence and audio modalities), measured on validation like the other modalities.

- sequence: each channel (at most MAX_CHANNELS, the first ones) in turn is replaced by its
  validation mean within each series' real length, and each of SEGMENTS time segments (the
  same fraction of every series' own length: segment 0 is its first eighth) is replaced, in
  all channels, by the channel means. The NaN tail that marks each series' end is kept, so
  the network sees the same lengths.
- audio: each of SEGMENTS time segments of the waveform (the network's input, at the model's
  sample rate) is silenced (set to 0, a waveform's mean); when the model computes its
  log-mel spectrogram itself (a `front` LogMel, then `embed` and `head`: every audio network
  of dlworkflow), each of BANDS bands of mel bins is also set to that bin's validation mean
  level (in dB) over all frames, inside the network.

Each entry's name says what was taken away; `groups` (in the record) lists the names of each
kind in order, for the figure (one bar chart per kind).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.evaluate.ablation_passes import forward, subsample

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.models.meta import ModelMeta
    from dlworkflow.tasks import Task
    from dlworkflow.workspace import Workspace

SEGMENTS = 8  # time segments, each taken away in turn
BANDS = 8  # audio: bands of mel bins, each taken away in turn
MAX_CHANNELS = 16  # sequence: channels measured (the first ones)
MAX_FORWARDS = 4096  # single-sample forward passes, at most (a seeded subsample of rows)
MAX_VALUES = 20_000_000  # sequence: values of the occluded batch (80 MB), at most
BATCH = 256  # rows a forward pass

Ablation = tuple[str, list[np.ndarray]]
Measured = tuple[np.ndarray, np.ndarray, list[Ablation], dict[str, Any]]


def series_occlusion(
    project: Workspace,
    model: Any,
    meta: ModelMeta,
    task: Task,
    rows: pd.DataFrame,
    target: dict[str, Any],
    rng: np.random.Generator,
) -> Measured:
    """Channels and time segments replaced by the channel means (module docstring)."""
    import torch

    from dlworkflow.evaluate.nearest_baselines import read_rows
    from dlworkflow.store.series import lengths_of, nan_padded

    first = read_rows(rows.iloc[:1])[0]
    channels = int(first.shape[0])
    measured = min(channels, MAX_CHANNELS) if channels > 1 else 0
    longest = int(rows["length"].max()) if "length" in rows.columns else first.shape[1]
    budget = max(2, MAX_VALUES // max(channels * longest, 1))  # the batch's memory
    chosen = subsample(len(rows), measured + SEGMENTS + 1, MAX_FORWARDS, rng, cap=budget)
    x = nan_padded(read_rows(rows.iloc[chosen]))
    lengths = lengths_of(x)
    real = np.arange(x.shape[2])[None, :] < lengths[:, None]  # (N, T)
    means = np.array([float(x[:, c][real].mean()) for c in range(channels)], dtype=np.float32)
    position = np.arange(x.shape[2])[None, :] * SEGMENTS // np.maximum(lengths[:, None], 1)

    def outputs_of(array: np.ndarray) -> np.ndarray:
        return np.asarray(
            task.outputs(forward(model, torch.from_numpy(array), batch=BATCH), target)
        )

    ablations: list[Ablation] = []
    channel_names = []
    for c in range(measured):
        occluded = x.copy()
        occluded[:, c][real] = means[c]
        channel_names.append(f"channel {c}")
        ablations.append((channel_names[-1], [outputs_of(occluded)]))
    segment_names = []
    for s in range(SEGMENTS):
        cells = real & (position == s)  # (N, T)
        occluded = x.copy()
        for c in range(channels):
            occluded[:, c][cells] = means[c]
        segment_names.append(f"time {s * 100 // SEGMENTS}-{(s + 1) * 100 // SEGMENTS}%")
        ablations.append((segment_names[-1], [outputs_of(occluded)]))
    groups = {"time segments (share of each series' length)": segment_names}
    if channel_names:
        groups = {"channels": channel_names, **groups}
    info: dict[str, Any] = {
        "method": f"occlusion of {SEGMENTS} time segments"
        + (f" and of {measured} channels" if measured else "")
        + " (replaced by the channel means on validation)",
        "segments": SEGMENTS,
        "groups": groups,
    }
    if channels > measured > 0:
        info["not_measured"] = [f"channel {c}" for c in range(measured, channels)]
    return chosen, outputs_of(x), ablations, info


def audio_occlusion(
    project: Workspace,
    model: Any,
    meta: ModelMeta,
    task: Task,
    rows: pd.DataFrame,
    target: dict[str, Any],
    rng: np.random.Generator,
) -> Measured:
    """Waveform time segments silenced and log-mel bands set to their mean (docstring)."""
    import torch

    from dlworkflow.models.predict import clip_settings_of
    from dlworkflow.store.clips import clip_tensor

    settings = clip_settings_of(project, meta)
    inside = all(hasattr(model, name) for name in ("front", "embed", "head"))
    chosen = subsample(len(rows), SEGMENTS + (BANDS if inside else 0) + 1, MAX_FORWARDS, rng)
    waves = torch.from_numpy(np.array(clip_tensor(project, rows, settings)[chosen]))

    def outputs_of(array: Any) -> np.ndarray:
        return np.asarray(task.outputs(forward(model, array, batch=BATCH), target))

    edges = np.linspace(0, waves.shape[1], SEGMENTS + 1).astype(int)
    seconds = edges / settings.sample_rate
    ablations: list[Ablation] = []
    segment_names = []
    for s in range(SEGMENTS):
        silenced = waves.clone()
        silenced[:, edges[s] : edges[s + 1]] = 0.0
        segment_names.append(f"time {seconds[s]:.2f}-{seconds[s + 1]:.2f} s")
        ablations.append((segment_names[-1], [outputs_of(silenced)]))
    groups = {"time segments (silenced)": segment_names}
    method = f"occlusion of {SEGMENTS} time segments of the waveform (silenced)"
    if inside:
        band_names, band_ablations = _band_ablations(model, waves, task, target)
        ablations.extend(band_ablations)
        groups["mel bands (set to their mean level)"] = band_names
        method += f" and of {BANDS} bands of the log-mel spectrogram (set to their mean level)"
    info: dict[str, Any] = {"method": method, "segments": SEGMENTS, "groups": groups}
    if not inside:
        info["not_measured"] = ["frequency bands: the model has no log-mel front end of its own"]
    return chosen, outputs_of(waves), ablations, info


def _band_ablations(
    model: Any, waves: Any, task: Task, target: dict[str, Any]
) -> tuple[list[str], list[Ablation]]:
    import torch

    from dlworkflow.preprocess.audio import hz_to_mel, mel_to_hz

    model.eval()
    with torch.inference_mode():
        spec = torch.cat([model.front(waves[i : i + 256]) for i in range(0, len(waves), 256)])
    level = spec.mean(dim=(0, 1, 3))  # (mels,) the mean dB of each bin on validation
    mels = spec.shape[2]
    front = model.front
    scale: Any = getattr(front, "mel_scale", "slaney")
    low = float(hz_to_mel(float(getattr(front, "f_min", 0.0)), scale))
    high = float(hz_to_mel(float(getattr(front, "f_max", 8000.0)), scale))
    hz = mel_to_hz(np.linspace(low, high, BANDS + 1), scale)
    bins = np.linspace(0, mels, BANDS + 1).astype(int)
    names, ablations = [], []
    for b in range(BANDS):
        masked = spec.clone()
        masked[:, :, bins[b] : bins[b + 1], :] = level[bins[b] : bins[b + 1]].view(1, 1, -1, 1)
        logits = []
        with torch.inference_mode():
            for i in range(0, len(masked), 256):
                logits.append(model.head(model.embed(masked[i : i + 256])).float().numpy())
        names.append(f"mel band {b} ({hz[b]:.0f}-{hz[b + 1]:.0f} Hz)")
        outputs = task.outputs(np.concatenate(logits).astype(np.float64), target)
        ablations.append((names[-1], [np.asarray(outputs)]))
    return names, ablations
