"""Blank and saturated images from the manifest's image statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dlworkflow.explore.image_quality import image_evidence


def _manifest(dark: list[float], contrast: list[float]) -> pd.DataFrame:
    n = len(dark)
    return pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(n)],
            "label": ["a"] * n,
            "width": [28] * n,
            "height": [28] * n,
            "mode": ["L"] * n,
            "phash": np.zeros(n, dtype=np.int64),
            "brightness": [100.0] * n,
            "contrast": contrast,
            "dark": dark,
            "bright": [0.0] * n,
        }
    )


def test_dark_backgrounds_typical_of_the_class_are_not_saturated():
    rng = np.random.default_rng(0)
    dark = list(np.clip(rng.normal(0.9, 0.02, 200), 0, 1))  # like MNIST ones
    evidence = image_evidence(_manifest(dark, [60.0] * 200))
    assert evidence.saturated == [] and evidence.blank == []


def test_an_image_dark_unlike_its_class_is_saturated_and_a_flat_one_blank():
    rng = np.random.default_rng(0)
    dark = list(np.clip(rng.normal(0.05, 0.02, 100), 0, 1)) + [0.97, 1.0]
    evidence = image_evidence(_manifest(dark, [50.0] * 101 + [0.0]))
    assert [o.sample_id for o in evidence.saturated] == ["s100"]
    assert [o.sample_id for o in evidence.blank] == ["s101"]  # blank, not also saturated
