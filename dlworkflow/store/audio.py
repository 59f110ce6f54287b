"""Decode audio clips safely (WAV, FLAC, OGG) and measure their quality in one pass.

Every clip goes through the same gates, cheapest first, so that a hostile or broken file
costs little: the byte limit (before anything is opened); the format, recognised from the
first bytes of the content (never the file name) and allowed only if it is WAV, FLAC or OGG,
so that libsndfile's parsers for the other formats it knows (AIFF, MP3, CAF, MAT5, ...) never
see the bytes; soundfile's own detection, which must agree; the header (frames, sample rate,
channels) against the limits, before any sample is read (the declared length sizes the read
buffer). Only then are the samples read as float32; a clip shorter than its header declares
is truncated, not silently shorter.

`decode_audio` returns the samples at the network's sample rate (mono mix-down = mean of the
channels; resampling by scipy.signal.resample_poly with the rational factor from the gcd; a
duration policy that crops and pads), and the clip's quality measures (`AudioStats`), taken
on the original samples. `audio_problem` turns the measures into a quarantine reason in
words (unreadable, too long, silent, clipping) or None. `spectral_centroid` is a one-number
summary of the spectrum for monitoring.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np

#: soundfile's major formats that may be decoded (WAVEX: WAV with the extensible header).
AUDIO_FORMATS = ("WAV", "WAVEX", "FLAC", "OGG")
ALLOWED_TEXT = "WAV, FLAC or OGG"
#: the file extensions read as clips (folder ingest, `dlw predict`, the monitor's folders);
#: the format itself is recognised from the content
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga")
MAX_CHANNELS = 8
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 192_000
CLIP_LEVEL = 0.999  # |x| at or above it counts as a clipped sample
DBFS_FLOOR = -120.0  # the level of digital silence (the log of 0 has no value)
SILENCE_WINDOW_S = 0.02  # the frames of the silence share: 20 ms windows of the mono mix
_HEAD = 12

#: first bytes -> the format they announce: the refused ones, named in the reason
_REFUSED_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"FORM", 0, "AIFF"),
    (b"RF64", 0, "RF64"),
    (b"caff", 0, "CAF"),
    (b".snd", 0, "AU"),
    (b"MATLAB", 0, "MAT5"),
    (b"NIST_1A", 0, "NIST"),
    (b"ID3", 0, "MP3"),
)


class AudioDecodeError(Exception):
    """A single clip that cannot be used; `reason` goes to the quarantine."""

    def __init__(self, reason: str, *, stats: AudioStats | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stats = stats


@dataclass(frozen=True)
class AudioLimits:
    """The limits and thresholds a clip is held to."""

    max_bytes: int = 50_000_000
    max_seconds: float = 60.0
    silence_dbfs: float = -60.0  # a clip whose RMS is below it is silent
    max_clipping_share: float = 0.01  # share of samples at full scale tolerated


@dataclass(frozen=True)
class DurationPolicy:
    """What length the decoded clip gets: `fixed` crops (centre or start) or pads with zeros at
    the end to exactly `seconds`; `max` only crops clips longer than `seconds`."""

    mode: Literal["fixed", "max"]
    seconds: float
    crop: Literal["centre", "start"] = "centre"

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise ValueError(f"duration policy seconds must be > 0, got {self.seconds}")


@dataclass(frozen=True)
class AudioStats:
    """A clip's quality measures, on its original samples (all channels)."""

    format: str
    subtype: str
    sample_rate: int
    channels: int
    frames: int
    duration_s: float
    rms_dbfs: float = DBFS_FLOOR
    peak: float = 0.0
    silence_share: float = 0.0  # share of 20 ms windows of the mono mix below silence_dbfs
    clipping_share: float = 0.0  # share of samples with |x| >= CLIP_LEVEL
    error: str | None = None  # why the clip could not be read (then the levels are unset)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # float32, (n,) when mono, else (channels, n)
    sample_rate: int
    stats: AudioStats


Source = str | Path | bytes


def decode_audio(
    source: Source,
    *,
    sample_rate: int,
    mono: bool = True,
    max_bytes: int,
    max_seconds: float,
    duration_policy: DurationPolicy | None = None,
    silence_dbfs: float = -60.0,
) -> DecodedAudio:
    """Decode a WAV, FLAC or OGG clip (a path or its bytes) to float32 at `sample_rate`, or raise
    AudioDecodeError with the reason. The quality measures come with it (`.stats`)."""
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise ValueError(f"sample_rate must be in {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE}")
    raw, stats = _read_checked(
        source, max_bytes=max_bytes, max_seconds=max_seconds, silence_dbfs=silence_dbfs
    )
    signal = raw.mean(axis=1, keepdims=True) if mono else raw
    signal = resample(signal, stats.sample_rate, sample_rate)
    if duration_policy is not None:
        signal = apply_duration(signal, sample_rate, duration_policy)
    out = signal[:, 0] if mono else signal.T
    return DecodedAudio(np.ascontiguousarray(out, dtype=np.float32), sample_rate, stats)


def probe_audio(source: Source, limits: AudioLimits) -> AudioStats:
    """The quality measures of a clip; never raises for bad content: a clip that cannot be read
    gets `error` (and whatever its header told) for `audio_problem` to report."""
    try:
        _, stats = _read_checked(
            source,
            max_bytes=limits.max_bytes,
            max_seconds=limits.max_seconds,
            silence_dbfs=limits.silence_dbfs,
        )
    except AudioDecodeError as exc:
        if exc.stats is not None:
            return exc.stats
        return AudioStats("", "", 0, 0, 0, 0.0, error=exc.reason)
    return stats


def audio_problem(stats: AudioStats, limits: AudioLimits) -> str | None:
    """The quarantine reason for a clip's measures, in words, or None when it is usable."""
    if stats.error is not None:
        return stats.error
    if stats.duration_s > limits.max_seconds:
        return _too_long(stats.duration_s, limits.max_seconds)
    if stats.rms_dbfs < limits.silence_dbfs:
        return (
            f"silent clip: RMS {stats.rms_dbfs:.1f} dBFS is below the silence threshold "
            f"{limits.silence_dbfs:g} dBFS"
        )
    if stats.clipping_share > limits.max_clipping_share:
        return (
            f"clipping: {stats.clipping_share:.1%} of the samples are at full scale "
            f"(|x| >= {CLIP_LEVEL}; limit {limits.max_clipping_share:.1%})"
        )
    return None


def _too_long(seconds: float, limit: float) -> str:
    return f"too long: {seconds:,.1f} s > limit {limit:g} s (max_seconds)"


def _read_checked(
    source: Source, *, max_bytes: int, max_seconds: float, silence_dbfs: float
) -> tuple[np.ndarray, AudioStats]:
    """(frames, channels) float32 samples at the original rate, and their measures."""
    import soundfile as sf

    with _open_bytes(source, max_bytes=max_bytes) as handle:
        kind = sniff_format(handle)
        truncated = _wav_truncation(handle) if kind == "WAV" else None
        try:
            with sf.SoundFile(handle) as audio:
                header = _check_header(audio, max_seconds=max_seconds)
                if truncated is not None:
                    raise AudioDecodeError(truncated, stats=_failed(header, truncated))
                samples = audio.read(header.frames, dtype="float32", always_2d=True)
        except sf.LibsndfileError as exc:
            raise AudioDecodeError(f"unreadable: {exc.error_string}") from None
        except (RuntimeError, ValueError, OverflowError, MemoryError) as exc:
            raise AudioDecodeError(f"unreadable: {exc}") from None
    if samples.shape[0] < header.frames:
        reason = (
            f"truncated: the header declares {header.frames:,} frames, "
            f"only {samples.shape[0]:,} could be read"
        )
        raise AudioDecodeError(reason, stats=_failed(header, reason))
    if not np.isfinite(samples).all():
        raise AudioDecodeError("unreadable: samples that are not finite numbers (NaN or inf)")
    return samples, measure(samples, header, silence_dbfs=silence_dbfs)


class _open_bytes:
    """A binary handle on the clip, after the byte limit (a path is stat'ed, never read first).
    The handle carries no file name, so libsndfile can only recognise the content."""

    def __init__(self, source: Source, *, max_bytes: int) -> None:
        self.source, self.max_bytes = source, max_bytes
        self.handle: BinaryIO | None = None

    def __enter__(self) -> BinaryIO:
        if isinstance(self.source, (bytes, bytearray)):
            size = len(self.source)
        else:
            try:
                size = os.stat(self.source).st_size
            except OSError as exc:
                raise AudioDecodeError(f"unreadable: {exc.strerror or exc}") from None
        if size == 0:
            raise AudioDecodeError("empty file (0 bytes)")
        if size > self.max_bytes:
            raise AudioDecodeError(
                f"too large: {size:,} bytes > limit {self.max_bytes:,} bytes (max_bytes)"
            )
        if isinstance(self.source, (bytes, bytearray)):
            self.handle = io.BytesIO(bytes(self.source))
        else:
            try:
                self.handle = open(self.source, "rb")  # noqa: SIM115 - closed in __exit__
            except OSError as exc:
                raise AudioDecodeError(f"unreadable: {exc.strerror or exc}") from None
        return self.handle

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            self.handle.close()


def sniff_format(handle: BinaryIO) -> str:
    """WAV, FLAC or OGG from the first bytes (an ID3v2 tag before FLAC is skipped), or raise
    AudioDecodeError naming what the bytes are. Leaves the handle at the start."""
    head = handle.read(_HEAD)
    kind = _allowed_magic(head)
    if kind is None and head.startswith(b"ID3") and len(head) >= 10:
        size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7
        size |= head[9] & 0x7F
        handle.seek(10 + size + (10 if head[5] & 0x10 else 0))
        kind = "FLAC" if handle.read(4) == b"fLaC" else None
    handle.seek(0)
    if kind is not None:
        return kind
    refused = _refused_magic(head)
    if refused is not None:
        raise AudioDecodeError(f"{refused} files are not accepted (allowed: {ALLOWED_TEXT})")
    raise AudioDecodeError(
        f"not a {ALLOWED_TEXT} file: the content is not recognised (first bytes {head[:8]!r})"
    )


def _allowed_magic(head: bytes) -> str | None:
    if head[:4] in (b"RIFF", b"RIFX") and head[8:12] == b"WAVE":
        return "WAV"
    if head[:4] == b"fLaC":
        return "FLAC"
    if head[:4] == b"OggS":
        return "OGG"
    return None


def _refused_magic(head: bytes) -> str | None:
    for magic, offset, name in _REFUSED_MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return name
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "MP3"  # an MPEG audio frame sync
    return None


def _wav_truncation(handle: BinaryIO) -> str | None:
    """The reason when a RIFF WAV's data chunk declares more bytes than the file holds
    (libsndfile then reads the shorter clip without a word); None when it is whole."""
    handle.seek(0, io.SEEK_END)
    total = handle.tell()
    handle.seek(0)
    order: Literal["big", "little"] = "big" if handle.read(4) == b"RIFX" else "little"
    position = 12
    for _ in range(64):  # a WAV has a handful of chunks; more is not worth walking
        handle.seek(position)
        chunk = handle.read(8)
        if len(chunk) < 8:
            break
        size = int.from_bytes(chunk[4:8], order)
        if chunk[:4] == b"data":
            available = total - position - 8
            handle.seek(0)
            if size > available and size != 0xFFFFFFFF:
                return (
                    f"truncated: the WAV data chunk declares {size:,} bytes, "
                    f"the file holds {max(available, 0):,}"
                )
            return None
        position += 8 + size + (size & 1)
    handle.seek(0)
    return None


def _check_header(audio: Any, *, max_seconds: float) -> AudioStats:
    """The header's numbers against the limits, before a sample is read."""
    fmt, frames, rate = str(audio.format), int(audio.frames), int(audio.samplerate)
    channels = int(audio.channels)
    header = AudioStats(
        fmt, str(audio.subtype), rate, channels, frames, frames / rate if rate > 0 else 0.0
    )
    if fmt not in AUDIO_FORMATS:
        raise AudioDecodeError(f"{fmt} files are not accepted (allowed: {ALLOWED_TEXT})")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        reason = f"unsupported sample rate {rate:,} Hz ({MIN_SAMPLE_RATE:,}..{MAX_SAMPLE_RATE:,})"
        raise AudioDecodeError(reason, stats=_failed(header, reason))
    if not 1 <= channels <= MAX_CHANNELS:
        reason = f"unsupported channel count {channels} (1..{MAX_CHANNELS})"
        raise AudioDecodeError(reason, stats=_failed(header, reason))
    if frames <= 0:
        reason = "no audio frames: the header declares none (an empty or truncated clip)"
        raise AudioDecodeError(reason, stats=_failed(header, reason))
    if frames / rate > max_seconds:
        reason = _too_long(frames / rate, max_seconds)
        raise AudioDecodeError(reason, stats=_failed(header, reason))
    return header


def _failed(header: AudioStats, reason: str) -> AudioStats:
    return AudioStats(
        header.format,
        header.subtype,
        header.sample_rate,
        header.channels,
        header.frames,
        header.duration_s,
        error=reason,
    )


def measure(samples: np.ndarray, header: AudioStats, *, silence_dbfs: float) -> AudioStats:
    """Duration, levels, silence and clipping of (frames, channels) float32 samples."""
    frames = samples.shape[0]
    magnitude = np.abs(samples)
    mean_square = float(np.mean(np.square(samples, dtype=np.float64)))
    mix = samples.mean(axis=1, dtype=np.float64)
    window = max(1, round(header.sample_rate * SILENCE_WINDOW_S))
    n_windows = max(1, math.ceil(frames / window))
    padded = np.zeros(n_windows * window)
    padded[:frames] = mix
    window_rms = np.sqrt(np.mean(np.square(padded.reshape(n_windows, window)), axis=1))
    return AudioStats(
        header.format,
        header.subtype,
        header.sample_rate,
        header.channels,
        frames,
        frames / header.sample_rate,
        rms_dbfs=dbfs(math.sqrt(mean_square)),
        peak=float(magnitude.max()),
        silence_share=float(np.mean(_dbfs_array(window_rms) < silence_dbfs)),
        clipping_share=float(np.mean(magnitude >= CLIP_LEVEL)),
    )


def dbfs(level: float) -> float:
    """20 log10 of an amplitude (1.0 = full scale), floored at DBFS_FLOOR."""
    return max(DBFS_FLOOR, 20.0 * math.log10(level)) if level > 0 else DBFS_FLOOR


def _dbfs_array(levels: np.ndarray) -> np.ndarray:
    return 20.0 * np.log10(np.maximum(levels, 10 ** (DBFS_FLOOR / 20)))


def resample(signal: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """(frames, channels) float32 from `source_rate` to `target_rate` by polyphase filtering
    (up/down = the rates over their gcd)."""
    if source_rate == target_rate:
        return signal.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    common = math.gcd(source_rate, target_rate)
    up, down = target_rate // common, source_rate // common
    return resample_poly(signal, up, down, axis=0).astype(np.float32, copy=False)


def apply_duration(signal: np.ndarray, sample_rate: int, policy: DurationPolicy) -> np.ndarray:
    """(frames, channels) cropped (centre or start) and, for `fixed`, zero-padded at the end."""
    target = max(1, round(policy.seconds * sample_rate))
    frames = signal.shape[0]
    if frames > target:
        start = (frames - target) // 2 if policy.crop == "centre" else 0
        signal = signal[start : start + target]
    elif frames < target and policy.mode == "fixed":
        pad = np.zeros((target - frames, signal.shape[1]), dtype=signal.dtype)
        signal = np.concatenate([signal, pad], axis=0)
    return signal


def spectral_centroid(
    signal: np.ndarray, sample_rate: int, *, frame: int = 1024, hop: int = 512
) -> float:
    """The mean over Hann-windowed frames of the magnitude-weighted mean frequency (Hz), for
    monitoring; frames without energy are left out; 0.0 for a silent clip."""
    mono = np.asarray(signal, dtype=np.float64)
    if mono.ndim == 2:
        mono = mono.mean(axis=0) if mono.shape[0] < mono.shape[1] else mono.mean(axis=1)
    if mono.size < frame:
        mono = np.pad(mono, (0, frame - mono.size))
    starts = np.arange(0, mono.size - frame + 1, hop)
    frames = np.stack([mono[s : s + frame] for s in starts]) * np.hanning(frame)
    magnitude = np.abs(np.fft.rfft(frames, axis=1))
    freqs = np.fft.rfftfreq(frame, d=1.0 / sample_rate)
    energy = magnitude.sum(axis=1)
    voiced = energy > 1e-12
    if not voiced.any():
        return 0.0
    return float(np.mean((magnitude[voiced] @ freqs) / energy[voiced]))
