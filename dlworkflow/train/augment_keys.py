"""Which `augment:` options apply to which kind of data.

Each option of the config's Augment section belongs to one modality's augmentation (images:
train/augment.py with kornia; series: train/augment_series.py; audio: train/augment_audio.py)
except mixup, which blends any two inputs of one shape and their one-hot classes. An option
of another modality is not applied; the train step says so in its transfer note, as it does
for every option on text and tabular data (which have no augmentation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlworkflow.config import Augment

SHARED_KEYS = ("mixup",)
IMAGE_KEYS = (
    "flip",
    "rotation",
    "resized_crop",
    "translate",
    "color_jitter",
    "erasing",
    "cutmix",
    "mosaic",
    *SHARED_KEYS,
)
SERIES_KEYS = ("jitter", "scaling", "magnitude_warp", "time_warp", "window_slice", *SHARED_KEYS)
AUDIO_KEYS = ("gain_db", "time_shift", "noise_snr_db", "freq_mask", "time_mask", *SHARED_KEYS)
BY_MODALITY = {"image": IMAGE_KEYS, "sequence": SERIES_KEYS, "audio": AUDIO_KEYS}


def keys_for(modality: str) -> tuple[str, ...]:
    """The options that apply to `modality` (none for text and tables)."""
    return BY_MODALITY.get(modality, ())


def switched_on(cfg: Augment) -> list[str]:
    """The options set above 0, in config order."""
    return [name for name, value in cfg.model_dump().items() if value]


def applied(cfg: Augment, modality: str) -> list[str]:
    """The switched-on options that apply to `modality`."""
    keys = keys_for(modality)
    return [name for name in switched_on(cfg) if name in keys]


def ignored(cfg: Augment, modality: str) -> list[str]:
    """The switched-on options of other kinds of data (not applied to `modality`)."""
    keys = keys_for(modality)
    return [name for name in switched_on(cfg) if name not in keys]
