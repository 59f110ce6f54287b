"""What an exported model takes, from a trained model's model.json (torch-free):

    spec, prep = input_spec(meta)     # metadata.json "input" and "preprocessing"
    x = example_input(meta, n=1)      # zeros of the model's input format (dtype and shape)

Images: float32 [batch, C, H, W] normalised pixels; text: int64 [batch, max_len] token ids
(padded to exactly max_len: the exported graph has a fixed token dimension); tables: float32
[batch, F] encoded features.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


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
    width = len(prep["numeric"]) + sum(len(c) + 1 for c in prep["categories"].values())
    return {"name": "input", "dtype": "float32", "shape": ["batch", width]}, prep


def example_input(meta: Mapping[str, Any], n: int = 2) -> np.ndarray:
    """Zeros of the model's input format (shape and dtype), n rows."""
    spec, _ = input_spec(meta)
    return np.zeros([n, *spec["shape"][1:]], dtype=np.dtype(spec["dtype"]))
