"""Exported dense models for the export, serve and predict tests of object detection and
semantic segmentation: a small seeded network of each kind, written to `models/v1/` by the
export's own pieces (to_onnx, input_spec, the output shape and target, outputs_section) and
promoted, plus real images: the NEON tree crops of deepforest 2.1.0's data (read in place)
and MNIST digit mosaics (builtin:digit-masks).

The networks are stand-ins of the registered ones (same input and output contract: one map
(N, C + 4, H/4, W/4) or (N, C, H, W), a "backbone" module for the embedding) so the export,
the parity check and the torch-free post-processing are tested at seconds' cost.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

DETECTION_CLASSES = ["Dead", "Tree"]
DETECTION_SIZE = 128
SEGMENTATION_CLASSES = ["background", *(str(d) for d in range(10))]
SEGMENTATION_SIZE = 56
TREES = "data/OSBS_029.png"
SOAP = "data/SOAP_061.png"


class TinyDetector(nn.Module):
    """CenterNet-shaped: a bias-free stride-4 backbone (a black image gives all-zero
    features, so every heatmap logit is the head's bias, -2.19: score 0.1, no box above the
    tuned 0.3), a head of C heatmaps, 2 log sizes, 2 offsets."""

    def __init__(self, classes: int, channels: int = 3) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(channels, 16, 3, stride=2, padding=1, bias=False),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False),
            nn.ReLU(),
        )
        self.head = nn.Conv2d(32, classes + 4, 3, padding=1)
        with torch.no_grad():
            self.head.bias.zero_()
            self.head.bias[:classes] = -2.19

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


class TinyUNet(nn.Module):
    """Encoder (stride 2) and a decoder back to the input size with a skip connection."""

    def __init__(self, classes: int, channels: int = 1) -> None:
        super().__init__()
        self.stem = nn.Conv2d(channels, 8, 3, padding=1)
        self.backbone = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.out = nn.Conv2d(16 + 8, classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = torch.relu(self.stem(x))
        deep = self.up(self.backbone(skip))
        return self.out(torch.cat([deep, skip], dim=1))


def detector(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = TinyDetector(len(DETECTION_CLASSES))
    with torch.no_grad():
        for conv in model.backbone:
            if isinstance(conv, nn.Conv2d):
                conv.weight.mul_(2.0)
        model.head.weight[: len(DETECTION_CLASSES)].mul_(5.0)  # tree crops: tens of boxes >= 0.3
    return model.eval()


def unet(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return TinyUNet(len(SEGMENTATION_CLASSES)).eval()


def model_json(kind: str) -> dict[str, Any]:
    """What a trained model's model.json says of it (the fields the export reads)."""
    if kind == "detection":
        return {
            "name": "tiny_detector",
            "task": "object-detection",
            "modality": "image",
            "classes": list(DETECTION_CLASSES),
            "in_channels": 3,
            "image_size": [DETECTION_SIZE, DETECTION_SIZE],
            "mean": [0.0, 0.0, 0.0],
            "std": [1.0, 1.0, 1.0],
            "target": {"max_detections": 100, "nms_iou": 0.5, "score_threshold": 0.3},
        }
    return {
        "name": "tiny_unet",
        "task": "semantic-segmentation",
        "modality": "image",
        "classes": list(SEGMENTATION_CLASSES),
        "in_channels": 1,
        "image_size": [SEGMENTATION_SIZE, SEGMENTATION_SIZE],
        "mean": [0.5],
        "std": [0.5],
        "target": {},
    }


def write_export(root: Path, kind: str, model: nn.Module | None = None) -> Path:
    """models/v1/ of `root` (model.onnx + metadata.json, as `dlw export` writes them, verdict
    forced with a reason) promoted to champion; the version folder."""
    from dlworkflow.deploy.export.step import _output_and_target, outputs_section
    from dlworkflow.fileio import atomic_write_json, sha256_file
    from dlworkflow.models.onnx_export import to_onnx
    from dlworkflow.runtime import versions as V
    from dlworkflow.runtime.bundle import FORMAT
    from dlworkflow.runtime.spec import example_input, input_spec
    from dlworkflow.tasks import task_of

    meta = model_json(kind)
    model = model if model is not None else detector() if kind == "detection" else unet()
    task = task_of(meta["task"])
    folder = V.version_folder(root, 1)
    folder.mkdir(parents=True, exist_ok=True)
    to_onnx(model, folder / V.ONNX_FILE, example=example_input(meta))
    spec, prep = input_spec(meta)
    prep["max_pixels"], prep["max_side"] = 50_000_000, 65_500
    shape, target = _output_and_target(model, meta, task)
    metadata = {
        "format": FORMAT,
        "version": 1,
        "model": meta["name"],
        "task": task.name,
        "modality": "image",
        "classes": meta["classes"],
        "input": spec,
        "output": {"name": "logits", "dtype": "float32", "shape": ["batch", *shape]},
        "target": target,
        "outputs": outputs_section(task, {**meta, "target": target}, shape),
        "preprocessing": prep,
        "verdict": "UNTESTED",
        "forced": {"reason": "dense export tests", "by": "tests", "at": "2026-01-01"},
        "files": {V.ONNX_FILE: sha256_file(folder / V.ONNX_FILE)},
    }
    atomic_write_json(folder / V.METADATA_FILE, metadata)
    V.promote(root, 1)
    return folder


def torch_outputs(model: nn.Module, task: Any, x: np.ndarray, target: dict[str, Any]) -> np.ndarray:
    """The task's outputs of the PyTorch model (training's side of the parity check)."""
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    return np.asarray(task.outputs(logits, target), dtype=np.float64)


def data_file(relative: str) -> Path:
    from dlworkflow.datasets.data_packages import find_file

    path = find_file("deepforest", relative)
    assert path is not None, f"deepforest's data is not installed ({relative}): make setup"
    return path


def png(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def tree_images() -> list[bytes]:
    """Real NEON crops: OSBS_029 (400x400), and a 300x180 crop of SOAP_061 (not square, so a
    box's x and y scale differently)."""
    from PIL import Image

    whole = data_file(TREES).read_bytes()
    with Image.open(data_file(SOAP)) as img:
        crop = np.asarray(img.convert("RGB"))[40:220, 50:350]
    return [whole, png(crop)]


def digit_mosaics(n: int = 4) -> np.ndarray:
    """The first n 56x56 mosaics of builtin:digit-masks (real MNIST digits), uint8."""
    from dlworkflow.datasets.digit_masks import _mnist, mosaics

    digits, labels = _mnist()
    return mosaics(digits[: 4 * n], labels[: 4 * n])[0][:n]
