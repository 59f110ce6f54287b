"""Clips of audio tasks as the waveforms the networks take.

The manifest's `path` is the original clip, read in place. The network takes a batch of mono
float32 waveforms (N, S) at `data.audio.sample_rate`: each clip mixed down, resampled
(polyphase), cropped or zero-padded by `data.audio.policy` (store.audio.decode_audio). With
policy `fixed` every clip has the same S; with `max` the batch is zero-padded to its longest.
The same decoding runs in training, `dlw test`, the server and the monitor (`clip_settings`
reads it from the config or from a model's preprocessing, `decode_clip` applies it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from dlworkflow.fileio import atomic_write_with, sha256_json
from dlworkflow.store.audio import AudioLimits, DecodedAudio, DurationPolicy, decode_audio

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.workspace import Workspace


@dataclass(frozen=True)
class ClipSettings:
    """What a clip becomes for the network (data.audio), JSON-ready through `as_dict`."""

    sample_rate: int = 16_000
    duration: float = 2.0
    policy: Literal["fixed", "max"] = "fixed"
    crop: Literal["centre", "start"] = "centre"
    max_seconds: float = 60.0
    max_bytes: int = 50_000_000
    silence_dbfs: float = -60.0
    max_clipping_share: float = 0.01

    @classmethod
    def from_config(cls, audio: Any) -> ClipSettings:
        """From the config's `data.audio` section (or any object with its fields)."""
        return cls(**{k: getattr(audio, k) for k in cls.__dataclass_fields__})

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ClipSettings:
        """From a model's preprocessing (the keys it has; defaults for the rest)."""
        return cls(**{k: values[k] for k in cls.__dataclass_fields__ if k in values})

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @property
    def limits(self) -> AudioLimits:
        return AudioLimits(
            max_bytes=self.max_bytes,
            max_seconds=self.max_seconds,
            silence_dbfs=self.silence_dbfs,
            max_clipping_share=self.max_clipping_share,
        )

    @property
    def duration_policy(self) -> DurationPolicy:
        return DurationPolicy(self.policy, self.duration, self.crop)

    @property
    def samples(self) -> int:
        """Samples of a clip of exactly `duration` seconds (the fixed policy's length)."""
        return max(1, round(self.duration * self.sample_rate))


def decoded_clip(source: str | Path | bytes, settings: ClipSettings) -> DecodedAudio:
    """One clip decoded as the network takes it (`.samples`: float32 (S,) mono at the
    settings' rate with their duration policy), with the original's AudioStats (`.stats`);
    AudioDecodeError (with the reason) for a clip that cannot be read or breaks the limits."""
    return decode_audio(
        source,
        sample_rate=settings.sample_rate,
        mono=True,
        max_bytes=settings.max_bytes,
        max_seconds=settings.max_seconds,
        duration_policy=settings.duration_policy,
        silence_dbfs=settings.silence_dbfs,
    )


def decode_clip(source: str | Path | bytes, settings: ClipSettings) -> np.ndarray:
    """float32 (S,) mono waveform of one clip as the network takes it; AudioDecodeError
    (with the reason) for a clip that cannot be read or breaks the limits."""
    return decoded_clip(source, settings).samples


def zero_padded(waves: Sequence[np.ndarray], length: int | None = None) -> np.ndarray:
    """float32 (N, S): the waveforms zero-padded at the end to `length` (or the longest)."""
    total = max((len(w) for w in waves), default=1) if length is None else int(length)
    out = np.zeros((len(waves), total), dtype=np.float32)
    for i, w in enumerate(waves):
        out[i, : min(len(w), total)] = w[:total]
    return out


def clip_tensor(
    project: Workspace,
    rows: pd.DataFrame,
    settings: ClipSettings | None = None,
    *,
    progress: Callable | None = None,
) -> np.ndarray:
    """float32 (N, S) waveforms of the rows' clips in row order, cached under .dlw/cache by
    the clips' content hashes and the settings. A clip that no longer decodes raises."""
    settings = settings or ClipSettings.from_config(project.config.data.audio)
    key = sha256_json(["clips-v1", rows["content_hash"].tolist(), settings.as_dict()])[:24]
    path = project.paths.cache / f"clips-{key}.npy"
    if path.is_file():
        return np.load(path, allow_pickle=False)
    waves = []
    for i, p in enumerate(rows["path"].tolist()):
        waves.append(decode_clip(p, settings))
        if progress is not None and (i + 1) % 32 == 0:
            progress(i + 1, len(rows))
    batch = zero_padded(waves, settings.samples if settings.policy == "fixed" else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_with(path, lambda p: _save(p, batch))
    if progress is not None:
        progress(len(rows), len(rows))
    return batch


def _save(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array)
