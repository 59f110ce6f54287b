"""Deployment constraints of step 1 (`problem.constraints`), measured on the exported model.

    checks = check_constraints(project, model, meta, example)   # example: one input sample

max_latency_ms: the model is exported to a temporary ONNX file and run by ONNX Runtime on the
CPU with 1 thread at batch 1: WARMUP runs first, then RUNS timed runs; the 95th percentile is
compared with the limit. max_model_size_mb: the ONNX file's size in MB (10^6 bytes), the file
that `dlw export` ships. Nothing is measured (no export) when no constraint is set.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.evaluate.gate import ConstraintCheck

if TYPE_CHECKING:
    from dlworkflow.models.meta import ModelMeta
    from dlworkflow.workspace import Workspace

WARMUP = 10
RUNS = 100
MB = 1_000_000


def latency_ms(
    onnx_path: str | Path, example: np.ndarray, *, runs: int = RUNS, warmup: int = WARMUP
) -> dict[str, float]:
    """CPU latency of one call at the example's batch size: ONNX Runtime, 1 thread,
    sequential; {"p50", "p95", "mean", "runs"} in ms after `warmup` untimed calls."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    session = ort.InferenceSession(
        str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    feed = {"input": np.ascontiguousarray(example)}
    for _ in range(warmup):
        session.run(["logits"], feed)
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        session.run(["logits"], feed)
        times[i] = time.perf_counter() - start
    times *= 1000.0
    return {
        "p50": float(np.percentile(times, 50)),
        "p95": float(np.percentile(times, 95)),
        "mean": float(times.mean()),
        "runs": runs,
    }


def _one_sample(meta: ModelMeta, example: np.ndarray) -> np.ndarray:
    x = np.asarray(example)
    if meta.get("modality", "image") == "text":
        x = x.astype(np.int64)
        if x.ndim == 1:
            x = x[None]
        width = int((meta.get("preprocessing") or {}).get("max_len") or x.shape[1])
        x = np.pad(x[:, :width], ((0, 0), (0, max(0, width - x.shape[1]))))
    else:
        x = x.astype(np.float32)
        # a batch's dimensions: images (N, C, H, W), series (N, C, T), clips and tables (N, S)
        expected = {"image": 4, "sequence": 3}.get(str(meta.get("modality", "image")), 2)
        if x.ndim == expected - 1:
            x = x[None]
    return np.ascontiguousarray(x[:1])


def check_constraints(
    project: Workspace,
    model: Any,
    meta: ModelMeta,
    example: np.ndarray | None = None,
    *,
    runs: int = RUNS,
) -> list[ConstraintCheck]:
    """Every constraint set in `problem.constraints`, measured on `model` exported to a
    temporary ONNX file; `example` is one input sample (or a batch: its first row is used;
    None: zeros of the model's input format, `runtime.spec.example_input`)."""
    from dlworkflow.models.onnx_export import to_onnx
    from dlworkflow.runtime.spec import example_input

    if example is None:
        example = example_input(meta, 1)

    limits = project.config.problem.constraints
    if limits.max_latency_ms is None and limits.max_model_size_mb is None:
        return []
    x = _one_sample(meta, example)
    checks = []
    with tempfile.TemporaryDirectory(prefix="dlw-gate-") as tmp:
        path = to_onnx(model, Path(tmp) / "model.onnx", example=np.repeat(x, 2, axis=0))
        if limits.max_latency_ms is not None:
            lat = latency_ms(path, x, runs=runs)
            checks.append(
                ConstraintCheck(
                    "max_latency_ms",
                    float(limits.max_latency_ms),
                    lat["p95"],
                    lat["p95"] <= limits.max_latency_ms,
                    f"ONNX Runtime CPU, 1 thread, batch 1, p95 of {lat['runs']} runs after "
                    f"{WARMUP} warm-up (p50 {lat['p50']:.3f} ms)",
                )
            )
        if limits.max_model_size_mb is not None:
            size = path.stat().st_size / MB
            checks.append(
                ConstraintCheck(
                    "max_model_size_mb",
                    float(limits.max_model_size_mb),
                    size,
                    size <= limits.max_model_size_mb,
                    f"model.onnx, {path.stat().st_size:,} bytes",
                )
            )
    return checks
