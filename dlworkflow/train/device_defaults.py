"""What `auto` means for the GPU-only speed settings: channels-last and torch.compile.

On a CPU both stay off (channels-last convolutions are slower there, and Inductor's compile
time is rarely repaid by a CPU run). On a GPU:
- channels-last is on for models with 2-D convolutions (their cuDNN kernels prefer NHWC);
- torch.compile is on when the run is long enough to repay its compile time: at least
  COMPILE_MIN_STEPS optimizer steps (the measurement is beside the constant).
bf16 autocast (precision: auto) and the GPU-resident uint8 cache (train.data) are decided
elsewhere (trainer.resolve_precision, TensorData.place).
"""

from __future__ import annotations

from torch import device as Device
from torch import nn

AUTO = "auto"
# Measured on an H200 (bench/gpu.py, EfficientNet-Lite0, 224 px, batch 256, bf16,
# channels-last, torch 2.11, 2026-12-04): a compile took 45-88 s (88 cold, on a fresh machine);
# compiled steps ran 1.52x as fast as eager ones (30.7 vs 46.8 ms), saving 16 ms a step:
# break-even after 2,800-5,500 steps.
COMPILE_MIN_STEPS = 6000


def use_channels_last(setting: bool | str, device: Device, model: nn.Module) -> bool:
    """train.channels_last: true/false as given; auto: on a GPU, for a model with Conv2d."""
    if setting != AUTO:
        return bool(setting)
    return device.type == "cuda" and any(isinstance(m, nn.Conv2d) for m in model.modules())


def use_compile(setting: bool | str, device: Device, *, total_steps: int) -> bool:
    """train.compile: true/false as given; auto: on a GPU when the run has at least
    COMPILE_MIN_STEPS optimizer steps (epochs x steps an epoch)."""
    if setting != AUTO:
        return bool(setting)
    return device.type == "cuda" and total_steps >= COMPILE_MIN_STEPS


def tune_cuda_kernels(device: Device) -> None:
    """On a GPU: let cuDNN pick the fastest convolution algorithms for the (fixed) input shapes,
    and fp32 matrix products use TF32 (float32_matmul_precision "high"); bf16 autocast covers
    most of the work anyway. Left alone when deterministic algorithms were asked for."""
    import torch

    if device.type != "cuda" or torch.are_deterministic_algorithms_enabled():
        return
    torch.backends.cudnn.benchmark = True
    torch.set_float32_matmul_precision("high")


RECOMPILE_LIMIT = 64  # graphs kept per compiled function (torch's default: 8)


def allow_recompiles() -> None:
    """Every dlw model shares one forward (models/base.py), so each model compiled in one
    process (tuning trials, retraining, a benchmark) adds graphs to the same cache entry;
    at torch's default limit of 8 the ninth falls back to eager, silently slower (seen on the
    H200 run of bench/gpu.py). Raise the limit; never lower one the user set higher."""
    import torch._dynamo.config as dynamo

    name = "recompile_limit" if hasattr(dynamo, "recompile_limit") else "cache_size_limit"
    setattr(dynamo, name, max(int(getattr(dynamo, name)), RECOMPILE_LIMIT))


#: train.budget_minutes when null: minutes of one training run on a CPU, on a GPU.
CPU_BUDGET_MIN, GPU_BUDGET_MIN = 10.0, 60.0


def run_budget(configured: float | None, device: Device) -> float:
    """The run's time budget in minutes: train.budget_minutes, else the device's default."""
    if configured is not None:
        return float(configured)
    return GPU_BUDGET_MIN if device.type == "cuda" else CPU_BUDGET_MIN
