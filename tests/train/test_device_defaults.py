"""`auto` for channels-last and torch.compile: on only on a GPU, and compile only for runs
long enough to repay it; explicit settings are obeyed everywhere."""

import torch
from torch import nn

from dlworkflow.train.device_defaults import COMPILE_MIN_STEPS, use_channels_last, use_compile

CPU, GPU = torch.device("cpu"), torch.device("cuda")  # a device object needs no CUDA
CONV = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
MLP = nn.Sequential(nn.Linear(4, 2))


def test_channels_last_auto_is_on_for_conv_nets_on_a_gpu_only():
    assert use_channels_last("auto", GPU, CONV)
    assert not use_channels_last("auto", GPU, MLP)
    assert not use_channels_last("auto", CPU, CONV)
    assert use_channels_last(True, CPU, MLP) and not use_channels_last(False, GPU, CONV)


def test_compile_auto_waits_for_a_run_that_repays_it():
    assert use_compile("auto", GPU, total_steps=COMPILE_MIN_STEPS)
    assert not use_compile("auto", GPU, total_steps=COMPILE_MIN_STEPS - 1)
    assert not use_compile("auto", CPU, total_steps=10 * COMPILE_MIN_STEPS)
    assert use_compile(True, CPU, total_steps=1) and not use_compile(False, GPU, total_steps=10**6)
