"""Series classifiers trained from scratch: a 1D ResNet, a BiLSTM and a Transformer encoder.

Every network takes a batch of series `x` float32 (N, C, T), zero-padded after each series'
real end, and `lengths` int64 (N,), the real length of each series (1 <= length <= T).
Without `lengths`, NaN marks the padding (store.series.nan_padded: NaN after each series'
end, the one-tensor form training, `dlw test`, ONNX and the server use): the lengths are
read from it and the NaN set to zero. Padding never changes a result: the pooled embedding reads the
real time steps only, and each layer sees exactly what it would see without the padding, so
a series gives the same logits however much padding its batch adds (to float rounding).

    x, lengths = pad_series([s1, s2, s3])          # list of (C, T_i) arrays -> tensors
    model = resnet1d(channels=3, num_classes=4)    # or series_bilstm / series_transformer
    model.set_normalization(*channel_stats(train_series))
    logits = model(x, lengths)                     # == model.head(model.features(x, lengths))
    series_to_onnx(model, "model.onnx")            # input "input": NaN after each end

The Classifier contract holds with one addition: `forward` and `features` take `lengths` as a
second, optional argument (the image contract's one tensor is the case lengths=None). `head`,
`reset_head`, `param_groups`, `num_features` and `num_classes` are the base class's.

Each model stores a per-channel normalisation (`input_mean`, `input_std` buffers; 0 and 1
until `set_normalization`), applied inside the model so the ONNX file takes raw values.

- `resnet1d`: Wang, Yan & Oates (2017), "Time series classification from scratch with deep
  neural networks: a strong baseline": three residual blocks, each three convolutions of
  kernel 8, 5 and 3 ("same" padding) with batch norm and ReLU, 64, 128 and 128 channels; the
  shortcut is a 1x1 convolution + batch norm where the width changes, batch norm where not;
  then global average pooling over the real time steps. Activations past a series' end are
  set to zero after every layer (what "same" zero padding puts there in an unpadded series),
  and batch norm's training statistics count the real time steps only (`MaskedBatchNorm1d`).
- `series_bilstm`: bidirectional LSTM layers; the backward direction runs over each series
  reversed within its own length (a gather, which ONNX expresses with a dynamic length), so
  padding never enters either direction's state at a real step; mean and max of the outputs
  over the real steps.
- `series_transformer`: linear projection of the channels, sinusoidal positions (any
  length), pre-norm Transformer encoder with a key padding mask, final LayerNorm, mean over
  the real steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlworkflow.errors import DlwError
from dlworkflow.models.base import Classifier


class SeriesInputError(DlwError):
    """A batch of series that is not (N, C, T) float with one length 1..T per series."""


# --------------------------------------------------------------------------- batches


def pad_series(
    series: Sequence[np.ndarray], length: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, lengths): the (C, T_i) arrays zero-padded on the right to `length` (default: the
    longest) as float32 (N, C, T), and their lengths int64 (N,)."""
    if not len(series):
        raise SeriesInputError(
            "pad_series needs at least one series.",
            expected="a list of (channels, length) arrays",
            received="an empty list",
            fix="pass the series of at least one case",
        )
    arrays = [np.asarray(s, dtype=np.float32) for s in series]
    arrays = [a[None, :] if a.ndim == 1 else a for a in arrays]
    channels = {a.shape[0] for a in arrays}
    if any(a.ndim != 2 for a in arrays) or len(channels) != 1:
        raise SeriesInputError(
            "The series of one batch must be 2-D arrays with one number of channels.",
            expected="(channels, length) arrays with the same channels",
            received=f"shapes {sorted({a.shape for a in arrays})[:4]}",
            fix="give every case the same channels",
        )
    lengths = np.array([a.shape[1] for a in arrays], dtype=np.int64)
    total = int(lengths.max()) if length is None else int(length)
    if lengths.min() < 1 or lengths.max() > total:
        raise SeriesInputError(
            "Each series must hold 1 to `length` time steps.",
            expected=f"lengths 1 to {total}",
            received=f"lengths {int(lengths.min())} to {int(lengths.max())}",
            fix="drop empty series, or pad to a larger length",
        )
    out = np.zeros((len(arrays), arrays[0].shape[0], total), dtype=np.float32)
    for i, a in enumerate(arrays):
        out[i, :, : a.shape[1]] = a
    return torch.from_numpy(out), torch.from_numpy(lengths)


def channel_stats(series: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over every real value of the (C, T_i) series
    (float64 sums); a constant channel gets std 1."""
    arrays = [np.asarray(s, dtype=np.float64) for s in series]
    arrays = [a[None, :] if a.ndim == 1 else a for a in arrays]
    values = np.concatenate(arrays, axis=1)
    if not np.isfinite(values).all():
        raise SeriesInputError(
            "The series hold missing or infinite values.",
            expected="finite values",
            received=f"{int((~np.isfinite(values)).sum())} non-finite values",
            fix="fill missing values first (interpolate, or carry the last value forward)",
        )
    mean = values.mean(axis=1)
    std = values.std(axis=1)
    std = np.where(std > 1e-8 * np.maximum(1.0, np.abs(mean)), std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


def length_mask(lengths: torch.Tensor, total: int) -> torch.Tensor:
    """(N, T) bool: True at each series' real time steps."""
    steps = torch.arange(total, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def _checking() -> bool:
    """Input checks run eagerly only: not while tracing, exporting or compiling (a check
    reads a tensor's value on the host, which would break a torch.compile graph)."""
    return not (
        torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()
    )


# --------------------------------------------------------------------------- base


class SeriesClassifier(Classifier):
    """A Classifier of (N, C, T) series with real lengths: `features(x, lengths)`."""

    input_mean: torch.Tensor
    input_std: torch.Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.register_buffer("input_mean", torch.zeros(channels))
        self.register_buffer("input_std", torch.ones(channels))
        self.preprocessing = {"modality": "sequence", "channels": channels}

    def set_normalization(self, mean: Any, std: Any) -> None:
        """Per-channel (C,) mean and std the model subtracts and divides by (raw values in)."""
        m = torch.as_tensor(np.asarray(mean, dtype=np.float32)).reshape(-1)
        s = torch.as_tensor(np.asarray(std, dtype=np.float32)).reshape(-1)
        if m.shape != (self.channels,) or s.shape != (self.channels,) or not (s > 0).all():
            raise ValueError(f"mean and std must be {self.channels} values, std > 0")
        self.input_mean.copy_(m.to(self.input_mean.device))
        self.input_std.copy_(s.to(self.input_std.device))

    def _prepare(
        self, x: torch.Tensor, lengths: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(normalised x with zeros past each end, mask (N, T) bool)."""
        if _checking():
            self._check(x, lengths)
        if lengths is None:  # NaN marks the padding after each series' end (store.series)
            missing = torch.isnan(x)
            lengths = (~missing.all(dim=1)).sum(dim=1)
            x = torch.where(missing, torch.zeros_like(x), x)
        mask = length_mask(lengths.to(x.device), x.shape[2])
        mean = self.input_mean.view(1, -1, 1)
        std = self.input_std.view(1, -1, 1)
        x = (x - mean) / std * mask.unsqueeze(1).to(x.dtype)
        return x, mask

    def _check(self, x: torch.Tensor, lengths: torch.Tensor | None) -> None:
        if x.ndim != 3 or x.shape[1] != self.channels or not x.is_floating_point():
            raise SeriesInputError(
                "A series model takes a float batch (N, channels, length).",
                expected=f"(N, {self.channels}, T) float",
                received=f"{tuple(x.shape)} {x.dtype}",
                fix="stack the series with pad_series (zeros and lengths) or "
                "store.series.nan_padded (NaN after each end)",
            )
        if lengths is None:
            if x.shape[0] and bool(torch.isnan(x).all(dim=1).all(dim=1).any()):
                raise SeriesInputError(
                    "A series of a NaN-padded batch holds no values.",
                    expected="at least one real time step per series",
                    received="a series that is NaN throughout",
                    fix="drop empty series",
                )
            return
        if lengths.shape != (x.shape[0],) or lengths.is_floating_point():
            raise SeriesInputError(
                "lengths must hold one integer length per series.",
                expected=f"int64 ({x.shape[0]},)",
                received=f"{lengths.dtype} {tuple(lengths.shape)}",
                fix="pass the lengths pad_series returns",
            )
        if x.shape[0] and (int(lengths.min()) < 1 or int(lengths.max()) > x.shape[2]):
            raise SeriesInputError(
                "Each length must lie between 1 and the padded length.",
                expected=f"1 to {x.shape[2]}",
                received=f"{int(lengths.min())} to {int(lengths.max())}",
                fix="drop empty series; pad to at least the longest",
            )

    def features(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(N, C, T) float and (N,) lengths -> (N, F) pooled embedding."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, lengths))


# --------------------------------------------------------------------------- 1D ResNet


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d whose training statistics count only the real time steps (mask (N, 1, T)
    float of 0/1); evaluation is plain batch norm with the running statistics."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None or not self.training:
            return super().forward(x)
        count = mask.sum() * 1.0
        mean = (x * mask).sum((0, 2)) / count
        centred = (x - mean.view(1, -1, 1)) * mask
        var = (centred * centred).sum((0, 2)) / count
        if self.track_running_stats and self.running_mean is not None:
            assert self.running_var is not None and self.num_batches_tracked is not None
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                # momentum None: a cumulative average, as nn.BatchNorm1d
                momentum = self.momentum
                if momentum is None:
                    momentum = 1.0 / float(self.num_batches_tracked)
                unbiased = var * count / (count - 1).clamp(min=1)
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(unbiased.detach(), momentum)
        out = (x - mean.view(1, -1, 1)) * torch.rsqrt(var.view(1, -1, 1) + self.eps)
        if self.affine:
            out = out * self.weight.view(1, -1, 1) + self.bias.view(1, -1, 1)
        return out


class _ConvBN(nn.Module):
    """Zero-padded "same" convolution -> masked batch norm (the caller masks and activates)."""

    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        super().__init__()
        self.pad = ((kernel - 1) // 2, kernel // 2)
        self.conv = nn.Conv1d(cin, cout, kernel, bias=False)
        self.bn = MaskedBatchNorm1d(cout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.conv(F.pad(x, self.pad) if self.pad != (0, 0) else x)
        return self.bn(h, mask)


class _ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int, kernels: Sequence[int]) -> None:
        super().__init__()
        widths = [cin] + [cout] * len(kernels)
        self.layers = nn.ModuleList(
            _ConvBN(widths[i], widths[i + 1], k) for i, k in enumerate(kernels)
        )
        self.shortcut = _ConvBN(cin, cout, 1) if cin != cout else None
        self.shortcut_bn = MaskedBatchNorm1d(cout) if cin == cout else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = x
        for i, layer in enumerate(self.layers):
            h = layer(h, mask)
            if i < len(self.layers) - 1:
                h = torch.relu(h) * mask
        if self.shortcut is not None:
            skip = self.shortcut(x, mask)
        else:
            assert self.shortcut_bn is not None
            skip = self.shortcut_bn(x, mask)
        return torch.relu(h + skip) * mask


class ResNet1D(SeriesClassifier):
    """Three residual blocks (kernels 8, 5, 3) -> global average over the real steps ->
    linear head."""

    def __init__(
        self,
        *,
        channels: int,
        num_classes: int,
        widths: Sequence[int] = (64, 128, 128),
        kernels: Sequence[int] = (8, 5, 3),
    ) -> None:
        super().__init__(channels)
        ins = [channels, *widths[:-1]]
        self.blocks = nn.ModuleList(
            _ResidualBlock(cin, cout, kernels) for cin, cout in zip(ins, widths)
        )
        self.head = nn.Linear(widths[-1], num_classes)

    def features(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        h, mask = self._prepare(x, lengths)
        m = mask.unsqueeze(1).to(h.dtype)
        for block in self.blocks:
            h = block(h, m)
        return h.sum(2) / m.sum(2)


# --------------------------------------------------------------------------- BiLSTM


def reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(N, T, D): each row's first `length` steps reversed, the padding left in place (its
    own inverse)."""
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
    last = lengths.to(x.device).unsqueeze(1) - 1
    index = torch.where(steps <= last, last - steps, steps)
    return x.gather(1, index.unsqueeze(2).expand(-1, -1, x.shape[2]))


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real steps of (N, T, D) -> (N, D) (every row has at least one)."""
    m = mask.unsqueeze(2).to(h.dtype)
    return (h * m).sum(1) / m.sum(1)


def masked_max(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over the real steps of (N, T, D) -> (N, D)."""
    return h.masked_fill(~mask.unsqueeze(2), float("-inf")).max(1).values


class SeriesBiLSTM(SeriesClassifier):
    """Bidirectional LSTM layers (each direction its own nn.LSTM; the backward one reads each
    series reversed within its length) -> mean and max over the real steps -> dropout ->
    linear head."""

    def __init__(
        self, *, channels: int, num_classes: int, hidden: int, layers: int, dropout: float
    ) -> None:
        super().__init__(channels)
        ins = [channels] + [2 * hidden] * (layers - 1)
        self.forward_lstms = nn.ModuleList(nn.LSTM(i, hidden, batch_first=True) for i in ins)
        self.backward_lstms = nn.ModuleList(nn.LSTM(i, hidden, batch_first=True) for i in ins)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(4 * hidden, num_classes)

    def features(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        h, mask = self._prepare(x, lengths)
        real = mask.sum(1)
        m = mask.unsqueeze(2).to(h.dtype)
        h = h.transpose(1, 2)  # (N, T, C)
        for i, (fwd, bwd) in enumerate(zip(self.forward_lstms, self.backward_lstms)):
            if i:
                h = self.dropout(h)
            ahead, _ = fwd(h)
            behind, _ = bwd(reverse_within(h, real))
            h = torch.cat([ahead, reverse_within(behind, real)], 2) * m
        return self.dropout(torch.cat([masked_mean(h, mask), masked_max(h, mask)], 1))


# --------------------------------------------------------------------------- Transformer


class EncoderLayer(nn.Module):
    """Pre-norm Transformer encoder layer: x + attention(LN(x)), then x + MLP(LN(x)) (GELU).
    Written out (not nn.TransformerEncoderLayer, whose attention freezes the traced length in
    its reshapes): the padded keys get -inf scores, so padding never reaches a real step."""

    def __init__(self, d_model: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, ff_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(ff_dim, d_model),
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(N, T, D) and mask (N, T) bool -> (N, T, D)."""
        n, d = h.shape[0], h.shape[2]
        head_dim = d // self.heads
        qkv = self.qkv(self.norm1(h)).reshape(n, -1, 3, self.heads, head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (N, heads, T, head_dim)
        scores = torch.matmul(q, k.transpose(2, 3)) * (1.0 / math.sqrt(head_dim))
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
        attention = self.dropout(torch.softmax(scores, dim=-1))
        mixed = torch.matmul(attention, v).transpose(1, 2).reshape(n, -1, d)
        h = h + self.dropout(self.out(mixed))
        return h + self.dropout(self.ff(self.norm2(h)))


class SeriesTransformer(SeriesClassifier):
    """Linear projection of the channels + sinusoidal positions -> pre-norm Transformer
    encoder layers (GELU, key padding mask) -> LayerNorm -> mean over the real steps -> dropout ->
    linear head."""

    frequencies: torch.Tensor

    def __init__(
        self,
        *,
        channels: int,
        num_classes: int,
        d_model: int,
        layers: int,
        heads: int,
        ff_dim: int,
        dropout: float,
    ) -> None:
        super().__init__(channels)
        self.project = nn.Linear(channels, d_model)
        frequencies = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        self.register_buffer("frequencies", frequencies.float(), persistent=False)
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, heads, ff_dim, dropout) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, num_classes)

    def positions(self, total: int, device: torch.device) -> torch.Tensor:
        """(T, d_model) sinusoidal position codes: sin and cos interleaved."""
        steps = torch.arange(total, device=device).to(torch.float32).unsqueeze(1)
        angles = steps * self.frequencies.unsqueeze(0)
        return torch.stack([angles.sin(), angles.cos()], 2).flatten(1)

    def features(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        h, mask = self._prepare(x, lengths)
        h = self.project(h.transpose(1, 2)) + self.positions(h.shape[2], h.device).unsqueeze(0)
        h = self.dropout(h)
        for layer in self.layers:
            h = layer(h, mask)
        h = self.norm(h)
        return self.dropout(masked_mean(h, mask))


# --------------------------------------------------------------------------- builders


def _check_common(channels: int, num_classes: int, dropout: float = 0.0) -> None:
    if int(channels) < 1 or int(num_classes) < 1:
        raise ValueError(f"channels and num_classes must be >= 1, got {channels}, {num_classes}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


def resnet1d(
    *, channels: int, num_classes: int, widths: Sequence[int] = (64, 128, 128)
) -> ResNet1D:
    """Wang et al.'s 1D ResNet; `widths` the channels of the three blocks."""
    _check_common(channels, num_classes)
    if len(widths) < 1 or min(int(w) for w in widths) < 1:
        raise ValueError(f"widths must be one or more positive widths, got {widths}")
    return ResNet1D(
        channels=int(channels), num_classes=int(num_classes), widths=[int(w) for w in widths]
    )


def series_bilstm(
    *, channels: int, num_classes: int, hidden: int = 64, layers: int = 1, dropout: float = 0.1
) -> SeriesBiLSTM:
    """A BiLSTM of `hidden` units per direction and `layers` layers (1 to 3)."""
    _check_common(channels, num_classes, dropout)
    if int(hidden) < 1 or int(layers) not in (1, 2, 3):
        raise ValueError(f"hidden must be >= 1 and layers 1, 2 or 3, got {hidden}, {layers}")
    return SeriesBiLSTM(
        channels=int(channels),
        num_classes=int(num_classes),
        hidden=int(hidden),
        layers=int(layers),
        dropout=float(dropout),
    )


def series_transformer(
    *,
    channels: int,
    num_classes: int,
    d_model: int = 64,
    layers: int = 2,
    heads: int = 4,
    ff_dim: int = 128,
    dropout: float = 0.1,
) -> SeriesTransformer:
    """A pre-norm Transformer encoder over the time steps (d_model even, a multiple of
    heads)."""
    _check_common(channels, num_classes, dropout)
    if int(d_model) < 2 or int(d_model) % 2 or int(heads) < 1 or int(d_model) % int(heads):
        raise ValueError(
            f"d_model must be even and a multiple of heads, got d_model={d_model}, heads={heads}"
        )
    if not 1 <= int(layers) <= 12 or int(ff_dim) < 1:
        raise ValueError(f"layers must be 1 to 12 and ff_dim >= 1, got {layers}, {ff_dim}")
    return SeriesTransformer(
        channels=int(channels),
        num_classes=int(num_classes),
        d_model=int(d_model),
        layers=int(layers),
        heads=int(heads),
        ff_dim=int(ff_dim),
        dropout=float(dropout),
    )


# --------------------------------------------------------------------------- ONNX


def series_to_onnx(model: SeriesClassifier, path: str | Path, *, example_length: int = 32) -> Path:
    """Export `model` through onnx_export.to_onnx, the one export path: input "input" float32
    (B, C, T) raw values with NaN after each series' end (store.series.nan_padded), batch and
    length dynamic; outputs "logits" and "features". The file is checked in ONNX Runtime
    against PyTorch at two lengths with ragged NaN-padded batches, and written atomically."""
    from dlworkflow.models.onnx_export import to_onnx

    generator = torch.Generator().manual_seed(0)
    example = torch.randn((2, model.channels, example_length), generator=generator)
    example[1, :, max(1, example_length // 2) :] = float("nan")
    return to_onnx(model, path, example=example)
