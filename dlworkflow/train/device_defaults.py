"""What `auto` means for the GPU-only speed settings: channels-last and torch.compile.

On a CPU both stay off (channels-last convolutions are slower there, and Inductor's compile
time is rarely repaid by a CPU run). On a GPU:
- channels-last is on for models with 2-D convolutions (their cuDNN kernels prefer NHWC);
- torch.compile is on when the run is long enough to repay its compile time. Measured on an
  H200 (bench/gpu.py, EfficientNet-Lite0 at 224 px, batch 256): compiling costs about
  COMPILE_COST_STEPS eager steps, and the compiled step saves about a third (see
  bench/README.md); so a run of at least COMPILE_MIN_STEPS optimizer steps compiles.
bf16 autocast (precision: auto) and the GPU-resident uint8 cache (train.data) are decided
elsewhere (trainer.resolve_precision, TensorData.place).
"""

from __future__ import annotations

from torch import device as Device
from torch import nn

AUTO = "auto"
COMPILE_COST_STEPS = 1000  # eager steps that the compile time is worth (H200, bench/gpu.py)
COMPILE_MIN_STEPS = 3 * COMPILE_COST_STEPS  # repaid when each compiled step saves ~1/3


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
