"""Step 6 for series and audio: the batch augmentation `augment:` configures, chosen by the
task's modality (strategies.train_model; images: train/augment.py).

Series (sequence-classification), `series_transform`: the trainer's batches are NaN-padded
(N, C, T) raw values (store.series.nan_padded). Each batch is turned into zeros + lengths
(the last step with a value on some channel), augmented by SeriesAugment within each series'
real length (train/augment_series.py), and NaN is put back after each end, so the model
reads the same lengths as before. Each switched-on op is applied to a series with
probability SERIES_P:

  jitter          SeriesSettings.jitter_sigma (relative to each channel's std)
  scaling         scaling_sigma
  magnitude_warp  magnitude_warp_sigma
  time_warp       time_warp_sigma
  window_slice    window_slice_ratio = 1 - window_slice

Audio (audio-classification), `audio_transform` on the waveforms (N, S) in the trainer
(WaveformAugment: gain up to +-gain_db, a circular shift up to time_shift x S samples,
white noise into NOISE_P of the clips at an SNR from noise_snr_db to noise_snr_db +
NOISE_SPAN_DB), and `spec_augment`: a SpecAugment module (SPEC_MASKS frequency masks of up
to freq_mask mels, SPEC_MASKS time masks of up to time_mask frames) that the trainer puts
inside the audio model for the run (AudioClassifier.augment: training mode only, so
validation, the saved model and the export never see it).

Mixup (augment.mixup, the Beta(alpha, alpha) blend with one-hot targets) applies to both:
two waveforms are blended sample by sample; two series are blended over their zero-filled
values and the blend lasts as long as the longer of the two (what a zero-padded network sees
of the shorter one past its end).

Every transform is seeded per batch (augment.batch_generator with (seed, epoch, batch
number)): the same seed gives the same batches, and the trainer's `start_epoch` callback
numbers each epoch's batches from 1 (a resumed run augments as an uninterrupted one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from dlworkflow.train.augment import _derived_seed
from dlworkflow.train.augment_audio import SpecAugment, WaveformAugment
from dlworkflow.train.augment_series import SeriesAugment, SeriesSettings

if TYPE_CHECKING:
    from dlworkflow.config import Augment

SERIES_P = 0.5  # probability of each switched-on series op, per series
NOISE_P = 0.5  # share of clips that get noise (augment.noise_snr_db)
NOISE_SPAN_DB = 20.0  # the SNR is drawn from noise_snr_db to noise_snr_db + this
SPEC_MASKS = 2  # SpecAugment masks along each axis that is switched on


def series_settings(cfg: Augment) -> SeriesSettings | None:
    """The SeriesSettings of `augment:` (None when no series op is on)."""
    p = {
        op: SERIES_P if getattr(cfg, op) > 0 else 0.0
        for op in ("jitter", "scaling", "magnitude_warp", "time_warp", "window_slice")
    }
    if not any(p.values()):
        return None
    return SeriesSettings(
        jitter_p=p["jitter"],
        jitter_sigma=cfg.jitter,
        scaling_p=p["scaling"],
        scaling_sigma=cfg.scaling,
        magnitude_warp_p=p["magnitude_warp"],
        magnitude_warp_sigma=cfg.magnitude_warp,
        time_warp_p=p["time_warp"],
        time_warp_sigma=cfg.time_warp,
        window_slice_p=p["window_slice"],
        window_slice_ratio=1.0 - cfg.window_slice if cfg.window_slice > 0 else 0.9,
    )


def nan_lengths(x: torch.Tensor) -> torch.Tensor:
    """(N,) int64: 1 + the last time step where some channel of the series has a value."""
    real = ~torch.isnan(x).all(dim=1)  # (N, T)
    steps = torch.arange(1, x.shape[-1] + 1, device=x.device)
    return (real * steps).amax(dim=1).to(torch.int64)


def nan_after(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x with NaN at every step at or past each series' length."""
    past = torch.arange(x.shape[-1], device=x.device)[None, :] >= lengths[:, None]
    return x.masked_fill(past[:, None, :], float("nan"))


class _Mixup:
    """Beta(alpha, alpha) blends of a batch with a permutation of itself, seeded per batch."""

    def __init__(self, alpha: float, num_classes: int, seed: int) -> None:
        self.alpha, self.num_classes, self.seed = float(alpha), int(num_classes), int(seed)

    def draw(self, n: int, epoch: int, batch: int) -> tuple[float, np.ndarray]:
        rng = np.random.default_rng(_derived_seed(self.seed, epoch, batch))
        return float(rng.beta(self.alpha, self.alpha)), rng.permutation(n)

    def targets(self, y: torch.Tensor, perm: torch.Tensor, lam: float) -> torch.Tensor:
        if y.dtype in (torch.int64, torch.int32):
            y = nn.functional.one_hot(y.long(), self.num_classes).to(torch.float32)
        return y * lam + y[perm] * (1.0 - lam)


class _MixingTransform:
    """What the series and audio batch transforms share: the optional augmentation, seeded
    mixup, and the epoch and batch counters that seed each batch's draws."""

    def __init__(self, augment: Any, *, mixup: float, num_classes: int, seed: int) -> None:
        self.augment = augment
        self.mixup = _Mixup(mixup, num_classes, seed + 1) if mixup > 0 else None
        self.mixes = self.mixup is not None
        self.epoch, self.calls = 0, 0

    def start_epoch(self, epoch: int, model: object = None, optimizer: object = None) -> None:
        self.epoch, self.calls = int(epoch), 0
        if self.augment is not None:
            self.augment.start_epoch(epoch)

    def _mixed(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(x, y) blended with this batch's permutation of itself (mixup), and the
        permutation; unchanged and None without mixup."""
        if self.mixup is None:
            return x, y, None
        lam, order = self.mixup.draw(len(x), self.epoch, self.calls)
        perm = torch.from_numpy(order).to(x.device)
        return x * lam + x[perm] * (1.0 - lam), self.mixup.targets(y, perm, lam), perm


class SeriesTransform(_MixingTransform):
    """`(x, y) -> (x, y)` on NaN-padded series batches: SeriesAugment within each length,
    then mixup; NaN after each end on the way out (module doc)."""

    def __init__(
        self, settings: SeriesSettings | None, *, mixup: float, num_classes: int, seed: int
    ) -> None:
        augment = SeriesAugment(settings, seed=seed) if settings is not None else None
        super().__init__(augment, mixup=mixup, num_classes=num_classes, seed=seed)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        with torch.no_grad():
            lengths = nan_lengths(x)
            filled = torch.nan_to_num(x, nan=0.0)
            if self.augment is not None:
                filled, y = self.augment(filled, y, lengths)
            filled, y, perm = self._mixed(filled, y)
            if perm is not None:
                lengths = torch.maximum(lengths, lengths[perm])
            return nan_after(filled, lengths), y


class AudioTransform(_MixingTransform):
    """`(x, y) -> (x, y)` on waveform batches (N, S): WaveformAugment, then mixup."""

    def __init__(
        self, augment: WaveformAugment | None, *, mixup: float, num_classes: int, seed: int
    ) -> None:
        super().__init__(augment, mixup=mixup, num_classes=num_classes, seed=seed)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        with torch.no_grad():
            if self.augment is not None:
                x, y = self.augment(x, y)
            x, y, _ = self._mixed(x, y)
        return x, y


def series_transform(cfg: Augment, *, num_classes: int, seed: int) -> SeriesTransform | None:
    """The series batch transform of `augment:` (None when nothing applies to series)."""
    settings = series_settings(cfg)
    if settings is None and not cfg.mixup:
        return None
    return SeriesTransform(settings, mixup=cfg.mixup, num_classes=num_classes, seed=seed)


def audio_transform(
    cfg: Augment, *, samples: int, num_classes: int, seed: int
) -> AudioTransform | None:
    """The waveform batch transform of `augment:` for clips of `samples` samples (None when
    no waveform option is on)."""
    shift = int(round(cfg.time_shift * samples))
    noise = (cfg.noise_snr_db, cfg.noise_snr_db + NOISE_SPAN_DB) if cfg.noise_snr_db else None
    wave = None
    if cfg.gain_db or shift or noise is not None:
        wave = WaveformAugment(
            seed=seed,
            gain_db=float(cfg.gain_db),
            shift=shift,
            noise_snr_db=noise,
            noise_p=NOISE_P,
        )
    if wave is None and not cfg.mixup:
        return None
    return AudioTransform(wave, mixup=cfg.mixup, num_classes=num_classes, seed=seed)


def spec_augment(cfg: Augment, *, seed: int) -> SpecAugment | None:
    """The SpecAugment module of `augment:` (None when freq_mask and time_mask are 0); its
    seed is derived from `seed`, apart from the waveform transform's."""
    if not cfg.freq_mask and not cfg.time_mask:
        return None
    return SpecAugment(
        seed=_derived_seed(seed, 0, 0),
        freq_masks=SPEC_MASKS if cfg.freq_mask else 0,
        freq_width=int(cfg.freq_mask),
        time_masks=SPEC_MASKS if cfg.time_mask else 0,
        time_width=int(cfg.time_mask),
    )
