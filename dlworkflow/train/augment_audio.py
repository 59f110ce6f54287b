"""Step 6 for audio: batched, seeded augmentation of waveforms and of log-mel spectrograms.

Pure torch on the batch's own device, every sample drawn independently, no loop over samples.

Waveforms (float32 (N, S), or (N, C, S)), as a `batch_transform` `(x, y) -> (x, y)`:

    augment = WaveformAugment(seed=0, gain_db=(-6, 6), shift=1600, noise_snr_db=(5, 30))
    x, y = augment(x, y)

  shift   each clip moves by a whole number of samples drawn uniformly in [-shift, shift]:
          "circular" (what leaves one end comes back at the other) or "zero" (zeros move in)
  gain    each clip is scaled by g dB, g uniform in gain_db (no clipping: the log-mel front end
          takes any amplitude)
  noise   with probability noise_p, a clip gets noise at an SNR drawn uniformly in
          noise_snr_db: 10 log10(mean(clip^2) / mean(noise^2)) is exactly that SNR. The noise
          is a random circular segment of a random row of `noise` (K, L) (a bank of real
          background recordings; shorter rows wrap around), or white Gaussian without it.
          A silent clip stays silent (its SNR is undefined).

Log-mel spectrograms ((N, 1, n_mels, T) or (N, n_mels, T)), SpecAugment (Park et al. 2019):
`freq_masks` bands of width uniform in [0, freq_width] mels and `time_masks` spans of width
uniform in [0, time_width] frames, each start uniform over the positions where it fits, are
set to the clip's mean (fill="mean") or a fixed value. `SpecAugment` is a module that sits
between the front end and the network: it masks in training mode only and is the identity in
eval mode, so it leaves no trace in an exported graph.

Determinism: as dlworkflow.train.augment, every batch draws from its own generator
(`augment.batch_generator(device, seed, epoch, batch number in the epoch)`), so the same seed
gives the same batches, a resumed run augments as an uninterrupted one (call `start_epoch` at
each epoch's start; an `on_epoch_start` callback), and the global torch RNG stream is never
touched. The functions
take a `torch.Generator` on the batch's device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from dlworkflow.errors import ConfigError
from dlworkflow.train.augment import batch_generator

ShiftMode = Literal["circular", "zero"]


def _uniform(
    n: int, low: float, high: float, g: torch.Generator, device: torch.device
) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=g, device=device)


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(N,) -> (N, 1, ...) to broadcast against `like`."""
    return values.view(-1, *([1] * (like.dim() - 1))).to(like.dtype)


def _range(name: str, value: tuple[float, float] | float) -> tuple[float, float]:
    low, high = (-float(value), float(value)) if isinstance(value, (int, float)) else value
    if not float(low) <= float(high):
        raise ConfigError(
            f"{name} must be a range (low, high) with low <= high.", received=f"{value}"
        )
    return float(low), float(high)


def random_gain(
    x: torch.Tensor, generator: torch.Generator, gain_db: tuple[float, float]
) -> torch.Tensor:
    """Each clip times 10^(g / 20), g uniform in gain_db (dB)."""
    db = _uniform(x.shape[0], *gain_db, generator, x.device)
    return x * _per_sample(10.0 ** (db / 20.0), x)


def random_shift(
    x: torch.Tensor, generator: torch.Generator, max_shift: int, mode: ShiftMode = "circular"
) -> torch.Tensor:
    """Each clip moved by s samples, s uniform in [-max_shift, max_shift] (positive: later)."""
    if mode not in ("circular", "zero"):
        raise ConfigError("The shift mode must be 'circular' or 'zero'.", received=mode)
    n, samples = x.shape[0], x.shape[-1]
    shifts = torch.randint(-max_shift, max_shift + 1, (n,), generator=generator, device=x.device)
    source = torch.arange(samples, device=x.device)[None, :] - shifts[:, None]  # (N, S)
    flat = x.reshape(n, -1, samples)
    index = (source % samples)[:, None, :].expand_as(flat)
    out = torch.gather(flat, 2, index)
    if mode == "zero":
        inside = (source >= 0) & (source < samples)
        out = out * inside[:, None, :].to(out.dtype)
    return out.reshape(x.shape)


def mix_noise(
    x: torch.Tensor,
    generator: torch.Generator,
    snr_db: tuple[float, float],
    noise: torch.Tensor | None = None,
    p: float = 1.0,
) -> torch.Tensor:
    """Each clip (with probability p) plus noise at an SNR uniform in snr_db (module doc)."""
    n, samples = x.shape[0], x.shape[-1]
    flat = x.reshape(n, -1)
    if noise is None:
        added = torch.randn(flat.shape, generator=generator, device=x.device, dtype=x.dtype)
    else:
        bank = noise.to(device=x.device, dtype=x.dtype).reshape(-1, noise.shape[-1])
        rows = torch.randint(0, bank.shape[0], (n,), generator=generator, device=x.device)
        starts = torch.randint(0, bank.shape[1], (n,), generator=generator, device=x.device)
        columns = (starts[:, None] + torch.arange(samples, device=x.device)) % bank.shape[1]
        added = bank[rows[:, None], columns]  # (N, S)
        if flat.shape[1] != samples:  # (N, C, S): one segment for every channel
            added = added.repeat(1, flat.shape[1] // samples)
    snr = _uniform(n, *snr_db, generator, x.device)
    applied = torch.rand(n, generator=generator, device=x.device) < p
    signal = flat.pow(2).mean(dim=1)
    power = added.pow(2).mean(dim=1).clamp_min(torch.finfo(x.dtype).tiny)
    scale = torch.sqrt(signal / (power * 10.0 ** (snr / 10.0))) * applied
    return (flat + scale[:, None].to(x.dtype) * added).reshape(x.shape)


class WaveformAugment:
    """`(x, y) -> (x, y)`: shift, gain and noise on a batch of waveforms (module doc)."""

    def __init__(
        self,
        *,
        seed: int,
        gain_db: tuple[float, float] | float = 0.0,
        shift: int = 0,
        shift_mode: ShiftMode = "circular",
        noise_snr_db: tuple[float, float] | None = None,
        noise: torch.Tensor | None = None,
        noise_p: float = 1.0,
    ) -> None:
        self.seed = int(seed)
        self.gain_db = _range("gain_db", gain_db)
        if shift < 0:
            raise ConfigError("shift is a number of samples, 0 or more.", received=f"{shift}")
        if shift_mode not in ("circular", "zero"):
            raise ConfigError("shift_mode must be 'circular' or 'zero'.", received=shift_mode)
        self.shift, self.shift_mode = int(shift), shift_mode
        self.noise_snr_db = None if noise_snr_db is None else _range("noise_snr_db", noise_snr_db)
        if noise is not None and (noise.dim() not in (1, 2) or noise.shape[-1] == 0):
            raise ConfigError(
                "The noise bank must be a (K, L) or (L,) tensor of samples.",
                received=f"shape {tuple(noise.shape)}",
            )
        if not 0.0 <= noise_p <= 1.0:
            raise ConfigError("noise_p is a probability.", received=f"{noise_p}")
        self.noise, self.noise_p = noise, float(noise_p)
        self.epoch, self.calls = 0, 0

    def start_epoch(self, epoch: int, model: object = None, optimizer: object = None) -> None:
        """Called at each epoch's start: batches of `epoch` are numbered from 1 again."""
        self.epoch, self.calls = int(epoch), 0

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        g = batch_generator(x.device, self.seed, self.epoch, self.calls)
        with torch.no_grad():
            if self.shift:
                x = random_shift(x, g, self.shift, self.shift_mode)
            if self.gain_db != (0.0, 0.0):
                x = random_gain(x, g, self.gain_db)
            if self.noise_snr_db is not None and self.noise_p > 0:
                x = mix_noise(x, g, self.noise_snr_db, self.noise, self.noise_p)
        return x, y


@dataclass(frozen=True)
class Masks:
    """SpecAugment masks of a batch: starts and widths (N, count) along mels and frames."""

    freq_starts: torch.Tensor
    freq_widths: torch.Tensor
    time_starts: torch.Tensor
    time_widths: torch.Tensor

    @staticmethod
    def _union(starts: torch.Tensor, widths: torch.Tensor, size: int) -> torch.Tensor:
        position = torch.arange(size, device=starts.device)[None, None, :]
        inside = (position >= starts[..., None]) & (position < (starts + widths)[..., None])
        return inside.any(dim=1)  # (N, size)

    def freq(self, n_mels: int) -> torch.Tensor:
        """bool (N, n_mels): the masked mel bands of each clip."""
        return self._union(self.freq_starts, self.freq_widths, n_mels)

    def time(self, frames: int) -> torch.Tensor:
        """bool (N, frames): the masked frames of each clip."""
        return self._union(self.time_starts, self.time_widths, frames)


def _draw(
    n: int, size: int, count: int, max_width: int, g: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    width_cap = min(max_width, size)
    widths = torch.randint(0, width_cap + 1, (n, count), generator=g, device=device)
    room = (size - widths + 1).to(torch.float32)  # positions where a mask of that width fits
    starts = (torch.rand((n, count), generator=g, device=device) * room).long()
    return starts, widths  # start + width <= size


def draw_masks(
    n: int,
    n_mels: int,
    frames: int,
    *,
    generator: torch.Generator,
    freq_masks: int,
    freq_width: int,
    time_masks: int,
    time_width: int,
    device: torch.device | str = "cpu",
) -> Masks:
    """Draw the masks of a batch of n spectrograms (n_mels, frames)."""
    device = torch.device(device)
    fs, fw = _draw(n, n_mels, freq_masks, freq_width, generator, device)
    ts, tw = _draw(n, frames, time_masks, time_width, generator, device)
    return Masks(fs, fw, ts, tw)


def apply_masks(
    spec: torch.Tensor, masks: Masks, fill: float | Literal["mean"] = "mean"
) -> torch.Tensor:
    """spec (N, [1,] n_mels, T) with the masked bands and frames set to `fill`: a value, or
    "mean", each clip's mean over its whole spectrogram before masking."""
    n, n_mels, frames = spec.shape[0], spec.shape[-2], spec.shape[-1]
    covered = masks.freq(n_mels)[:, :, None] | masks.time(frames)[:, None, :]  # (N, M, T)
    covered = covered.view(n, *([1] * (spec.dim() - 3)), n_mels, frames)
    if fill == "mean":
        value = spec.reshape(n, -1).mean(dim=1).view(n, *([1] * (spec.dim() - 1)))
    else:
        value = torch.full((), float(fill), dtype=spec.dtype, device=spec.device)
    return torch.where(covered, value.to(spec.dtype), spec)


def spec_augment(
    spec: torch.Tensor,
    generator: torch.Generator,
    *,
    freq_masks: int = 2,
    freq_width: int = 8,
    time_masks: int = 2,
    time_width: int = 10,
    fill: float | Literal["mean"] = "mean",
) -> torch.Tensor:
    """SpecAugment's frequency and time masks, drawn independently for every clip."""
    masks = draw_masks(
        spec.shape[0],
        spec.shape[-2],
        spec.shape[-1],
        generator=generator,
        freq_masks=freq_masks,
        freq_width=freq_width,
        time_masks=time_masks,
        time_width=time_width,
        device=spec.device,
    )
    return apply_masks(spec, masks, fill)


class SpecAugment(nn.Module):
    """Masks log-mel spectrograms in training mode (seeded per epoch and batch); the identity
    in eval mode. No parameters or buffers: a checkpoint does not see it."""

    def __init__(
        self,
        *,
        seed: int,
        freq_masks: int = 2,
        freq_width: int = 8,
        time_masks: int = 2,
        time_width: int = 10,
        fill: float | Literal["mean"] = "mean",
    ) -> None:
        super().__init__()
        if min(freq_masks, freq_width, time_masks, time_width) < 0:
            raise ConfigError(
                "SpecAugment's mask counts and widths must be 0 or more.",
                received=f"freq {freq_masks} x {freq_width}, time {time_masks} x {time_width}",
            )
        if fill != "mean" and not isinstance(fill, (int, float)):
            raise ConfigError("fill must be 'mean' or a number.", received=f"{fill!r}")
        self.seed, self.fill = int(seed), fill
        self.freq_masks, self.freq_width = int(freq_masks), int(freq_width)
        self.time_masks, self.time_width = int(time_masks), int(time_width)
        self.epoch, self.calls = 0, 0

    def extra_repr(self) -> str:
        return (
            f"freq_masks={self.freq_masks}, freq_width={self.freq_width}, "
            f"time_masks={self.time_masks}, time_width={self.time_width}, fill={self.fill}"
        )

    def start_epoch(self, epoch: int, model: object = None, optimizer: object = None) -> None:
        """Called at each epoch's start: batches of `epoch` are numbered from 1 again."""
        self.epoch, self.calls = int(epoch), 0

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return spec
        self.calls += 1
        g = batch_generator(spec.device, self.seed, self.epoch, self.calls)
        return spec_augment(
            spec,
            g,
            freq_masks=self.freq_masks,
            freq_width=self.freq_width,
            time_masks=self.time_masks,
            time_width=self.time_width,
            fill=self.fill,
        )
