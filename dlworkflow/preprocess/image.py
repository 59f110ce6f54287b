"""Image pixels -> the network's input, exactly as training feeds it (torch-free).

    x = normalise_pixels(pixels, mean, std)   # uint8 (N, C, H, W) -> float32 (N, C, H, W)

Training computes `(uint8 -> float32) / 255 - mean) / std` in float32 (see
dlworkflow/models/predict.py); the same float32 operations here give the same numbers.
Decoding, mode normalisation and resizing are `dlworkflow.store.images` (`to_array`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def normalise_pixels(pixels: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """uint8 (N, C, H, W) -> float32 (N, C, H, W) standardised with per-channel mean/std."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 4:
        raise ValueError(f"pixels must be (N, C, H, W), got shape {pixels.shape}")
    m = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
    x = pixels.astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray((x - m) / s, dtype=np.float32)
