"""The audio front end: raw waveforms -> log-mel spectrograms, as a torch module that is part of
the exported ONNX graph (the server takes raw samples), and an independent numpy reference.

    front = LogMel(sample_rate=16000)          # nn.Module, no trainable parameters
    spec = front(waveform)                     # float32 (N, S) in [-1, 1] -> (N, 1, 64, frames)
    ref = log_mel_numpy(waveform_np, sample_rate=16000)   # the same numbers, float64, numpy

Unlike its sibling modules this one imports torch (the front end is a network layer).

The computation, step by step (the defaults in brackets):
  centre padding  n_fft // 2 samples on both sides, `pad_mode` "reflect" (as librosa's and
                  torch.stft's centre=True) or "constant" (zeros); frames = 1 + S // hop_length.
                  Reflection needs S > n_fft // 2 samples (32 ms at the defaults).
  STFT            frames of n_fft [1024] samples every hop_length [320] samples (20 ms at
                  16 kHz: 50 frames a second), a periodic Hann window of win_length [n_fft]
                  samples centred in the frame (zero outside, torch.stft's convention).
                  Written as one conv1d whose 2 * (n_fft // 2 + 1) fixed kernels are the real
                  and imaginary DFT rows with the window folded in: ONNX Conv with a stride,
                  so the exported graph takes any number of samples (Pad "reflect" and Conv
                  both run in ONNX Runtime at opset 17, the opset of dlworkflow's exports).
                  Outside an export (training, eager inference) the same frames go through
                  torch.stft instead (an FFT: 3x faster on CPU than the DFT as a convolution);
                  `power_spectrogram(x, method=...)` runs either, they agree to float32
                  rounding. ONNX's own STFT operator is avoided: ONNX Runtime's is no faster
                  than the convolution and fewer runtimes implement it.
  power           |X|^power, power 2 (power spectrum) or 1 (magnitude).
  mel             triangular filters on the SLANEY mel scale by default (linear below 1 kHz,
                  logarithmic above: librosa's default, htk=False) or the HTK scale
                  (2595 log10(1 + f / 700)); n_mels [64] filters with centres evenly spaced in
                  mels between f_min [0] and f_max [sample_rate / 2], each filter's edges at its
                  neighbours' centres; `norm="slaney"` [default] scales each filter to unit area
                  (2 / bandwidth in Hz), so a broadband sound gives a flat mel spectrum;
                  norm=None leaves peaks of 1. A registered buffer (n_mels, n_fft // 2 + 1).
  log             10 * log10(max(mel, amin)), amin 1e-10 (-100 dB), for power and magnitude
                  alike (librosa's power_to_db).
  floor           PER CLIP: values below (the clip's maximum - top_db [80]) are raised to it, as
                  librosa's power_to_db(ref=1, top_db=80): quiet clips keep their level (a
                  clip 20 dB quieter is 20 dB lower everywhere), and the dynamic range of every
                  clip is at most top_db, whatever its silence or padding. One ReduceMax over
                  (mels, frames) per clip in ONNX. top_db=None: only the fixed amin floor.

No normalisation follows: the model's first layer (a BatchNorm, say) scales the dB values.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlworkflow.errors import ConfigError, DlwError

MelScale = Literal["slaney", "htk"]
PadMode = Literal["reflect", "constant"]

AMIN = 1e-10

# Slaney's scale: linear (3 mels per 200 Hz) below 1 kHz, then 27 mels per factor 6.4.
_SLANEY_F_SP = 200.0 / 3.0
_SLANEY_MIN_LOG_HZ = 1000.0
_SLANEY_MIN_LOG_MEL = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP
_SLANEY_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray | float, scale: MelScale = "slaney") -> np.ndarray:
    """Frequencies in Hz -> mels on the Slaney or the HTK scale (float64)."""
    f = np.asarray(hz, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    if scale != "slaney":
        raise ValueError(f"mel scale must be 'slaney' or 'htk', not {scale!r}")
    linear = f / _SLANEY_F_SP
    log = _SLANEY_MIN_LOG_MEL + np.log(np.maximum(f, 1e-12) / _SLANEY_MIN_LOG_HZ) / _SLANEY_LOGSTEP
    return np.where(f >= _SLANEY_MIN_LOG_HZ, log, linear)


def mel_to_hz(mels: np.ndarray | float, scale: MelScale = "slaney") -> np.ndarray:
    """The inverse of `hz_to_mel`."""
    m = np.asarray(mels, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    if scale != "slaney":
        raise ValueError(f"mel scale must be 'slaney' or 'htk', not {scale!r}")
    linear = m * _SLANEY_F_SP
    log = _SLANEY_MIN_LOG_HZ * np.exp(_SLANEY_LOGSTEP * (m - _SLANEY_MIN_LOG_MEL))
    return np.where(m >= _SLANEY_MIN_LOG_MEL, log, linear)


def mel_band_edges(
    *, n_mels: int, f_min: float, f_max: float, scale: MelScale = "slaney"
) -> np.ndarray:
    """The n_mels + 2 frequencies (Hz) of the filters: filter i rises from edge i to its peak
    at edge i + 1 and falls to 0 at edge i + 2."""
    mels = np.linspace(hz_to_mel(f_min, scale), hz_to_mel(f_max, scale), n_mels + 2)
    return mel_to_hz(mels, scale)


def mel_filter_bank(
    *,
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    f_min: float = 0.0,
    f_max: float | None = None,
    scale: MelScale = "slaney",
    norm: Literal["slaney"] | None = "slaney",
) -> np.ndarray:
    """float64 (n_mels, n_fft // 2 + 1): row i weighs the FFT bins into mel band i.

    Triangular filters evaluated at the bin frequencies k * sample_rate / n_fft. Raises
    ConfigError for a band that covers no FFT bin (too many mels for n_fft) or bad limits."""
    f_max = sample_rate / 2.0 if f_max is None else float(f_max)
    if not 0.0 <= f_min < f_max <= sample_rate / 2.0:
        raise ConfigError(
            "The mel filter bank's frequency limits are out of range.",
            expected=f"0 <= f_min < f_max <= sample_rate / 2 = {sample_rate / 2:g} Hz",
            received=f"f_min={f_min:g}, f_max={f_max:g}",
        )
    edges = mel_band_edges(n_mels=n_mels, f_min=f_min, f_max=f_max, scale=scale)
    bins = np.arange(n_fft // 2 + 1, dtype=np.float64) * sample_rate / n_fft
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        weights *= 2.0 / (upper - lower)
    elif norm is not None:
        raise ValueError(f"norm must be 'slaney' or None, not {norm!r}")
    empty = np.flatnonzero(weights.max(axis=1) <= 0.0)
    if empty.size:
        raise ConfigError(
            f"{empty.size} of the {n_mels} mel bands cover no FFT bin.",
            expected="fewer mel bands or a larger n_fft",
            received=f"n_mels={n_mels}, n_fft={n_fft}, sample_rate={sample_rate}",
            fix="lower n_mels or raise n_fft",
        )
    return weights


class ClipTooShortError(DlwError):
    """A clip shorter than the reflect padding of the log-mel front end needs."""


def _check(sample_rate: int, n_fft: int, hop_length: int, win_length: int, power: float) -> None:
    if sample_rate <= 0 or n_fft < 2 or hop_length <= 0:
        raise ConfigError(
            "The log-mel front end needs a positive sample rate, n_fft >= 2 and hop_length > 0.",
            received=f"sample_rate={sample_rate}, n_fft={n_fft}, hop_length={hop_length}",
        )
    if not 0 < win_length <= n_fft:
        raise ConfigError(
            "win_length must be between 1 and n_fft.",
            received=f"win_length={win_length}, n_fft={n_fft}",
        )
    if power not in (1.0, 2.0):
        raise ConfigError("power must be 1 (magnitude) or 2 (power).", received=f"{power}")


def _frame_window(n_fft: int, win_length: int) -> np.ndarray:
    """The periodic Hann window of win_length samples, centred in n_fft zeros (float64)."""
    window = np.zeros(n_fft)
    start = (n_fft - win_length) // 2
    hann = torch.hann_window(win_length, periodic=True, dtype=torch.float64).numpy()
    window[start : start + win_length] = hann
    return window


class LogMel(nn.Module):
    """float32 waveforms (N, S) -> log-mel spectrograms (N, 1, n_mels, 1 + S // hop_length) in
    dB; see the module docstring. Exports to ONNX with dynamic N and S."""

    dft: torch.Tensor
    dft_window: torch.Tensor
    mel_fb: torch.Tensor

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop_length: int = 320,
        win_length: int | None = None,
        n_mels: int = 64,
        f_min: float = 0.0,
        f_max: float | None = None,
        power: float = 2.0,
        top_db: float | None = 80.0,
        mel_scale: MelScale = "slaney",
        norm: Literal["slaney"] | None = "slaney",
        pad_mode: PadMode = "reflect",
        center: bool = True,
    ) -> None:
        super().__init__()
        win_length = n_fft if win_length is None else int(win_length)
        _check(sample_rate, n_fft, hop_length, win_length, float(power))
        if pad_mode not in ("reflect", "constant"):
            raise ConfigError("pad_mode must be 'reflect' or 'constant'.", received=pad_mode)
        if top_db is not None and top_db <= 0:
            raise ConfigError("top_db must be positive (or None).", received=f"{top_db}")
        self.sample_rate, self.n_fft, self.hop_length = int(sample_rate), int(n_fft), hop_length
        self.win_length, self.n_mels = win_length, int(n_mels)
        self.f_min = float(f_min)
        self.f_max = sample_rate / 2.0 if f_max is None else float(f_max)
        self.power, self.top_db = float(power), None if top_db is None else float(top_db)
        self.mel_scale, self.norm, self.pad_mode, self.center = mel_scale, norm, pad_mode, center
        self.n_freqs = n_fft // 2 + 1
        # DFT rows in float64, rounded once to float32: real = sum x w cos, imag = -sum x w sin.
        n = np.arange(n_fft, dtype=np.float64)
        k = np.arange(self.n_freqs, dtype=np.float64)[:, None]
        angle = 2.0 * np.pi * ((k * n) % n_fft) / n_fft  # exact phase before the cos / sin
        window = _frame_window(n_fft, win_length)
        kernels = np.concatenate([np.cos(angle) * window, -np.sin(angle) * window])
        self.register_buffer(
            "dft", torch.from_numpy(kernels[:, None, :].astype(np.float32)), persistent=False
        )
        self.register_buffer(
            "dft_window", torch.from_numpy(window.astype(np.float32)), persistent=False
        )
        fb = mel_filter_bank(
            sample_rate=sample_rate,
            n_fft=n_fft,
            n_mels=n_mels,
            f_min=self.f_min,
            f_max=self.f_max,
            scale=mel_scale,
            norm=norm,
        )
        self.register_buffer("mel_fb", torch.from_numpy(fb.astype(np.float32)), persistent=False)

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, hop_length={self.hop_length}, "
            f"win_length={self.win_length}, n_mels={self.n_mels}, f_min={self.f_min:g}, "
            f"f_max={self.f_max:g}, power={self.power:g}, top_db={self.top_db}, "
            f"mel_scale={self.mel_scale}, norm={self.norm}, pad_mode={self.pad_mode}"
        )

    def config(self) -> dict[str, object]:
        """The constructor's arguments: `LogMel(**front.config())` is the same front end (for
        an export's metadata)."""
        return {
            "sample_rate": self.sample_rate,
            "n_fft": self.n_fft,
            "hop_length": self.hop_length,
            "win_length": self.win_length,
            "n_mels": self.n_mels,
            "f_min": self.f_min,
            "f_max": self.f_max,
            "power": self.power,
            "top_db": self.top_db,
            "mel_scale": self.mel_scale,
            "norm": self.norm,
            "pad_mode": self.pad_mode,
            "center": self.center,
        }

    @property
    def min_samples(self) -> int:
        """The shortest clip the front end takes (reflect padding needs more samples than it
        pads; an exported graph fails in ONNX Runtime's Pad below this length)."""
        if not self.center:
            return self.n_fft
        return self.n_fft // 2 + 1 if self.pad_mode == "reflect" else 1

    def frames(self, samples: int) -> int:
        """The number of spectrogram frames for a clip of `samples` samples."""
        if self.center:
            return 1 + samples // self.hop_length
        return 1 + (samples - self.n_fft) // self.hop_length

    def power_spectrogram(
        self, waveform: torch.Tensor, method: Literal["fft", "conv"] | None = None
    ) -> torch.Tensor:
        """(N, S) -> |STFT|^2 (N, n_fft // 2 + 1, frames), by torch.stft ("fft") or by the
        DFT convolution ("conv"); None: "conv" while tracing or exporting, else "fft"."""
        exporting = torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
        if method is None:
            method = "conv" if exporting else "fft"
        if not exporting and waveform.shape[-1] < self.min_samples:
            raise ClipTooShortError(
                "A clip is too short for the log-mel front end.",
                expected=f"at least {self.min_samples} samples "
                f"({self.min_samples / self.sample_rate * 1000:.0f} ms)",
                received=f"{waveform.shape[-1]} samples",
                fix="pad the clips to a fixed length before the front end",
            )
        x = waveform.to(self.dft.dtype).unsqueeze(1)  # (N, 1, S)
        if self.center:
            pad = self.n_fft // 2
            x = F.pad(x, (pad, pad), mode=self.pad_mode)
        if method == "fft":
            z = torch.stft(
                x.squeeze(1),
                self.n_fft,
                hop_length=self.hop_length,
                window=self.dft_window,
                center=False,
                onesided=True,
                return_complex=True,
            )
            return z.real.square() + z.imag.square()
        if method != "conv":
            raise ValueError(f"method must be 'fft' or 'conv', not {method!r}")
        spec = F.conv1d(x, self.dft, stride=self.hop_length)  # (N, 2 * n_freqs, frames)
        real, imag = spec[:, : self.n_freqs], spec[:, self.n_freqs :]
        return real * real + imag * imag

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        power = self.power_spectrogram(waveform)
        if self.power == 1.0:
            power = torch.sqrt(torch.clamp(power, min=AMIN * AMIN))  # finite gradient at 0
        mel = torch.matmul(self.mel_fb, power)  # (n_mels, F) @ (N, F, T) -> (N, n_mels, T)
        db = torch.log10(torch.clamp(mel, min=AMIN)) * 10.0
        if self.top_db is not None:
            floor = db.amax(dim=(1, 2), keepdim=True) - self.top_db
            db = torch.maximum(db, floor)
        return db.unsqueeze(1)


def log_mel_numpy(
    waveform: np.ndarray,
    *,
    sample_rate: int = 16000,
    n_fft: int = 1024,
    hop_length: int = 320,
    win_length: int | None = None,
    n_mels: int = 64,
    f_min: float = 0.0,
    f_max: float | None = None,
    power: float = 2.0,
    top_db: float | None = 80.0,
    mel_scale: MelScale = "slaney",
    norm: Literal["slaney"] | None = "slaney",
    pad_mode: PadMode = "reflect",
    center: bool = True,
) -> np.ndarray:
    """The reference: what LogMel computes, in float64 numpy by explicit framing and
    numpy.fft.rfft (its own Hann window formula; the mel filter bank is `mel_filter_bank`).
    (S,) -> (1, n_mels, frames); (N, S) -> (N, 1, n_mels, frames)."""
    x = np.asarray(waveform, dtype=np.float64)
    single = x.ndim == 1
    x = np.atleast_2d(x)
    win_length = n_fft if win_length is None else int(win_length)
    _check(sample_rate, n_fft, hop_length, win_length, float(power))
    if center:
        x = np.pad(x, ((0, 0), (n_fft // 2, n_fft // 2)), mode=pad_mode)
    count = 1 + (x.shape[1] - n_fft) // hop_length
    starts = np.arange(count) * hop_length
    frames = x[:, starts[:, None] + np.arange(n_fft)[None, :]]  # (N, T, n_fft)
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win_length) / win_length)
    offset = (n_fft - win_length) // 2
    window = np.zeros(n_fft)
    window[offset : offset + win_length] = hann
    spectrum = np.abs(np.fft.rfft(frames * window, n=n_fft, axis=-1)) ** power  # (N, T, F)
    fb = mel_filter_bank(
        sample_rate=sample_rate,
        n_fft=n_fft,
        n_mels=n_mels,
        f_min=f_min,
        f_max=f_max,
        scale=mel_scale,
        norm=norm,
    )
    mel = np.einsum("mf,ntf->nmt", fb, spectrum)
    db = 10.0 * np.log10(np.maximum(mel, AMIN))
    if top_db is not None:
        db = np.maximum(db, db.max(axis=(1, 2), keepdims=True) - top_db)
    out = db[:, None]
    return out[0] if single else out
