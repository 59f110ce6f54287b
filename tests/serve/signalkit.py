"""Series and audio models exported by hand into a project-less root, for the export and serve
tests of sequence and audio classification (no ingest or training needed): a small network
built directly, its ONNX file written by onnx_export.to_onnx (the export step's own call),
and a metadata.json the runtime bundle and the server read. Real data: GunPoint series
(datasets.ucr) and sonic-pi clips (datasets.sonic_pi)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

GUNPOINT_CLASSES = ["1", "2"]


@functools.lru_cache(maxsize=1)
def gunpoint() -> tuple[list[np.ndarray], list[str]]:
    """GunPoint's test series (float32 (1, 150) each) and labels."""
    from dlworkflow.datasets.ucr import load_ucr

    _, test = load_ucr("GunPoint")
    return [np.asarray(s, dtype=np.float32) for s in test.series], list(test.labels or [])


@functools.lru_cache(maxsize=1)
def sonic_clips(n: int = 6) -> list[tuple[Path, str]]:
    """`n` sonic-pi clips of different classes (path, class)."""
    from dlworkflow.datasets.sonic_pi import sonic_pi_clips

    seen: dict[str, Path] = {}
    for path, label in sonic_pi_clips():
        seen.setdefault(label, path)
    return [(path, label) for label, path in list(seen.items())[:n]]


def series_model(channels: int = 1, num_classes: int = 2, seed: int = 0) -> Any:
    """A small resnet1d with the per-channel normalisation of GunPoint (channel 0 repeated)."""
    import torch

    from dlworkflow.models.series_nets import channel_stats, resnet1d

    torch.manual_seed(seed)
    model = resnet1d(channels=channels, num_classes=num_classes, widths=(8, 16, 16))
    series = [np.repeat(s, channels, axis=0) for s in gunpoint()[0][:20]]
    model.set_normalization(*channel_stats(series))
    return model.eval()


def audio_model(num_classes: int = 3, seed: int = 0) -> Any:
    import torch

    from dlworkflow.models.audio_nets import audio_cnn

    torch.manual_seed(seed)
    return audio_cnn(num_classes=num_classes, channels=(8, 16)).eval()


def export_signal_model(
    root: Path,
    model: Any,
    *,
    modality: str,
    classes: list[str],
    preprocessing: dict[str, Any] | None = None,
    version: int = 1,
) -> Path:
    """models/v<version>/ (model.onnx + metadata.json, verdict PASS) under `root`, promoted
    to champion; returns the folder."""
    from dlworkflow.fileio import atomic_write_json, sha256_file
    from dlworkflow.models.onnx_export import to_onnx
    from dlworkflow.runtime import versions as V
    from dlworkflow.runtime.spec import example_input, input_spec

    task = "sequence-classification" if modality == "sequence" else "audio-classification"
    prep = {**dict(model.preprocessing), **(preprocessing or {}), "modality": modality}
    meta = {"modality": modality, "preprocessing": prep, "in_channels": prep.get("channels")}
    spec, prep = input_spec(meta)
    folder = V.version_folder(root, version)
    folder.mkdir(parents=True)
    to_onnx(model, folder / V.ONNX_FILE, example=example_input({**meta, "preprocessing": prep}))
    metadata = {
        "format": 1,
        "version": version,
        "model": "resnet1d" if modality == "sequence" else "audio_cnn",
        "task": task,
        "modality": modality,
        "classes": classes,
        "input": spec,
        "output": {"name": "logits", "dtype": "float32", "shape": ["batch", len(classes)]},
        "target": {},
        "preprocessing": prep,
        "verdict": "PASS",
        "files": {V.ONNX_FILE: sha256_file(folder / V.ONNX_FILE)},
    }
    atomic_write_json(folder / V.METADATA_FILE, metadata)
    V.promote(root, version)
    return folder


def torch_probabilities(model: Any, x: np.ndarray) -> np.ndarray:
    """The softmax of the PyTorch model's logits on a prepared batch."""
    import torch

    with torch.no_grad():
        return torch.softmax(model(torch.from_numpy(x)), dim=1).numpy()


def runs_without_torch(folder: Path, prepare: str) -> str:
    """Run, in a fresh interpreter, load_bundle(folder) and `prepare` (an expression of
    `bundle` giving the model's input), then predictions; return its output, which ends with
    "torch imported: False" when the runtime path never imported torch."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from dlworkflow.runtime.bundle import load_bundle\n"
        f"bundle = load_bundle({str(folder)!r}, threads=1)\n"
        f"x = {prepare}\n"
        "print(bundle.predictions(x)[0]['label'])\n"
        "print('torch imported:', 'torch' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
