"""What an exported model takes, from a trained model's model.json (torch-free):

    spec, prep = input_spec(meta)     # metadata.json "input" and "preprocessing"
    x = example_input(meta, n=1)      # zeros of the model's input format (dtype and shape)

Images: float32 [batch, C, H, W] normalised pixels; text: int64 [batch, max_len] token ids
(padded to exactly max_len: the exported graph has a fixed token dimension); tables: float32
[batch, F] encoded features; series: float32 [batch, C, "length"] raw values, NaN after each
series' end (store.series.nan_padded), the length dynamic; audio: float32 [batch, "samples"]
mono waveforms at the model's sample rate (store.clips.decode_clip with its ClipSettings,
which travel in "preprocessing"), the samples dynamic. A dimension named by a string is
dynamic; `example_input` gives it `EXAMPLE_SIZES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

#: The size a dynamic (named) dimension has in an example input.
EXAMPLE_SIZES = {"length": 32}


def input_spec(meta: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metadata "input", "preprocessing") of a trained model's model.json."""
    modality = meta.get("modality", "image")
    prep = dict(meta.get("preprocessing") or {})
    if modality == "image":
        channels, size = int(meta["in_channels"]), [int(s) for s in meta["image_size"]]
        return (
            {"name": "input", "dtype": "float32", "shape": ["batch", channels, *size]},
            {
                "modality": "image",
                "channels": channels,
                "size": size,
                "mean": list(meta["mean"]),
                "std": list(meta["std"]),
                "resize": "bilinear",
                "scale": "x / 255, then (x - mean) / std",
            },
        )
    if modality == "text":
        return (
            {"name": "input", "dtype": "int64", "shape": ["batch", int(prep["max_len"])]},
            {
                "modality": "text",
                "tokenizer": prep["tokenizer"],
                "max_len": int(prep["max_len"]),
                "pad_id": 0,
                "pad_to": int(prep["max_len"]),
            },
        )
    if modality == "sequence":
        channels = int(prep.get("channels") or meta.get("in_channels") or 1)
        return (
            {"name": "input", "dtype": "float32", "shape": ["batch", channels, "length"]},
            {
                **prep,
                "modality": "sequence",
                "channels": channels,
                "padding": "NaN after each series' end (the graph reads the lengths from it)",
            },
        )
    if modality == "audio":
        return (
            {"name": "input", "dtype": "float32", "shape": ["batch", "samples"]},
            audio_preprocessing(prep),
        )
    width = len(prep["numeric"]) + sum(len(c) + 1 for c in prep["categories"].values())
    return {"name": "input", "dtype": "float32", "shape": ["batch", width]}, prep


def audio_preprocessing(prep: Mapping[str, Any]) -> dict[str, Any]:
    """An audio model's preprocessing with every ClipSettings field (the model's own values,
    store.clips' defaults for the ones it lacks) and "modality" "audio"."""
    from dlworkflow.store.clips import ClipSettings

    return {**prep, **ClipSettings.from_dict(prep).as_dict(), "modality": "audio"}


def example_input(meta: Mapping[str, Any], n: int = 2) -> np.ndarray:
    """Zeros of the model's input format (shape and dtype), n rows; a dynamic dimension
    takes EXAMPLE_SIZES (audio samples: one clip of the model's duration)."""
    spec, prep = input_spec(meta)
    shape = [n, *(_example_size(d, prep) for d in spec["shape"][1:])]
    return np.zeros(shape, dtype=np.dtype(spec["dtype"]))


def _example_size(dim: Any, prep: Mapping[str, Any]) -> int:
    if isinstance(dim, int):
        return dim
    if dim == "samples":
        from dlworkflow.store.clips import ClipSettings

        return max(ClipSettings.from_dict(prep).samples, int(prep.get("min_samples") or 1) + 1)
    return EXAMPLE_SIZES.get(str(dim), 32)
