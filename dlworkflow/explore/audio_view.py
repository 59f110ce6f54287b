"""The audio section of the report (audio-classification): duration, sample rate, loudness
(RMS in dBFS), silence share and clipping of every clip (the manifest's columns, measured at
ingest on the original samples), a grid of log-mel spectrograms by class, near-duplicate
clips and the features of the map and the label-issue search.

Spectrograms are of the clips as the network takes them: decoded with data.audio
(store.clips.decode_clip: mono, resampled, cropped or padded) and through the front end's
numpy reference (preprocess.audio.log_mel_numpy, its default 64 mel bands).

Near duplicates: a clip's log-mel spectrogram averaged into FINGERPRINT_BANDS x
FINGERPRINT_FRAMES blocks, its mean subtracted (a gain change is not a new clip), scaled by
the std of all fingerprints; pairs whose RMS difference is at most NEAR_RMS of it
(explore.duplicates.close_vectors). On the sonic-pi clips the closest distinct clips (two
tabla strokes) are 0.039 apart; a copy re-encoded at another rate and gain is far below
NEAR_RMS.
"""

from __future__ import annotations

import base64
import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.explore.render import Raw, figure, figures, fmt, heading, para, section, table
from dlworkflow.explore.series_view import length_shortcut, shortcut_warning
from dlworkflow.explore.trust import Warning

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.explore.duplicates import Duplicates
    from dlworkflow.explore.evidence import Evidence
    from dlworkflow.explore.features import Features
    from dlworkflow.store.clips import ClipSettings

MAX_DECODED = 2_000  # clips decoded for spectrograms, duplicates and features (stratified)
N_MELS = 64  # the front end's default
FEATURE_BANDS = 16  # map / label-issue features: the mel bands averaged into this many
MAX_FRAMES = 512  # a longer spectrogram is kept as this many block means (10 s at 50 a second)
FINGERPRINT_BANDS, FINGERPRINT_FRAMES = 16, 16
NEAR_RMS = 0.02  # near duplicates: RMS difference in fingerprint stds
MOSTLY_SILENT = 0.5  # a clip with this share of silent 20 ms windows is mostly silence
SILENT_WARN = 0.1  # share of mostly-silent clips worth a warning
CROPPED_WARN = 0.25  # share of clips cropped by the fixed duration worth a warning
SHOWN_CLASSES = 12
SHOWN_CLIPS = 20  # clips listed in a table
DB_RANGE = 80.0  # dB shown below each spectrogram's maximum


@dataclass
class AudioEvidence:
    labels: np.ndarray
    durations: np.ndarray  # seconds, of the original clips
    rms_dbfs: np.ndarray
    silence: np.ndarray  # share of silent 20 ms windows
    clipping: np.ndarray  # share of samples at full scale
    sample_rates: dict[int, int]  # rate -> clips
    channels: dict[int, int]
    formats: dict[str, int]
    settings: dict[str, Any]  # data.audio (ClipSettings.as_dict)
    per_class: list[tuple[str, int, float, float, float]]  # label, n, medians: s, dBFS, silence
    examples: dict[str, list[tuple[str, float, np.ndarray]]]  # class -> (id, seconds, log-mel)
    mostly_silent: list[tuple[str, str, float]]  # (id, label, silence share)
    clipped: list[tuple[str, str, float]]  # (id, label, clipping share) above 0
    n_cropped: int  # longer than data.audio.duration (policy fixed): the network sees a part
    n_padded: int  # shorter: zero-padded
    n_upsampled: int  # recorded below data.audio.sample_rate
    n_decoded: int
    shortcut: tuple[float, float] | None = None  # (accuracy from the duration alone, majority)
    notes: list[str] = field(default_factory=list)
    spectra: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # id -> log-mel

    def summary(self) -> dict[str, Any]:
        """What the ledger records (explore's summary["audio"])."""

        def median(values: np.ndarray) -> float | None:
            finite = values[np.isfinite(values)]
            return float(np.median(finite)) if len(finite) else None

        return {
            "n_clips": len(self.durations),
            "duration_min_s": float(self.durations.min()) if len(self.durations) else None,
            "duration_median_s": median(self.durations),
            "duration_max_s": float(self.durations.max()) if len(self.durations) else None,
            "sample_rates": {str(k): v for k, v in self.sample_rates.items()},
            "rms_dbfs_median": median(self.rms_dbfs),
            "silence_share_median": median(self.silence),
            "mostly_silent": len(self.mostly_silent),
            "clipped": len(self.clipped),
            "cropped": self.n_cropped,
            "padded": self.n_padded,
            "upsampled": self.n_upsampled,
            "duration_accuracy": self.shortcut[0] if self.shortcut else None,
        }


# --- decoding and features --------------------------------------------------------------------


def log_mel(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """float32 (N_MELS, frames) log-mel spectrogram in dB (the front end's reference)."""
    from dlworkflow.preprocess.audio import log_mel_numpy

    wave = np.asarray(waveform, dtype=np.float64)
    if len(wave) < 1024:  # the front end's frame: shorter clips are zero-padded to it
        wave = np.pad(wave, (0, 1024 - len(wave)))
    spectrum = log_mel_numpy(wave, sample_rate=sample_rate, n_mels=N_MELS)[0]
    if spectrum.shape[1] > MAX_FRAMES:  # long clips (policy max): block means, memory bounded
        blocks = np.array_split(np.arange(spectrum.shape[1]), MAX_FRAMES)
        spectrum = np.stack([spectrum[:, b].mean(axis=1) for b in blocks], axis=1)
    return spectrum.astype(np.float32)


def clip_spectra(
    rows: pd.DataFrame, settings: ClipSettings, *, progress: Callable | None = None
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """sample id -> log-mel of the clip as the network takes it; id -> why it did not decode."""
    from dlworkflow.store.audio import AudioDecodeError
    from dlworkflow.store.clips import decode_clip

    spectra, failed = {}, {}
    pairs = list(zip(rows["sample_id"].astype(str), rows["path"]))
    for i, (sid, path) in enumerate(pairs):
        try:
            spectra[sid] = log_mel(decode_clip(str(path), settings), settings.sample_rate)
        except (AudioDecodeError, OSError, ValueError) as exc:
            failed[sid] = f"clip unreadable: {exc}"
        if progress is not None and ((i + 1) % 16 == 0 or i + 1 == len(pairs)):
            progress(i + 1, len(pairs))
    return spectra, failed


def pooled(spectrum: np.ndarray) -> np.ndarray:
    """(FINGERPRINT_BANDS, FINGERPRINT_FRAMES) block means of a (bands, frames) spectrogram."""
    bands = np.array_split(np.arange(spectrum.shape[0]), FINGERPRINT_BANDS)
    rows = np.stack([spectrum[b].mean(axis=0) for b in bands])  # (16, frames)
    if rows.shape[1] < FINGERPRINT_FRAMES:
        rows = np.pad(rows, ((0, 0), (0, FINGERPRINT_FRAMES - rows.shape[1])), mode="edge")
    frames = np.array_split(np.arange(rows.shape[1]), FINGERPRINT_FRAMES)
    return np.stack([rows[:, f].mean(axis=1) for f in frames], axis=1)


def fingerprints(spectra: list[np.ndarray]) -> np.ndarray:
    """float32 (N, bands * frames): pooled, each clip's mean removed, scaled by the std of
    all of them and by 1 / sqrt(size), so that a distance is an RMS difference in stds."""
    if not spectra:
        return np.zeros((0, FINGERPRINT_BANDS * FINGERPRINT_FRAMES), np.float32)
    P = np.stack([pooled(s).ravel() for s in spectra]).astype(np.float64)
    P -= P.mean(axis=1, keepdims=True)
    scale = P.std() or 1.0
    return (P / scale / np.sqrt(P.shape[1])).astype(np.float32)


def clip_features(spectra: list[np.ndarray], durations: np.ndarray | None = None) -> Features:
    """Map and label-issue features (standardised): the log-mel spectrogram's mean and std
    over time in FEATURE_BANDS bands (each the mean of N_MELS / FEATURE_BANDS mel bands), and
    the log of the original duration when given. Fewer, smoother bands suit the quick model
    on few clips: on the sonic-pi clips its 3-fold accuracy is about 52% against 40% with the
    64 mel bands' mean and std."""
    from dlworkflow.explore.features import Features, _impute_standardise

    rows = []
    for i, s in enumerate(spectra):
        bands = np.stack(
            [s[b].mean(axis=0) for b in np.array_split(np.arange(len(s)), FEATURE_BANDS)]
        )
        extra = [np.log(max(float(durations[i]), 1e-3))] if durations is not None else []
        rows.append(np.concatenate([bands.mean(axis=1), bands.std(axis=1), extra]))
    X = _impute_standardise(np.stack(rows)) if rows else np.zeros((0, 1), np.float32)
    return Features(
        X=X,
        keep=np.ones(len(spectra), dtype=bool),
        method=f"log-mel mean and std over time in {FEATURE_BANDS} bands"
        + (", and the clip's duration" if durations is not None else "")
        + " (standardised)",
    )


def sample_clip_features(sample: pd.DataFrame, ae: AudioEvidence | None) -> Features:
    """clip_features of the map's subsample: the clips decoded already, the rest now."""
    from dlworkflow.store.clips import ClipSettings

    known = dict(ae.spectra) if ae is not None else {}
    ids = sample["sample_id"].astype(str).tolist()
    missing = sample[[s not in known for s in ids]]
    if len(missing):
        settings = ClipSettings.from_dict(ae.settings if ae is not None else {})
        known.update(clip_spectra(missing, settings)[0])
    keep = np.array([s in known for s in ids], dtype=bool)
    durations = sample["duration_s"].to_numpy(dtype=np.float64, na_value=np.nan)[keep]
    features = clip_features([known[s] for s, k in zip(ids, keep) if k], durations)
    features.keep = keep
    return features


# --- evidence ---------------------------------------------------------------------------------


def audio_evidence(
    manifest: pd.DataFrame,
    spectra: dict[str, np.ndarray],
    *,
    settings: ClipSettings,
    per_class: int = 4,
    seed: int = 0,
) -> AudioEvidence:
    """Evidence from the manifest's columns (every clip) and the spectra of those decoded."""
    labels = manifest["label"].astype(str).to_numpy()
    ids = manifest["sample_id"].astype(str).to_numpy()

    def column(name: str) -> np.ndarray:
        return manifest[name].to_numpy(dtype=np.float64, na_value=np.nan)

    durations, rms, silence, clipping = (
        column(c) for c in ("duration_s", "rms_dbfs", "silence_share", "clipping_share")
    )
    rates = manifest["sample_rate"].astype(int).to_numpy()
    fixed = settings.policy == "fixed"
    ae = AudioEvidence(
        labels=labels,
        durations=durations,
        rms_dbfs=rms,
        silence=silence,
        clipping=clipping,
        sample_rates=dict(sorted(Counter(rates.tolist()).items())),
        channels=dict(sorted(Counter(manifest["channels"].astype(int).tolist()).items())),
        formats=dict(Counter(manifest["format"].astype(str).tolist()).most_common()),
        settings=settings.as_dict(),
        per_class=_per_class(labels, durations, rms, silence),
        examples=_examples(ids, labels, durations, spectra, per_class, seed),
        mostly_silent=_listed(ids, labels, silence, silence >= MOSTLY_SILENT),
        clipped=_listed(ids, labels, clipping, clipping > 0),
        n_cropped=int((durations > settings.duration + 1e-6).sum()) if fixed else 0,
        n_padded=int((durations < settings.duration - 1e-6).sum()) if fixed else 0,
        n_upsampled=int((rates < settings.sample_rate).sum()),
        n_decoded=len(spectra),
        spectra=spectra,
    )
    finite = np.isfinite(durations)
    ae.shortcut = length_shortcut(durations[finite], labels[finite], seed=seed)
    if len(spectra) < len(manifest):
        ae.notes.append(
            f"Spectrograms, near duplicates and features from {len(spectra):,} of the "
            f"{len(manifest):,} clips."
        )
    return ae


def _per_class(
    labels: np.ndarray, durations: np.ndarray, rms: np.ndarray, silence: np.ndarray
) -> list[tuple[str, int, float, float, float]]:
    out = []
    for label in sorted(set(labels.tolist()), key=_natural):
        m = labels == label
        out.append(
            (
                str(label),
                int(m.sum()),
                float(np.nanmedian(durations[m])),
                float(np.nanmedian(rms[m])),
                float(np.nanmedian(silence[m])),
            )
        )
    return out


def _examples(
    ids: np.ndarray,
    labels: np.ndarray,
    durations: np.ndarray,
    spectra: dict[str, np.ndarray],
    per_class: int,
    seed: int,
) -> dict[str, list[tuple[str, float, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    decoded = np.array([s in spectra for s in ids], dtype=bool)
    out = {}
    for label in sorted(set(labels[decoded].tolist()), key=_natural)[:SHOWN_CLASSES]:
        members = np.flatnonzero((labels == label) & decoded)
        chosen = np.sort(rng.choice(members, size=min(per_class, len(members)), replace=False))
        out[str(label)] = [(str(ids[i]), float(durations[i]), spectra[ids[i]]) for i in chosen]
    return out


def _listed(
    ids: np.ndarray, labels: np.ndarray, values: np.ndarray, mask: np.ndarray
) -> list[tuple[str, str, float]]:
    rows = np.flatnonzero(mask)
    rows = rows[np.argsort(-values[rows], kind="stable")]
    return [(str(ids[i]), str(labels[i]), float(values[i])) for i in rows]


def audio_near_duplicates(manifest: pd.DataFrame, spectra: dict[str, np.ndarray]) -> Duplicates:
    from dlworkflow.explore.duplicates import vector_duplicates

    ids = manifest["sample_id"].astype(str).to_numpy()
    rows = np.array([i for i, s in enumerate(ids) if s in spectra], dtype=np.int64)
    return vector_duplicates(
        manifest,
        rows,
        fingerprints([spectra[ids[i]] for i in rows]),
        radius=NEAR_RMS,
        method=(
            "Near duplicates (not identical): log-mel fingerprints "
            f"({FINGERPRINT_BANDS} bands x {FINGERPRINT_FRAMES} frames, gain removed) whose RMS "
            f"difference is at most {NEAR_RMS} of their std"
        ),
    )


def audio_warnings(ev: Evidence) -> list[Warning]:
    ae = ev.audio
    if ae is None:
        return []
    n = max(len(ae.durations), 1)
    out = shortcut_warning(ae.shortcut, what="clip duration", section="audio")
    if ae.mostly_silent:
        share = len(ae.mostly_silent) / n
        out.append(
            Warning(
                "medium" if share >= SILENT_WARN else "low",
                f"{_clips(len(ae.mostly_silent))} ({share:.0%}) mostly silent (at least "
                f"{MOSTLY_SILENT:.0%} of 20 ms windows below {ae.settings['silence_dbfs']:g} dBFS)",
                "trim the silence or check that the class is audible in them",
                "audio",
            )
        )
    if ae.clipped:
        out.append(
            Warning(
                "low",
                f"{_clips(len(ae.clipped))} with clipped samples (at full scale, under the "
                f"quarantine limit {ae.settings['max_clipping_share']:.1%})",
                "listen to the worst ones; re-record or lower the gain if the distortion is heard",
                "audio",
            )
        )
    if ae.n_cropped / n >= CROPPED_WARN:
        out.append(
            Warning(
                "low",
                f"{_clips(ae.n_cropped)} ({ae.n_cropped / n:.0%}) longer than "
                f"data.audio.duration ({ae.settings['duration']:g} s): the network hears only "
                f"the {ae.settings['crop']} part",
                "raise data.audio.duration, or set data.audio.policy: max, if the class is "
                "heard later in the clip",
                "audio",
            )
        )
    if ae.n_upsampled and len(ae.sample_rates) > 1:
        out.append(
            Warning(
                "low",
                f"{_clips(ae.n_upsampled)} recorded below data.audio.sample_rate "
                f"({ae.settings['sample_rate']:,} Hz) among mixed rates",
                "their upper frequencies are empty: check that the rate does not follow the "
                "class (a shortcut)",
                "audio",
            )
        )
    return out


# --- the section ------------------------------------------------------------------------------


def audio_section(ev: Evidence) -> Raw:
    ae = ev.audio
    assert ae is not None
    if not len(ae.durations):
        return section("audio", "4. Audio", para("No clips."))
    s = ae.settings
    parts = [
        para(_summary_sentence(ae)),
        _histograms(ae),
        heading("Per class (medians)"),
        table(
            ["class", "clips", "duration s", "RMS dBFS", "silence share"],
            [(k, fmt(n), fmt(d), fmt(r), f"{z:.0%}") for k, n, d, r, z in ae.per_class],
        ),
    ]
    if ae.examples:
        parts += [
            heading("Log-mel spectrograms by class (a fixed random choice)"),
            para(
                f"As the network takes them: {N_MELS} mel bands, {s['duration']:g} s at "
                f"{s['sample_rate']:,} Hz, {DB_RANGE:g} dB below each clip's maximum."
            ),
            figure(_spectra_png(ae), "log-mel spectrograms by class"),
        ]
    for rows, title, word in (
        (ae.mostly_silent, f"Mostly silent clips (>= {MOSTLY_SILENT:.0%} silent)", "silence"),
        (ae.clipped, "Clips with clipped samples", "clipping"),
    ):
        if rows:
            parts += [
                heading(f"{title}: {len(rows)}"),
                table(
                    ["clip", "class", word], [(a, b, _percent(c)) for a, b, c in rows[:SHOWN_CLIPS]]
                ),
            ]
    parts.append(Raw("".join(para(n, "note") for n in ae.notes)))
    return section("audio", "4. Audio", *parts)


def _summary_sentence(ae: AudioEvidence) -> str:
    s, d = ae.settings, ae.durations
    text = (
        f"{len(d):,} clips of {fmt(float(np.nanmin(d)))} to {fmt(float(np.nanmax(d)))} s "
        f"(median {fmt(float(np.nanmedian(d)))} s). Sample rates: "
        + ", ".join(f"{k:,} Hz ({v:,})" for k, v in ae.sample_rates.items())
        + ". Channels: "
        + ", ".join(f"{k} ({v:,})" for k, v in ae.channels.items())
        + ". Formats: "
        + ", ".join(f"{k} ({v:,})" for k, v in ae.formats.items())
        + f". The network takes {s['duration']:g} s at {s['sample_rate']:,} Hz, mono "
        f"(data.audio.policy {s['policy']}): {ae.n_cropped:,} clips cropped, "
        f"{ae.n_padded:,} zero-padded."
    )
    if ae.shortcut is not None:
        text += (
            f" The duration alone tells the class {ae.shortcut[0]:.0%} of the time "
            f"(cross-validated depth-3 tree; the largest class is {ae.shortcut[1]:.0%})."
        )
    return text


def _histograms(ae: AudioEvidence) -> Raw:
    from dlworkflow.explore.distributions import distribution

    s = ae.settings
    silence = f"share of 20 ms windows below {s['silence_dbfs']:g} dBFS"
    shown = (
        distribution(
            ae.durations,
            title="duration",
            xlabel="seconds",
            noun="clips",
            unit=" s",
            mark=s["duration"],
        )
        + distribution(ae.rms_dbfs, title="loudness", xlabel="RMS dBFS", noun="clips")
        + distribution(
            ae.silence, title="silence share", xlabel=silence, noun="clips", mark=MOSTLY_SILENT
        )
        + distribution(
            ae.clipping, title="clipping", xlabel="share of samples at full scale", noun="clips"
        )
    )
    return Raw("".join(shown.text) + figures(*shown.figures))


def _spectra_png(ae: AudioEvidence) -> str:
    from dlworkflow.plots import new_figure, png_bytes

    classes = list(ae.examples)
    cols = max(len(v) for v in ae.examples.values())
    fig = new_figure(2.2 * cols, 1.45 * len(classes) + 0.3, dpi=60)
    axes = fig.subplots(len(classes), cols, squeeze=False)
    for r, label in enumerate(classes):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(ae.examples[label]):
                ax.axis("off")
                continue
            sid, seconds, spec = ae.examples[label][c]
            top = float(spec.max())
            ax.imshow(
                spec, origin="lower", aspect="auto", cmap="magma", vmin=top - DB_RANGE, vmax=top
            )
            ax.set_title(f"{label[:12]}: {_short(sid)} ({seconds:.2g} s)", fontsize=7)
    return "data:image/png;base64," + base64.b64encode(png_bytes(fig)).decode("ascii")


def spectrogram_thumb(spectrum: np.ndarray, *, width: int = 160, height: int = 56) -> str:
    """A small PNG data URI of a log-mel spectrogram (low frequencies at the bottom)."""
    from PIL import Image

    top = float(spectrum.max())
    scaled = np.clip((spectrum - (top - DB_RANGE)) / DB_RANGE, 0.0, 1.0)
    image = Image.fromarray((np.flipud(scaled) * 255).astype(np.uint8), mode="L")
    image = image.resize((width, height))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def tile_drawer(ae: AudioEvidence) -> Callable[[str, Any], str | None]:
    """(sample id, manifest row) -> the clip's spectrogram thumbnail (decoded if not kept)."""
    from dlworkflow.store.clips import ClipSettings

    settings = ClipSettings.from_dict(ae.settings)

    def drawn(sample_id: str, row: Any) -> str | None:
        spectrum = ae.spectra.get(sample_id)
        if spectrum is None:
            import pandas as pd

            found = clip_spectra(pd.DataFrame([row]), settings)[0]
            spectrum = next(iter(found.values()), None)
        return spectrogram_thumb(spectrum) if spectrum is not None else None

    return drawn


def _clips(n: int) -> str:
    return f"{n} clip" if n == 1 else f"{n} clips"


def _percent(share: float) -> str:
    return f"{100 * share:.2g}%"


def _short(sample_id: str, limit: int = 12) -> str:
    return sample_id if len(sample_id) <= limit else "…" + sample_id[-limit + 1 :]


def _natural(text: str) -> tuple[int, Any]:
    return (0, int(text)) if text.isdigit() else (1, text)
