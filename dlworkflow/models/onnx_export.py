"""A trained classifier -> ONNX: input "input", outputs "logits" and "features" (the
penultimate features the head reads, for drift monitoring), dynamic batch dimension, and the
input axes its modality leaves open (`DYNAMIC_AXES`): a series model's length, an audio
model's samples.
Dense models (detection, segmentation: a map out per image) keep their fixed input size (the
model's image size) with a dynamic batch; their "logits" are the maps and their "features" the
encoder's deepest map averaged over its pixels (DENSE_EMBEDDING_MODULES).

    path = to_onnx(model, "model.onnx", example=torch.zeros(1, 1, 16, 16))

Images take float32 (B, C, H, W) normalised pixels, tables float32 (B, F); text models take
int64 token ids (B, L) padded to max_len. Series models (preprocessing "modality":
"sequence") take float32 (B, C, T) raw values with NaN after each series' end (the one-tensor
form of store.series.nan_padded: the graph reads every series' length from its NaN tail),
T dynamic; audio models (preprocessing "modality" "audio", or "input" "waveform") take float32
(B, S) mono waveforms, S dynamic (the log-mel front end is inside the graph). The exported
file is run in ONNX Runtime against PyTorch before it is kept: at batch sizes 1 and 3, and for
series and audio at two lengths (ragged, NaN-padded series batches included). Uses PyTorch's
TorchScript exporter (`dynamo=False`: it needs no extra package and handles every registered model);
the file is checked with `onnx.checker` and written atomically.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlworkflow.errors import DlwError
from dlworkflow.fileio import atomic_write_with

OPSET = 17
INPUT_NAME, OUTPUT_NAME, FEATURES_NAME = "input", "logits", "features"
#: Input axes kept dynamic besides the batch (axis 0), by the model's input modality.
DYNAMIC_AXES: dict[str, dict[int, str]] = {"sequence": {2: "length"}, "audio": {1: "samples"}}
#: The lengths (series steps) the export of a series model is checked at: neither is traced.
CHECK_LENGTHS = (17, 53)


def input_modality(model: torch.nn.Module) -> str | None:
    """ "sequence" or "audio" for a model whose input has a dynamic length, else None."""
    prep = getattr(model, "preprocessing", None) or {}
    modality = prep.get("modality")
    if modality in DYNAMIC_AXES:
        return str(modality)
    return "audio" if prep.get("input") == "waveform" else None


class _WithFeatures(torch.nn.Module):
    """forward(x) = (head(features(x)), features(x)): the model's own forward, plus the
    features it computes anyway (no extra cost at inference)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model: Any = model  # duck-typed: features() and head, as _graph checks

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.model.features(x)
        return self.model.head(features), features.flatten(1)


#: Where a dense model's (detection, segmentation) embedding comes from: the first of these
#: sub-modules it has (or the one its `embedding_module` attribute names); the deepest map the
#: module returns, averaged over its pixels, is the "features" output.
DENSE_EMBEDDING_MODULES = ("backbone", "encoder")


class _DenseWithFeatures(torch.nn.Module):
    """forward(x) = (model(x), the global average of the encoder's deepest feature map): a
    dense model's maps and an image embedding (for drift), computed in the same pass."""

    def __init__(self, model: torch.nn.Module, source: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.source = source

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        seen: list[torch.Tensor] = []

        def keep(module: torch.nn.Module, args: Any, output: Any) -> None:
            last = output[-1] if isinstance(output, (list, tuple)) else output
            seen.append(last)

        handle = self.source.register_forward_hook(keep)
        try:
            out = self.model(x)
        finally:
            handle.remove()
        deepest = seen[-1]
        return out, deepest.mean(dim=(2, 3)) if deepest.dim() == 4 else deepest.flatten(1)


def _embedding_source(model: torch.nn.Module) -> torch.nn.Module | None:
    named = getattr(model, "embedding_module", None)
    for name in [named] if isinstance(named, str) else DENSE_EMBEDDING_MODULES:
        module = getattr(model, name, None)
        if isinstance(module, torch.nn.Module):
            return module
    return None


def _graph(model: torch.nn.Module, *, dense: bool = False) -> tuple[torch.nn.Module, list[str]]:
    if dense:  # maps out: the embedding is the encoder's, pooled
        source = _embedding_source(model)
        if source is None or not getattr(model, "exports_features", True):
            return model, [OUTPUT_NAME]
        return _DenseWithFeatures(model, source).train(model.training), [
            OUTPUT_NAME,
            FEATURES_NAME,
        ]
    if (
        getattr(model, "exports_features", True)
        and callable(getattr(model, "features", None))
        and isinstance(getattr(model, "head", None), torch.nn.Module)
    ):
        return _WithFeatures(model).train(model.training), [OUTPUT_NAME, FEATURES_NAME]
    return model, [OUTPUT_NAME]


class OnnxExportError(DlwError):
    """The model cannot be expressed in ONNX (an operator or control flow the exporter lacks)."""


def to_onnx(model: torch.nn.Module, path: str | Path, *, example: Any) -> Path:
    """Export `model` (eval mode) with `example` as the traced input; return the path."""
    import onnx

    path = Path(path)
    x = torch.from_numpy(np.asarray(example)) if not isinstance(example, torch.Tensor) else example
    x = x.detach().cpu()
    modality = input_modality(model)
    dynamic = {0: "batch", **DYNAMIC_AXES.get(modality or "", {})}
    if x.dtype in (torch.int64, torch.int32):
        # Text models drop all-padding columns with a data-dependent length that tracing would
        # freeze: the exported model takes ids padded to exactly max_len (the runtime pads),
        # traced with every position filled; padding is masked inside the model as usual.
        length = int(getattr(model, "preprocessing", {}).get("max_len") or x.shape[1])
        x = torch.ones((2, length), dtype=torch.int64)
    was_training = model.training
    model.eval()
    dense = _is_dense(model, x)

    def write(tmp: Path) -> None:
        fastpath = torch.backends.mha.get_fastpath_enabled()
        with (
            warnings.catch_warnings(),
            torch.inference_mode(False),
            torch.no_grad(),
            _aa_resize_as_matmul(),
        ):
            warnings.simplefilter("ignore")
            # The fused Transformer fast path (aten::_transformer_encoder_layer_fwd) has no
            # ONNX form; the plain path computes the same function.
            torch.backends.mha.set_fastpath_enabled(False)
            graph, outputs = _graph(model, dense=dense)
            try:
                torch.onnx.export(
                    graph,
                    (x,),
                    str(tmp),
                    input_names=[INPUT_NAME],
                    output_names=outputs,
                    dynamic_axes={INPUT_NAME: dynamic, **{name: {0: "batch"} for name in outputs}},
                    opset_version=OPSET,
                    dynamo=False,
                    do_constant_folding=True,
                )
            finally:
                torch.backends.mha.set_fastpath_enabled(fastpath)
        onnx.checker.check_model(str(tmp))

    name = getattr(model, "dlw_spec", {}).get("name", type(model).__name__)
    try:
        atomic_write_with(path, write)
    except DlwError:
        raise
    except Exception as exc:  # noqa: BLE001  (the exporter raises many unrelated types)
        raise OnnxExportError(
            f"Model {name!r} cannot be exported to ONNX.",
            expected=f"operators of ONNX opset {OPSET}",
            received=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            fix="pick another model (`dlw models`), or serve it without ONNX",
        ) from None
    try:
        _check_batches(model, path, x, modality)
    finally:
        model.train(was_training)
    return path


def _is_dense(model: torch.nn.Module, x: torch.Tensor) -> bool:
    """A model whose output is a map per image (detection, segmentation: 4-D), not a vector;
    the spatial size stays the fixed input size the model was built for."""
    if x.dtype != torch.float32 or x.dim() != 4:
        return False
    with torch.no_grad(), torch.inference_mode(False):
        return bool(model(x[:1]).dim() == 4)


def onnx_mismatch(session: Any, feeds: dict[str, np.ndarray], ref: np.ndarray) -> str | None:
    """None when the session's OUTPUT_NAME on `feeds` equals `ref` (rtol 1e-3, atol 1e-3 of
    the reference's scale); else what went wrong (the run's error, or the largest gap)."""
    try:
        got = session.run([OUTPUT_NAME], feeds)[0]
    except Exception as exc:  # noqa: BLE001
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    scale = max(1.0, float(np.abs(ref).max()))
    if got.shape == ref.shape and np.allclose(got, ref, rtol=1e-3, atol=1e-3 * scale):
        return None
    if got.shape != ref.shape:
        return f"shape {got.shape}, expected {ref.shape}"
    return f"max abs difference {float(np.abs(got - ref).max()):.3g}"


def _check_batches(
    model: torch.nn.Module, path: Path, x: torch.Tensor, modality: str | None = None
) -> None:
    """The exported graph must compute the model at batch sizes 1 and 3, and a series or
    audio model at two lengths besides (ragged NaN-padded series batches): a shape frozen by
    tracing shows up here, not in production."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(0)
    device = next(iter(model.parameters()), torch.zeros(())).device
    for what, probe in _probes(model, x, modality, generator):
        with torch.no_grad():
            ref = model(probe.to(device)).float().cpu().numpy()
        detail = onnx_mismatch(session, {INPUT_NAME: probe.numpy()}, ref)
        if detail is not None:
            path.unlink(missing_ok=True)
            raise OnnxExportError(
                f"The ONNX export of this model does not compute it at {what}.",
                expected="the same logits as PyTorch at any batch size"
                + (" and length" if modality else ""),
                received=detail,
                fix="pick another model (`dlw models`)",
            )


def _probes(
    model: torch.nn.Module, x: torch.Tensor, modality: str | None, generator: torch.Generator
) -> list[tuple[str, torch.Tensor]]:
    """(what, input) pairs the export is checked on."""
    out = []
    for batch in (1, 3):
        if x.dtype == torch.int64:
            probe = torch.randint(1, 1000, (batch, x.shape[1]), generator=generator)
            probe[:, x.shape[1] // 2 :] = 0  # real texts are padded
            out.append((f"batch size {batch}", probe))
        elif modality == "sequence":
            for total in CHECK_LENGTHS:
                probe = torch.randn((batch, x.shape[1], total), generator=generator)
                for i in range(1, batch):  # ragged: NaN after each shorter series' end
                    probe[i, :, max(1, total // (i + 1)) :] = float("nan")
                out.append((f"batch size {batch}, length {total} (NaN-padded)", probe))
        elif modality == "audio":
            least = int(getattr(model, "preprocessing", {}).get("min_samples") or 1)
            for samples in (x.shape[1], max(least + 1, x.shape[1] * 3 // 5 + 123)):
                probe = 0.1 * torch.randn((batch, samples), generator=generator)
                out.append((f"batch size {batch}, {samples} samples", probe))
        else:
            probe = torch.randn((batch, *x.shape[1:]), generator=generator)
            out.append((f"batch size {batch}", probe))
    return out


def _resize_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) float32: PyTorch's antialiased bilinear resize along one axis, as a matrix
    (column i is the resize of the unit impulse at i)."""
    # Width 2 -> 2 (the identity along it): a width of 1 gives ambiguous strides that
    # PyTorch's antialiased kernel mis-reads as channels-last.
    impulses = torch.eye(n_in, dtype=torch.float32)[:, None, :, None].repeat(1, 1, 1, 2)
    out = torch.nn.functional.interpolate(
        impulses, size=(n_out, 2), mode="bilinear", align_corners=False, antialias=True
    )
    return out[:, 0, :, 0].t().contiguous()


def _pool_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) float32: adaptive average pooling along one axis (PyTorch's bins:
    floor(i * n_in / n_out) to ceil((i + 1) * n_in / n_out))."""
    out = torch.zeros((n_out, n_in), dtype=torch.float32)
    for i in range(n_out):
        start, end = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
        out[i, start:end] = 1.0 / (end - start)
    return out


class _aa_resize_as_matmul:  # noqa: N801  (a context manager used like a function)
    """While exporting, write the two fixed-size linear image ops ONNX lacks as constant
    matrices, Rh @ x @ Rw^T (both are separable, and the input size is fixed per model):
    aten::_upsample_bilinear2d_aa (antialiased resize) and aten::adaptive_avg_pool2d to an
    output size that does not divide the input (e.g. 7x7 -> 2x2 in small_cnn at 28x28)."""

    OPS = ("aten::_upsample_bilinear2d_aa", "aten::adaptive_avg_pool2d")

    def __enter__(self) -> None:
        from torch.onnx import register_custom_op_symbolic

        register_custom_op_symbolic(self.OPS[0], _aa_symbolic, OPSET)
        register_custom_op_symbolic(self.OPS[1], _adaptive_pool_symbolic, OPSET)

    def __exit__(self, *exc: object) -> None:
        from torch.onnx import unregister_custom_op_symbolic

        for op in self.OPS:
            unregister_custom_op_symbolic(op, OPSET)


def _static_hw(x: Any) -> tuple[int, int]:
    from torch.onnx import symbolic_helper

    sizes = symbolic_helper._get_tensor_sizes(x)
    if sizes is None or len(sizes) != 4 or sizes[2] is None or sizes[3] is None:
        raise RuntimeError("a resize or pooling of an input of unknown height or width")
    return int(sizes[2]), int(sizes[3])


def _separable(g: Any, x: Any, rows: torch.Tensor, cols: torch.Tensor) -> Any:
    left = g.op("Constant", value_t=rows)
    right = g.op("Constant", value_t=cols.t().contiguous())
    return g.op("MatMul", g.op("MatMul", left, x), right)


def _adaptive_pool_symbolic(g: Any, x: Any, output_size: Any) -> Any:
    from torch.onnx import symbolic_helper

    out = symbolic_helper._maybe_get_const(output_size, "is")
    if list(out) == [1, 1]:  # a global mean: any size, dynamic ones too (audio)
        return g.op("GlobalAveragePool", x)
    height, width = _static_hw(x)
    out_h, out_w = (int(o) if o is not None else n for o, n in zip(out, (height, width)))
    if (out_h, out_w) == (1, 1):
        return g.op("GlobalAveragePool", x)
    return _separable(g, x, _pool_matrix(height, out_h), _pool_matrix(width, out_w))


def _aa_symbolic(g: Any, x: Any, output_size: Any, align_corners: Any, *scales: Any) -> Any:
    from torch.onnx import symbolic_helper

    height, width = _static_hw(x)
    out = symbolic_helper._maybe_get_const(output_size, "is")
    if symbolic_helper._maybe_get_const(align_corners, "b"):
        raise RuntimeError("antialiased resize with align_corners=True")
    return _separable(g, x, _resize_matrix(height, int(out[0])), _resize_matrix(width, int(out[1])))
