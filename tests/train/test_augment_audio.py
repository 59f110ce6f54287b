"""Audio augmentation (dlworkflow.train.augment_audio): SpecAugment masks, waveform gain, shift
and noise, and their seeding per (seed, epoch, batch)."""

from __future__ import annotations

import pytest
import torch

from dlworkflow.errors import ConfigError
from dlworkflow.train.augment import _derived_seed
from dlworkflow.train.augment_audio import (
    SpecAugment,
    WaveformAugment,
    apply_masks,
    draw_masks,
    mix_noise,
    random_gain,
    random_shift,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _spec(n: int = 64, mels: int = 64, frames: int = 100) -> torch.Tensor:
    return torch.randn((n, 1, mels, frames), generator=_gen(1)) * 10.0 - 40.0


def _waves(n: int = 16, samples: int = 4000) -> torch.Tensor:
    t = torch.arange(samples) / 16000.0
    freqs = torch.linspace(200.0, 3000.0, n)[:, None]
    amps = torch.linspace(0.1, 0.8, n)[:, None]
    return amps * torch.sin(2 * torch.pi * freqs * t)


def _snr_db(clean: torch.Tensor, mixed: torch.Tensor) -> torch.Tensor:
    noise = (mixed - clean).double()
    return 10 * torch.log10(clean.double().pow(2).mean(-1) / noise.pow(2).mean(-1))


def test_masks_have_the_configured_counts_and_widths() -> None:
    spec = _spec()
    masks = draw_masks(
        64, 64, 100, generator=_gen(), freq_masks=2, freq_width=8, time_masks=3, time_width=10
    )
    assert masks.freq_starts.shape == masks.freq_widths.shape == (64, 2)
    assert masks.time_starts.shape == masks.time_widths.shape == (64, 3)
    for starts, widths, size, top in (
        (masks.freq_starts, masks.freq_widths, 64, 8),
        (masks.time_starts, masks.time_widths, 100, 10),
    ):
        assert widths.min() >= 0 and widths.max() <= top
        assert set(widths.flatten().tolist()) == set(range(top + 1))  # the whole range drawn
        assert starts.min() >= 0 and (starts + widths).max() <= size
        assert (starts + widths).max() > size - 4  # masks reach the far end too
    out = apply_masks(spec, masks, fill="mean")
    assert out.shape == spec.shape
    for i in range(64):
        band = torch.zeros(64, dtype=torch.bool)
        for s, w in zip(masks.freq_starts[i].tolist(), masks.freq_widths[i].tolist()):
            band[s : s + w] = True
        span = torch.zeros(100, dtype=torch.bool)
        for s, w in zip(masks.time_starts[i].tolist(), masks.time_widths[i].tolist()):
            span[s : s + w] = True
        expected = band[:, None] | span[None, :]
        changed = out[i, 0] != spec[i, 0]
        assert torch.equal(changed, expected)  # exactly the union of the drawn masks
        assert band.sum() <= masks.freq_widths[i].sum() and span.sum() <= masks.time_widths[i].sum()
        if expected.any():
            assert torch.allclose(out[i, 0][expected], spec[i].mean().expand(int(expected.sum())))
    fixed = apply_masks(spec[:, 0], masks, fill=-80.0)  # (N, mels, frames) works too
    assert fixed.shape == (64, 64, 100)
    assert torch.equal(fixed == -80.0, out[:, 0] != spec[:, 0])


def test_spec_augment_module_is_seeded_per_epoch_and_batch_and_off_in_eval() -> None:
    spec = _spec(8).expand(8, 1, 64, 100).contiguous()
    spec[:] = spec[0]  # eight identical clips: each draws its own masks
    first, second = SpecAugment(seed=7), SpecAugment(seed=7)
    rng_state = torch.get_rng_state()
    a1, a2 = first(spec), first(spec)
    assert torch.equal(torch.get_rng_state(), rng_state)  # the global stream is untouched
    assert torch.equal(a1, second(spec)) and torch.equal(a2, second(spec))  # same seed
    assert not torch.equal(a1, a2)  # batches differ
    changed = (a1 != spec).flatten(1)
    assert len({tuple(row.tolist()) for row in changed}) == 8  # samples are independent
    first.start_epoch(0)
    assert torch.equal(first(spec), a1)  # a resumed epoch repeats its batches
    first.start_epoch(1)
    assert not torch.equal(first(spec), a1)
    assert not torch.equal(SpecAugment(seed=8)(spec), a1)
    first.eval()
    assert first(spec) is spec
    off = SpecAugment(seed=7, freq_masks=0, time_masks=0)
    assert torch.equal(off(spec), spec)
    with pytest.raises(ConfigError):
        SpecAugment(seed=0, time_width=-1)


def test_gain_is_exact_and_per_sample() -> None:
    x = _waves()
    fixed = random_gain(x, _gen(), (6.0, 6.0))
    assert torch.allclose(fixed, x * 10 ** (6 / 20), rtol=1e-6, atol=0)
    varied = random_gain(x, _gen(), (-6.0, 6.0))
    ratio = varied / x
    nonzero = x.abs() > 1e-3
    per_clip = torch.stack([r[m].mean() for r, m in zip(ratio, nonzero)])
    for r, m, level in zip(ratio, nonzero, per_clip):
        assert torch.allclose(r[m], level.expand(int(m.sum())), rtol=1e-5)  # one gain a clip
    db = 20 * torch.log10(per_clip)
    assert db.min() >= -6.0 - 1e-4 and db.max() <= 6.0 + 1e-4
    assert db.max() - db.min() > 4.0  # drawn per clip


@pytest.mark.parametrize("mode", ["circular", "zero"])
def test_shift_moves_each_clip_by_a_whole_number_of_samples(mode: str) -> None:
    x = torch.randn((12, 1000), generator=_gen(2))
    out = random_shift(x, _gen(), 100, mode)  # type: ignore[arg-type]
    shifts = []
    for clip, moved in zip(x, out):
        found = [s for s in range(-100, 101) if torch.equal(_shifted(clip, s, mode), moved)]
        assert len(found) == 1
        shifts.append(found[0])
    assert len(set(shifts)) > 6  # drawn per clip, both ways
    assert min(shifts) < 0 < max(shifts)
    multi = random_shift(torch.stack([x, -x], dim=1), _gen(), 100, mode)  # type: ignore[arg-type]
    assert torch.equal(multi[:, 0], out) and torch.equal(multi[:, 1], -out)  # channels together


def _shifted(clip: torch.Tensor, s: int, mode: str) -> torch.Tensor:
    rolled = torch.roll(clip, s)
    if mode == "zero" and s > 0:
        rolled[:s] = 0
    elif mode == "zero" and s < 0:
        rolled[s:] = 0
    return rolled


def test_gaussian_noise_lands_at_the_asked_snr() -> None:
    x = _waves(32)
    exact = mix_noise(x, _gen(), (10.0, 10.0))
    snr = _snr_db(x, exact)
    assert (snr - 10.0).abs().max() < 1e-3  # the 0.5 dB of the brief, with room to spare
    drawn = _snr_db(x, mix_noise(x, _gen(), (0.0, 20.0)))
    assert drawn.min() >= -1e-3 and drawn.max() <= 20.0 + 1e-3
    assert drawn.max() - drawn.min() > 10.0
    assert torch.equal(mix_noise(x, _gen(), (5.0, 5.0), p=0.0), x)
    half = mix_noise(_waves(200), _gen(), (5.0, 5.0), p=0.5)
    noisy = (half != _waves(200)).any(dim=1).float().mean()
    assert 0.35 < noisy < 0.65
    silent = torch.zeros((2, 500))
    assert torch.equal(mix_noise(silent, _gen(), (0.0, 0.0)), silent)


def test_noise_from_a_bank_is_a_wrapped_segment_of_one_of_its_rows() -> None:
    bank = torch.randn((3, 50), generator=_gen(5))
    x = _waves(10, 120)  # longer than the bank's rows: segments wrap around
    out = mix_noise(x, _gen(), (3.0, 3.0), noise=bank)
    assert (_snr_db(x, out) - 3.0).abs().max() < 1e-3
    used = set()
    for clip, mixed in zip(x, out):
        added = (mixed - clip).double()
        added /= added.norm()
        best = min(
            ((k, s) for k in range(3) for s in range(50)),
            key=lambda ks: _distance(added, bank[ks[0]], ks[1]),
        )
        assert _distance(added, bank[best[0]], best[1]) < 1e-4
        used.add(best)
    assert len(used) > 5


def _distance(added: torch.Tensor, row: torch.Tensor, start: int) -> float:
    segment = row.double()[(start + torch.arange(added.numel())) % row.numel()]
    return float((added - segment / segment.norm()).norm())


def test_waveform_augment_is_seeded_per_epoch_and_batch() -> None:
    x, y = _waves(), torch.arange(16)
    options = {"gain_db": (-6.0, 6.0), "shift": 200, "noise_snr_db": (5.0, 20.0)}
    first = WaveformAugment(seed=3, **options)  # type: ignore[arg-type]
    second = WaveformAugment(seed=3, **options)  # type: ignore[arg-type]
    rng_state = torch.get_rng_state()
    (a1, y1), (a2, _) = first(x, y), first(x, y)
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert y1 is y
    assert torch.equal(a1, second(x, y)[0]) and torch.equal(a2, second(x, y)[0])
    assert not torch.equal(a1, a2)
    first.start_epoch(0)
    assert torch.equal(first(x, y)[0], a1)
    first.start_epoch(4)
    assert not torch.equal(first(x, y)[0], a1)
    # The first batch of epoch 0 is shift, then gain, then noise from one derived generator.
    g = torch.Generator().manual_seed(_derived_seed(3, 0, 1))
    moved = random_gain(random_shift(x, g, 200, "circular"), g, (-6.0, 6.0))
    assert torch.equal(a1, mix_noise(moved, g, (5.0, 20.0)))
    assert not torch.equal(moved, x)
    plain = WaveformAugment(seed=3)
    assert torch.equal(plain(x, y)[0], x)
    with pytest.raises(ConfigError):
        WaveformAugment(seed=0, gain_db=(6.0, -6.0))
    with pytest.raises(ConfigError):
        WaveformAugment(seed=0, noise_p=1.5)
