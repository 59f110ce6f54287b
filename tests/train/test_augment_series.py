"""Series augmentation (dlworkflow.train.augment_series): window slicing, time warp, magnitude
warp, scaling and jitter within each series' real length, and their seeding per (seed, epoch,
batch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.interpolate import CubicSpline

from dlworkflow.datasets.ucr import load_ucr
from dlworkflow.errors import ConfigError, DataError
from dlworkflow.train.augment import BatchTransform, _derived_seed
from dlworkflow.train.augment_series import (
    SeriesAugment,
    SeriesSettings,
    knot_curves,
    lengths_from_padding,
    magnitude_curves,
    magnitude_warp,
    time_maps,
    time_warp,
    window_slice,
    window_starts,
)

ALL_ON = SeriesSettings(
    window_slice_p=1.0,
    time_warp_p=1.0,
    magnitude_warp_p=1.0,
    scaling_p=1.0,
    jitter_p=1.0,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _padded(
    series: list[np.ndarray], steps: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, T) float32 zero-padded after each series' length, and the lengths."""
    lengths = [s.shape[-1] for s in series]
    steps = steps or max(lengths)
    x = np.zeros((len(series), series[0].shape[0], steps), dtype=np.float32)
    for i, s in enumerate(series):
        x[i, :, : s.shape[-1]] = s
    return torch.from_numpy(x), torch.tensor(lengths, dtype=torch.int64)


def _batch(n: int = 32, c: int = 4, steps: int = 80, seed: int = 3):
    """Random-walk series of random lengths 2..steps, channels on different scales."""
    g = _gen(seed)
    lengths = torch.randint(2, steps + 1, (n,), generator=g)
    lengths[0] = steps  # one full-length series
    scales = torch.logspace(-1, 2, c)[None, :, None]
    x = torch.randn((n, c, steps), generator=g).cumsum(dim=2) * scales + 5.0
    x = x * (torch.arange(steps)[None, None, :] < lengths[:, None, None])
    return x, lengths


def _padding_ok(out: torch.Tensor, lengths: torch.Tensor) -> bool:
    pad = torch.arange(out.shape[-1])[None, None, :] >= lengths[:, None, None]
    return bool((out[pad.expand_as(out)] == 0).all())


def test_same_seed_same_batches_and_the_global_rng_untouched() -> None:
    x, lengths = _batch()
    y = torch.arange(len(x))
    a, b = SeriesAugment(ALL_ON, seed=7), SeriesAugment(ALL_ON, seed=7)
    before = torch.random.get_rng_state()
    first = [a(x, y, lengths)[0] for _ in range(3)]
    assert torch.equal(torch.random.get_rng_state(), before)
    second = [b(x, y, lengths)[0] for _ in range(3)]
    for one, two in zip(first, second):
        assert torch.equal(one, two)
    # batches of an epoch differ from each other, and from those of another seed
    assert not torch.allclose(first[0], first[1])
    other = SeriesAugment(ALL_ON, seed=8)(x, y, lengths)[0]
    assert not torch.allclose(first[0], other)
    # start_epoch numbers batches from 1 again: epoch 0 replays, epoch 1 differs
    a.start_epoch(0)
    assert torch.equal(a(x, y, lengths)[0], first[0])
    a.start_epoch(1)
    again = a(x, y, lengths)[0]
    assert not torch.allclose(again, first[0])
    b.start_epoch(1)
    assert torch.equal(b(x, y, lengths)[0], again)
    assert a.mixes is False
    out_y = a(x, y, lengths)[1]
    assert out_y is y


def test_the_generator_is_the_derived_seed_of_seed_epoch_and_batch() -> None:
    x, lengths = _batch(n=8)
    settings = SeriesSettings(scaling_p=1.0, scaling_sigma=0.3)
    augment = SeriesAugment(settings, seed=5)
    augment.start_epoch(2)
    augment(x, x, lengths)
    out = augment(x, x, lengths)[0]  # batch 2 of epoch 2
    g = _gen(_derived_seed(5, 2, 2))
    chosen = torch.rand(8, generator=g) < 1.0
    factors = 1.0 + 0.3 * torch.randn((8, 4), generator=g)
    assert chosen.all()
    torch.testing.assert_close(out, x * factors[..., None], rtol=0, atol=0)


@pytest.mark.parametrize(
    "settings",
    [
        ALL_ON,
        SeriesSettings(window_slice_p=1.0, window_slice_ratio=0.5),
        SeriesSettings(time_warp_p=1.0, time_warp_sigma=1.0, time_warp_kind="linear"),
        SeriesSettings(magnitude_warp_p=1.0, magnitude_warp_knots=0),
        SeriesSettings(jitter_p=1.0, jitter_sigma=0.5),
    ],
)
def test_padding_stays_zero_and_lengths_unchanged(settings: SeriesSettings) -> None:
    x, lengths = _batch()
    out, _ = SeriesAugment(settings, seed=0)(x, x, lengths)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert _padding_ok(out, lengths)
    assert torch.equal(lengths_from_padding(out), lengths)  # the last real step stays non-zero
    assert not torch.allclose(out, x)


def test_lengths_read_off_the_padding_when_not_given() -> None:
    x, lengths = _batch()
    assert torch.equal(lengths_from_padding(x), lengths)
    with_lengths = SeriesAugment(ALL_ON, seed=4)(x, x, lengths)[0]
    transform: BatchTransform = SeriesAugment(ALL_ON, seed=4)  # the trainer's (x, y) form
    without = transform(x, x)[0]
    assert torch.equal(with_lengths, without)
    zero = torch.zeros((2, 3, 5))
    zero[1, 2, 3] = 1.0
    assert lengths_from_padding(zero).tolist() == [0, 4]


def test_empty_and_one_step_series() -> None:
    x = torch.zeros((4, 2, 6))
    lengths = torch.tensor([0, 1, 2, 6])
    for i, length in enumerate(lengths.tolist()):
        x[i, :, :length] = torch.arange(1, length + 1).float()
    out, _ = SeriesAugment(ALL_ON, seed=0)(x, x, lengths)
    assert torch.isfinite(out).all() and _padding_ok(out, lengths)
    assert (out[0] == 0).all()
    # one step: no time to warp or slice, only the amplitude ops act
    for settings in (
        SeriesSettings(window_slice_p=1.0, window_slice_ratio=0.5),
        SeriesSettings(time_warp_p=1.0, time_warp_sigma=1.0),
    ):
        moved, _ = SeriesAugment(settings, seed=0)(x, x, lengths)
        assert torch.equal(moved[:2], x[:2])
    # a time warp keeps both ends; so it does with two steps, whatever the map in between
    assert moved[2:, :, 0].tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert moved[2, :, 1].tolist() == [2.0, 2.0] and moved[3, :, 5].tolist() == [6.0, 6.0]
    assert not torch.equal(moved[3], x[3])


def test_bad_batches_and_settings_are_refused() -> None:
    x, lengths = _batch(n=4)
    augment = SeriesAugment(ALL_ON, seed=0)
    with pytest.raises(DataError, match="length"):
        augment(x, x, lengths + x.shape[-1])
    with pytest.raises(DataError, match="one length per series"):
        augment(x, x, lengths[:3])
    with pytest.raises(DataError, match=r"\(N, C, T\)"):
        augment(x[:, 0], x, lengths)
    for bad in (
        {"jitter_p": 1.5},
        {"scaling_sigma": -0.1},
        {"time_warp_knots": -1},
        {"magnitude_warp_kind": "quadratic"},
        {"window_slice_ratio": 0.0},
    ):
        with pytest.raises(ConfigError):
            SeriesSettings(**bad)
    assert ALL_ON.active() == ["window_slice", "time_warp", "magnitude_warp", "scaling", "jitter"]
    assert SeriesSettings().active() == []


def test_jitter_noise_std_is_sigma_times_the_channel_std() -> None:
    x, lengths = _batch(n=512, c=3, steps=120, seed=11)
    sigma = 0.1
    out, _ = SeriesAugment(SeriesSettings(jitter_p=1.0, jitter_sigma=sigma), seed=2)(x, x, lengths)
    valid = torch.arange(120)[None, :] < lengths[:, None]  # (N, T)
    count = lengths[:, None].float()
    mean = (x * valid[:, None]).sum(2) / count
    std = (((x - mean[..., None]) * valid[:, None]) ** 2).sum(2).div(count).sqrt()
    keep = lengths >= 10  # a std over a few steps is itself noisy; check the rest
    relative = ((out - x) / std[..., None])[keep].transpose(0, 1)[:, valid[keep]]  # (C, M)
    for channel in relative:
        assert channel.std().item() == pytest.approx(sigma, rel=0.05)
        assert abs(channel.mean().item()) < 0.05 * sigma
    assert _padding_ok(out, lengths)


def test_scaling_factors_have_mean_one_and_std_sigma() -> None:
    n, c, steps = 2000, 6, 30
    lengths = torch.randint(1, steps + 1, (n,), generator=_gen(9))
    x = (torch.arange(steps)[None, None, :] < lengths[:, None, None]).float().expand(n, c, steps)
    out, _ = SeriesAugment(SeriesSettings(scaling_p=1.0, scaling_sigma=0.1), seed=1)(x, x, lengths)
    factors = out[:, :, 0]
    assert factors.mean().item() == pytest.approx(1.0, abs=0.003)
    assert factors.std().item() == pytest.approx(0.1, rel=0.05)
    torch.testing.assert_close(out, x * factors[..., None], rtol=0, atol=0)  # one per channel
    assert (factors[:, 1:] != factors[:, :1]).any(dim=1).all()  # each channel its own factor


def test_probability_picks_series_independently() -> None:
    x, lengths = _batch(n=400)
    out, _ = SeriesAugment(SeriesSettings(scaling_p=0.3), seed=3)(x, x, lengths)
    changed = (out != x).flatten(1).any(dim=1)
    assert 0.24 < changed.float().mean().item() < 0.36
    assert torch.equal(out[~changed], x[~changed])


def test_time_warp_with_zero_strength_is_the_identity() -> None:
    x, lengths = _batch()
    settings = SeriesSettings(time_warp_p=1.0, time_warp_sigma=0.0)
    out, _ = SeriesAugment(settings, seed=0)(x, x, lengths)
    assert (out - x).abs().max().item() <= 1e-6
    tau = time_maps(lengths, x.shape[-1], _gen(), 0.0, 4)
    valid = torch.arange(x.shape[-1])[None, :] < lengths[:, None]
    assert (tau - torch.arange(x.shape[-1]).float())[valid].abs().max().item() <= 1e-6


@pytest.mark.parametrize("kind", ["cubic", "linear"])
def test_time_warp_is_monotone_with_fixed_endpoints(kind: str) -> None:
    n, steps = 64, 100
    lengths = torch.randint(2, steps + 1, (n,), generator=_gen(5))
    ramp = torch.arange(steps).float()[None, None, :].expand(n, 2, steps)
    x = ramp * (torch.arange(steps)[None, None, :] < lengths[:, None, None])
    out = time_warp(x, lengths, _gen(1), sigma=0.6, knots=4, kind=kind)  # type: ignore[arg-type]
    assert _padding_ok(out, lengths)
    moved = 0.0
    for i, length in enumerate(lengths.tolist()):
        real = out[i, :, :length]
        assert (real[:, 1:] - real[:, :-1] >= 0).all()  # a ramp stays non-decreasing
        assert real[:, 0].tolist() == [0.0, 0.0]
        assert real[:, -1].tolist() == [length - 1] * 2
        moved = max(moved, (real - x[i, :, :length]).abs().max().item())
    assert moved > 3.0  # and it does warp
    tau = time_maps(lengths, steps, _gen(1), 0.6, 4, kind)  # type: ignore[arg-type]
    for i, length in enumerate(lengths.tolist()):
        assert tau[i, 0].item() == 0.0 and tau[i, length - 1].item() == length - 1
        assert (tau[i, 1:length] > tau[i, : length - 1]).all()  # strictly increasing


def test_window_slice_of_a_ramp_is_a_ramp_over_the_window() -> None:
    n, steps, ratio = 50, 90, 0.7
    lengths = torch.randint(2, steps + 1, (n,), generator=_gen(6))
    ramp = torch.arange(steps).float()[None, None, :].expand(n, 1, steps)
    x = ramp * (torch.arange(steps)[None, None, :] < lengths[:, None, None])
    out = window_slice(x, lengths, _gen(2), ratio)
    starts = window_starts(lengths, _gen(2), ratio, torch.float32)
    assert _padding_ok(out, lengths)
    for i, length in enumerate(lengths.tolist()):
        real = out[i, 0, :length].double()
        width = ratio * (length - 1)
        start = starts[i].item()
        assert 0.0 <= start <= (length - 1) - width + 1e-5
        expected = start + ratio * torch.arange(length).double()
        torch.testing.assert_close(real, expected, rtol=0, atol=1e-4)  # linear
        assert (real[-1] - real[0]).item() == pytest.approx(width, abs=1e-4)
    assert starts.std().item() > 1.0  # the windows start in different places


@pytest.mark.parametrize("kind", ["cubic", "linear"])
def test_magnitude_warp_of_a_constant_series_is_the_warp_curve(kind: str) -> None:
    n, c, steps, knots, sigma = 6, 2, 70, 4, 0.3
    lengths = torch.tensor([70, 69, 40, 13, 2, 1])
    x = 2.5 * (torch.arange(steps)[None, None, :] < lengths[:, None, None]).float()
    x = x.expand(n, c, steps)
    out = magnitude_warp(x, lengths, _gen(4), sigma, knots, kind)  # type: ignore[arg-type]
    curves = magnitude_curves(x, lengths, _gen(4), sigma, knots, kind)  # type: ignore[arg-type]
    torch.testing.assert_close(out, 2.5 * curves)
    # the knot values, drawn as the function does, through an independent interpolation
    values = (1.0 + sigma * torch.randn((n, c, knots + 2), generator=_gen(4))).double().numpy()
    for i, length in enumerate(lengths.tolist()):
        t = np.arange(length, dtype=np.float64)
        at = np.linspace(0.0, max(length - 1, 1), knots + 2)
        for j in range(c):
            if kind == "cubic":
                reference = CubicSpline(at, values[i, j], bc_type="natural")(t)
            else:
                reference = np.interp(t, at, values[i, j])
            np.testing.assert_allclose(out[i, j, :length] / 2.5, reference, atol=2e-5)
            ends = [0, -1] if length > 1 else [0, 0]  # a curve starts and ends on its knots
            np.testing.assert_allclose(
                out[i, j, [0, length - 1]] / 2.5, values[i, j, ends], atol=2e-5
            )
    assert _padding_ok(out, lengths)


def test_knot_curves_pass_through_the_knots() -> None:
    values = torch.randn((3, 2, 7), generator=_gen(8), dtype=torch.float64)
    u = torch.linspace(0, 1, 7, dtype=torch.float64)[None, :].expand(3, 7)
    for kind in ("cubic", "linear"):
        torch.testing.assert_close(knot_curves(values, u, kind), values)


def test_gunpoint_series_of_variable_length() -> None:
    train, _ = load_ucr("GunPoint")
    rng = np.random.default_rng(0)
    # real GunPoint series, each cut to its own length (the archive's are all 150)
    cut = [s[:, : int(rng.integers(40, 151))] for s in train.series]
    x, lengths = _padded(cut, steps=150)
    augment = SeriesAugment(ALL_ON, seed=0)
    out, _ = augment(x, torch.zeros(len(x)), lengths)
    assert out.shape == (50, 1, 150) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and _padding_ok(out, lengths)
    # z-normalised series: augmented ones stay on their scale
    real = torch.arange(150)[None, None, :] < lengths[:, None, None]
    assert 0.5 < out[real].std().item() < 2.0
    assert (out - x)[real].abs().mean().item() > 0.05


def test_japanese_vowels_twelve_channels() -> None:
    train, _ = load_ucr("JapaneseVowels")
    x, lengths = _padded(train.series)
    assert torch.equal(lengths, torch.from_numpy(train.lengths))
    out, _ = SeriesAugment(ALL_ON, seed=1)(x, torch.zeros(len(x)), lengths)
    assert out.shape == (270, 12, int(train.lengths.max()))
    assert torch.isfinite(out).all() and _padding_ok(out, lengths)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_the_gpu_the_batch_stays_there() -> None:
    x, lengths = _batch(n=64, c=6, steps=100)
    x, lengths = x.cuda(), lengths.cuda()
    before = torch.cuda.get_rng_state()
    out, _ = SeriesAugment(ALL_ON, seed=0)(x, x, lengths)
    again, _ = SeriesAugment(ALL_ON, seed=0)(x, x, lengths)
    assert torch.equal(torch.cuda.get_rng_state(), before)
    assert out.device == x.device and torch.equal(out, again)
    assert torch.isfinite(out).all() and _padding_ok(out.cpu(), lengths.cpu())
