"""Audio classifiers that take raw waveforms: the log-mel front end is part of the network, so
an exported ONNX graph takes float32 samples (N, S) at the front end's sample rate, for any N
and any S >= `front.min_samples`.

    model = audio_cnn(num_classes=10)                       # small CNN on log-mel
    model = audio_efficientnet_lite0(num_classes=10)        # ImageNet EfficientNet-Lite0
    logits = model(waveforms)                               # (N, S) -> (N, num_classes)

Both are `Classifier`s (models.base): `features(waveform)` -> (N, F), `head` a linear layer,
`param_groups()` {"backbone": everything before the head, "head": the head}, `reset_head`.
The path of a waveform:

  front    `LogMel` (preprocess.audio): (N, S) -> (N, 1, n_mels, 1 + S // hop_length) dB, no
           trainable parameters (its buffers are rebuilt from its config, never saved).
  augment  an optional module on the spectrogram applied in training mode only, e.g.
           train.augment_audio.SpecAugment (passed in: models sit below train and never
           import it); it is skipped in eval mode, so it leaves no trace in an export.
  network  one of the two below, ending in a MEAN over frequency and time (not an adaptive
           pooling layer, which exports with a fixed size): any clip length works.

`AudioCNN` (audio_cnn): BatchNorm2d(1) on the dB values (the "fixed statistics" of the
training set, learnt as running statistics: the front end does not normalise), then 4 blocks
of conv3x3-BN-ReLU + 2x2 max-pool (ceil mode, so a spectrogram of a few frames still has one
row and column left), mean over frequency and time, dropout, linear head.

`AudioEfficientNetLite0` (audio_efficientnet_lite0): EfficientNet-Lite0 with its ImageNet
weights (models.efficientnet_lite) on the spectrogram treated as a grey image. Choices:
  - standardised PER CLIP (mean 0, standard deviation 1 over the clip's whole spectrogram):
    parameter-free, so a frozen backbone sees the same input in training and serving, and
    a clip's loudness does not shift the backbone's input (LogMel keeps absolute dB);
    then scaled by `input_scale` (0.5: most values land in the backbone's -1..1 input range,
    (pixel - 127) / 128) and replicated to the 3 RGB channels.
  - resized by a fixed FACTOR `scale` along both axes (bilinear, not a fixed output size): the
    time axis keeps its meaning (frames per second) for every clip length, and the 64 mel
    bands become 64 * scale rows (the backbone reduces by 32; at scale 1 a 1 s clip would be
    a 2 x 2 map). Upsampling only, so no antialiasing is needed (the export has no
    antialiased resize for a dynamic size).
  - the backbone's own global mean pool; dropout; a new linear head.
  - SAME padding that traces: the backbone's SameConv2d computes its padding from each
    feature map's size in Python, which a traced export with a dynamic size gets wrong (the
    graph crops instead of padding at another length). The spectrogram is padded at the end
    of both axes (with each clip's floor, by tensor operations) to multiples of 32, so every
    stride-2 convolution sees even sizes and SAME padding is the constant k - s, which
    `static_padding` puts in every convolution (the same numbers on such inputs). The export
    computes the network at every length (tests: two lengths against torch).

Measured on the sonic-pi clips (datasets.sonic_pi: 150 clips, 10 classes, 1 s at 16 kHz,
seeded stratified 70/30 split, 44 test clips, majority class share 0.18; CPU):
  audio_cnn, AdamW lr 3e-3, 10 epochs, SpecAugment            test accuracy 0.50-0.57
  audio_efficientnet_lite0 frozen backbone, logistic head      0.52 (scale 2), 0.61 (3.5)
  audio_efficientnet_lite0 fine-tuned (backbone lr 3e-4, head 3e-3, batch 16):
      scale 2, 8 epochs 0.48-0.50; scale 3.5, 4 epochs 0.41 (106 clips are few to fine-tune)
Scale 3.5 (224 mel rows, Lite0's training resolution) costs several times the compute of
scale 2, the default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dlworkflow.models.base import Classifier
from dlworkflow.models.efficientnet_lite import (
    NUM_FEATURES,
    EfficientNetLite0,
    pretrained_backbone,
    static_padding,
)
from dlworkflow.preprocess.audio import LogMel

BACKBONE_STRIDE = 32  # EfficientNet-Lite0's total downsampling
STD_EPS = 1e-5  # a silent clip (constant spectrogram) is standardised to zeros


class AudioClassifier(Classifier):
    """Raw waveforms (N, S) -> front end -> [augment, training only] -> `embed` -> head."""

    def __init__(self, front: LogMel, augment: nn.Module | None = None) -> None:
        super().__init__()
        self.front = front
        self.augment = augment
        self.preprocessing = {
            "input": "waveform",
            "sample_rate": front.sample_rate,
            "min_samples": front.min_samples,
            "front_end": front.config(),
        }

    def spectrogram(self, waveform: torch.Tensor) -> torch.Tensor:
        """(N, S) -> (N, 1, n_mels, frames), augmented in training mode."""
        spec = self.front(waveform)
        if self.training and self.augment is not None:
            spec = self.augment(spec)
        return spec

    def embed(self, spec: torch.Tensor) -> torch.Tensor:
        """(N, 1, n_mels, frames) -> (N, F)."""
        raise NotImplementedError

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.spectrogram(x))


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2, ceil_mode=True),
    )


class AudioCNN(AudioClassifier):
    """BatchNorm on dB -> conv blocks -> mean over frequency and time -> dropout -> head."""

    def __init__(
        self,
        *,
        front: LogMel,
        num_classes: int,
        channels: Sequence[int] = (32, 64, 128, 256),
        dropout: float = 0.3,
        augment: nn.Module | None = None,
    ) -> None:
        super().__init__(front, augment)
        widths = [1, *channels]
        self.input_norm = nn.BatchNorm2d(1)
        self.body = nn.Sequential(
            *(_conv_block(widths[i], widths[i + 1]) for i in range(len(channels)))
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(widths[-1], num_classes)

    def embed(self, spec: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.body(self.input_norm(spec)).mean(dim=(2, 3)))


def standardise_per_clip(spec: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> each clip with mean 0 and standard deviation 1 over (C, H, W)."""
    mean = spec.mean(dim=(1, 2, 3), keepdim=True)
    centred = spec - mean
    std = centred.square().mean(dim=(1, 2, 3), keepdim=True).sqrt()
    return centred / (std + STD_EPS)


def pad_to_multiple(spec: torch.Tensor, multiple: int, dim: int) -> torch.Tensor:
    """(N, C, H, T) with its size along `dim` (2 or 3) raised to the next multiple of
    `multiple`: the new rows or frames at the end take each clip's minimum (its floor).
    Written with tensor operations only (a gather with indices clamped to the last position,
    then a mask), so a traced export keeps the size dynamic."""
    if multiple <= 1:
        return spec
    size = torch._shape_as_tensor(spec)[dim]
    padded = torch.div(size + multiple - 1, multiple, rounding_mode="floor") * multiple
    # a 0-d tensor as the end (not a Python int) keeps the length dynamic in a trace
    position = torch.arange(padded, device=spec.device)  # type: ignore[call-overload]
    out = spec.index_select(dim, torch.minimum(position, size - 1))
    shape = [1, 1, 1, 1]
    shape[dim] = -1
    inside = (position < size).view(shape)
    return torch.where(inside, out, spec.amin(dim=(1, 2, 3), keepdim=True))


class AudioEfficientNetLite0(AudioClassifier):
    """Per-clip standardised log-mel -> x scale (bilinear) -> RGB -> EfficientNet-Lite0 ->
    dropout -> head (module doc)."""

    def __init__(
        self,
        *,
        front: LogMel,
        num_classes: int,
        scale: float = 2.0,
        input_scale: float = 0.5,
        dropout: float = 0.2,
        drop_connect_rate: float = 0.2,
        pretrained: bool = True,
        augment: nn.Module | None = None,
    ) -> None:
        super().__init__(front, augment)
        self.scale, self.input_scale = float(scale), float(input_scale)
        self.backbone = static_padding(
            pretrained_backbone(drop_connect_rate=drop_connect_rate)
            if pretrained
            else EfficientNetLite0(drop_connect_rate=drop_connect_rate)
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(NUM_FEATURES, num_classes)

    def image(self, spec: torch.Tensor) -> torch.Tensor:
        """(N, 1, n_mels, T) dB -> (N, 3, n_mels * scale, T' * scale): the backbone's input."""
        x = standardise_per_clip(spec) * self.input_scale
        if self.scale != 1.0:
            x = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        x = pad_to_multiple(pad_to_multiple(x, BACKBONE_STRIDE, 2), BACKBONE_STRIDE, 3)
        return x.expand(-1, 3, -1, -1)

    def embed(self, spec: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.backbone(self.image(spec)))


def _front(front: LogMel | dict[str, Any] | None, sample_rate: int, n_mels: int) -> LogMel:
    if isinstance(front, LogMel):
        return front
    if isinstance(front, dict):
        return LogMel(**front)
    return LogMel(sample_rate=sample_rate, n_mels=n_mels)


def audio_cnn(
    *,
    num_classes: int,
    sample_rate: int = 16000,
    n_mels: int = 64,
    front: LogMel | dict[str, Any] | None = None,
    channels: Sequence[int] = (32, 64, 128, 256),
    dropout: float = 0.3,
    augment: nn.Module | None = None,
) -> AudioCNN:
    """The small CNN on log-mel (module doc). `front`: a LogMel or its config() (else
    LogMel(sample_rate, n_mels) with its defaults)."""
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if not channels or min(channels) < 1:
        raise ValueError(f"channels must be positive widths, got {list(channels)}")
    return AudioCNN(
        front=_front(front, sample_rate, n_mels),
        num_classes=num_classes,
        channels=tuple(int(c) for c in channels),
        dropout=float(dropout),
        augment=augment,
    )


def audio_efficientnet_lite0(
    *,
    num_classes: int,
    sample_rate: int = 16000,
    n_mels: int = 64,
    front: LogMel | dict[str, Any] | None = None,
    scale: float = 2.0,
    input_scale: float = 0.5,
    dropout: float = 0.2,
    drop_connect_rate: float = 0.2,
    pretrained: bool = True,
    augment: nn.Module | None = None,
) -> AudioEfficientNetLite0:
    """EfficientNet-Lite0 (ImageNet weights unless pretrained=False) on the log-mel
    spectrogram (module doc). Raises BackboneUnavailableError without the weights package."""
    if not 1.0 <= scale <= 8.0:
        raise ValueError(f"scale must be between 1 and 8 (an upsampling factor), got {scale}")
    if not input_scale > 0:
        raise ValueError(f"input_scale must be positive, got {input_scale}")
    if not 0 <= dropout < 1 or not 0 <= drop_connect_rate < 1:
        raise ValueError("dropout and drop_connect_rate must be in [0, 1)")
    return AudioEfficientNetLite0(
        front=_front(front, sample_rate, n_mels),
        num_classes=num_classes,
        scale=float(scale),
        input_scale=float(input_scale),
        dropout=float(dropout),
        drop_connect_rate=float(drop_connect_rate),
        pretrained=bool(pretrained),
        augment=augment,
    )
