"""Step 6 for series: batched, seeded augmentation of multivariate, variable-length series.

A batch is float (N, C, T), each series zero-padded after its real length, with `lengths`
(N,) int64. Every op works within each series' real length: it never moves padding into a
series, never writes a non-zero value into the padding and never changes a length. Pure
torch on the batch's own device, every series drawn independently, no loop over series.

  window slice  a window of `window_slice_ratio` x the real length (continuous start, uniform
                over where it fits) is cropped and stretched back to the real length by
                linear interpolation (Le Guennec et al. 2016)
  time warp     one smooth, strictly increasing time map per series (shared by its
                channels): the speed exp(s(u)), s interpolating K + 2 knots at evenly spaced
                points of the real length with values N(0, time_warp_sigma), integrated
                (trapezoids) and scaled so that 0 -> 0 and L - 1 -> L - 1; the series is
                resampled at the mapped times by linear interpolation. Sigma 0: the identity.
  magnitude     each channel times a smooth curve interpolating K + 2 knots at evenly spaced
  warp          points of the real length with values N(1, magnitude_warp_sigma)
                (Um et al. 2017)
  scaling       each channel of each series times one factor N(1, scaling_sigma)
  jitter        plus Gaussian noise of std jitter_sigma x the channel's std over the real
                length (so the noise follows each channel's own scale)

The ops run in that order; each one is applied to a series with its probability (`*_p`, 0
switches it off), drawn independently for every series. Knot curves interpolate "cubic"
(a natural cubic spline through the knots) or "linear". Knots sit at fractions j / (K + 1),
j = 0..K + 1, of each series' own real length, so a short and a long series get equally
smooth curves.

As a `batch_transform` (the trainer's `(x, y) -> (x, y)` convention):

    augment = SeriesAugment(SeriesSettings(jitter_p=0.5, time_warp_p=0.5), seed=0)
    x, y = augment(x, y, lengths)   # lengths: (N,) int64 on any device
    x, y = augment(x, y)            # lengths read off the zero padding

`__call__(x, y, lengths=None)`: without `lengths`, each series' length is 1 + the last time
step where some channel is non-zero (`lengths_from_padding`); a series whose real values end
in exact zeros on every channel then keeps those trailing zeros as they are, which is still
a valid augmentation. `mixes` is False: the labels come back untouched.

Determinism: as dlworkflow.train.augment, every batch draws from its own generator
(`augment.batch_generator(device, seed, epoch, batch number in the epoch)`), so the same seed
gives the same batches, a resumed run augments as an uninterrupted one (call `start_epoch` at
each epoch's start; an `on_epoch_start` callback), and the global torch RNG stream is never
touched. The functions
take a `torch.Generator` on the batch's device.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Literal

import torch

from dlworkflow.errors import ConfigError, DataError
from dlworkflow.train.augment import batch_generator

Interpolation = Literal["cubic", "linear"]
INTERPOLATIONS = ("cubic", "linear")


def lengths_from_padding(x: torch.Tensor) -> torch.Tensor:
    """(N,) int64: 1 + the last time step of each series where some channel is non-zero
    (0 for an all-zero series)."""
    nonzero = (x != 0).any(dim=1)  # (N, T)
    steps = torch.arange(1, x.shape[-1] + 1, device=x.device)
    return (nonzero * steps).amax(dim=1).to(torch.int64)


def check_batch(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """`lengths` as int64 on x's device, after checking x (N, C, T) against it. The values are
    checked while `lengths` is on the CPU (a check on the GPU would wait for it each batch)."""
    if x.dim() != 3 or not x.is_floating_point():
        raise DataError(
            "A batch of series is a float tensor (N, C, T).",
            received=f"{x.dtype} of shape {tuple(x.shape)}",
        )
    on_cpu = lengths.device.type == "cpu"
    lengths = lengths.to(dtype=torch.int64)
    if lengths.shape != (x.shape[0],):
        raise DataError(
            "lengths holds one length per series of the batch.",
            expected=f"shape ({x.shape[0]},)",
            received=f"shape {tuple(lengths.shape)}",
        )
    if on_cpu and len(lengths) and (int(lengths.min()) < 0 or int(lengths.max()) > x.shape[-1]):
        raise DataError(
            "Each series' length must lie between 0 and the padded length.",
            expected=f"0..{x.shape[-1]}",
            received=f"{int(lengths.min())}..{int(lengths.max())}",
        )
    return lengths.to(device=x.device)


def valid_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """bool (N, steps): True within each series' real length."""
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]


def _positions(lengths: torch.Tensor, steps: int, dtype: torch.dtype) -> torch.Tensor:
    """(N, T): each step's place u in [0, 1] of its series' real length (t / (L - 1));
    padding steps lie beyond 1, a series of length 0 or 1 sits at u = 0."""
    t = torch.arange(steps, device=lengths.device, dtype=dtype)[None, :]
    return t / (lengths[:, None] - 1).clamp_min(1).to(dtype)


@lru_cache(maxsize=32)
def _natural_inverse(k: int) -> torch.Tensor:
    """The inverse of tridiag(1, 4, 1) (k x k): the natural spline's moment system."""
    a = 4.0 * torch.eye(k, dtype=torch.float64)
    if k > 1:
        a += torch.diag(torch.ones(k - 1, dtype=torch.float64), 1)
        a += torch.diag(torch.ones(k - 1, dtype=torch.float64), -1)
    return torch.linalg.inv(a)


def knot_curves(values: torch.Tensor, u: torch.Tensor, kind: Interpolation) -> torch.Tensor:
    """The curves through knots at u_j = j / (K + 1), j = 0..K + 1, evaluated at u.

    values (N, M, K + 2): each curve's knot values; u (N, T): the places, clamped to [0, 1].
    Returns (N, M, T). "cubic": the natural cubic spline (second derivative 0 at both ends,
    as scipy's CubicSpline(bc_type="natural")); "linear": straight pieces.
    """
    if kind not in INTERPOLATIONS:
        raise ConfigError("Knot curves interpolate 'cubic' or 'linear'.", received=repr(kind))
    n, m, count = values.shape
    if count < 2:
        raise ConfigError("A knot curve needs 2 knots or more.", received=f"{count}")
    pieces = count - 1
    h = 1.0 / pieces
    u = u.clamp(0.0, 1.0)
    segment = (u * pieces).floor().clamp(0, pieces - 1).long()  # (N, T)
    s = (u - segment.to(u.dtype) * h) / h  # 0..1 within the segment
    index = segment[:, None, :].expand(n, m, -1)
    left = torch.gather(values, 2, index)
    right = torch.gather(values, 2, index + 1)
    s = s[:, None, :].to(values.dtype)
    curve = (1.0 - s) * left + s * right
    if kind == "linear" or count == 2:
        return curve
    # moments (second derivatives) M_j: M_0 = M_K+1 = 0 and
    # M_j-1 + 4 M_j + M_j+1 = 6 (v_j-1 - 2 v_j + v_j+1) / h^2 inside
    inverse = _natural_inverse(count - 2).to(device=values.device, dtype=values.dtype)
    second = (values[..., :-2] - 2.0 * values[..., 1:-1] + values[..., 2:]) * (6.0 / h**2)
    inner = second @ inverse.T  # the system is symmetric; (N, M, K)
    zero = torch.zeros((n, m, 1), device=values.device, dtype=values.dtype)
    moments = torch.cat([zero, inner, zero], dim=2)
    m_left = torch.gather(moments, 2, index)
    m_right = torch.gather(moments, 2, index + 1)
    r = 1.0 - s
    return curve + (h**2 / 6.0) * ((r**3 - r) * m_left + (s**3 - s) * m_right)


def resample(x: torch.Tensor, lengths: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """x (N, C, T) read at the times tau (N, T) by linear interpolation within each series'
    real length (times clamped to [0, L - 1]); the padding comes back zero."""
    n, c, steps = x.shape
    last = (lengths - 1).clamp_min(0)[:, None]  # (N, 1)
    tau = torch.minimum(tau.clamp_min(0.0), last.to(tau.dtype))
    low = tau.floor().long()
    high = torch.minimum(low + 1, last)
    frac = (tau - low.to(tau.dtype))[:, None, :].to(x.dtype)
    a = torch.gather(x, 2, low[:, None, :].expand(n, c, steps))
    b = torch.gather(x, 2, high[:, None, :].expand(n, c, steps))
    out = a + frac * (b - a)
    return out * valid_mask(lengths, steps)[:, None, :].to(x.dtype)


def jitter(
    x: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator, sigma: float
) -> torch.Tensor:
    """x plus noise N(0, (sigma x each channel's std over its real length)^2), padding kept
    zero."""
    valid = valid_mask(lengths, x.shape[-1])[:, None, :].to(x.dtype)  # (N, 1, T)
    count = lengths.clamp_min(1)[:, None].to(x.dtype)  # (N, 1)
    mean = (x * valid).sum(dim=2) / count
    var = (((x - mean[..., None]) * valid) ** 2).sum(dim=2) / count
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + noise * (sigma * var.sqrt())[..., None] * valid


def scaling_factors(
    n: int, c: int, generator: torch.Generator, sigma: float, device: torch.device
) -> torch.Tensor:
    """(N, C): one factor N(1, sigma) per series and channel."""
    return 1.0 + sigma * torch.randn((n, c), generator=generator, device=device)


def scale(
    x: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator, sigma: float
) -> torch.Tensor:
    """Each channel of each series times one factor N(1, sigma)."""
    factors = scaling_factors(x.shape[0], x.shape[1], generator, sigma, x.device)
    return x * factors[..., None].to(x.dtype)


def magnitude_curves(
    x: torch.Tensor,
    lengths: torch.Tensor,
    generator: torch.Generator,
    sigma: float,
    knots: int,
    kind: Interpolation = "cubic",
) -> torch.Tensor:
    """(N, C, T): the multiplying curves of magnitude_warp (0 on the padding). Knot values
    (N, C, knots + 2) are drawn N(1, sigma) with one randn call."""
    n, c, steps = x.shape
    values = 1.0 + sigma * torch.randn(
        (n, c, knots + 2), generator=generator, device=x.device, dtype=x.dtype
    )
    curves = knot_curves(values, _positions(lengths, steps, x.dtype), kind)
    return curves * valid_mask(lengths, steps)[:, None, :].to(x.dtype)


def magnitude_warp(
    x: torch.Tensor,
    lengths: torch.Tensor,
    generator: torch.Generator,
    sigma: float,
    knots: int,
    kind: Interpolation = "cubic",
) -> torch.Tensor:
    """Each channel times a smooth random curve through knots N(1, sigma) (module doc)."""
    return x * magnitude_curves(x, lengths, generator, sigma, knots, kind)


def time_maps(
    lengths: torch.Tensor,
    steps: int,
    generator: torch.Generator,
    sigma: float,
    knots: int,
    kind: Interpolation = "cubic",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """(N, T): each series' warped times tau(t), strictly increasing over its real length
    with tau(0) = 0 and tau(L - 1) = L - 1 (module doc); the identity for sigma 0. Log-speed
    knot values (N, 1, knots + 2) are drawn N(0, sigma) with one randn call."""
    n = lengths.shape[0]
    device = lengths.device
    values = sigma * torch.randn((n, 1, knots + 2), generator=generator, device=device, dtype=dtype)
    speed = torch.exp(knot_curves(values, _positions(lengths, steps, dtype), kind))[:, 0, :]
    valid = valid_mask(lengths, steps)
    # trapezoids between consecutive steps inside the real length (unit step)
    pair = valid[:, 1:] & valid[:, :-1]
    areas = 0.5 * (speed[:, 1:] + speed[:, :-1]) * pair.to(dtype)
    integral = torch.cat([torch.zeros((n, 1), device=device, dtype=dtype), areas], dim=1)
    integral = integral.cumsum(dim=1)  # (N, T), flat after the real length
    end = integral[:, -1:]
    last = (lengths[:, None] - 1).clamp_min(0).to(dtype)
    tau = integral * (last / end.clamp_min(torch.finfo(dtype).tiny))
    # the end exactly on its place (the scaling may round it by an ulp)
    at_end = torch.arange(steps, device=device)[None, :] == lengths[:, None] - 1
    return torch.where(at_end, last, tau)


def time_warp(
    x: torch.Tensor,
    lengths: torch.Tensor,
    generator: torch.Generator,
    sigma: float,
    knots: int,
    kind: Interpolation = "cubic",
) -> torch.Tensor:
    """Each series resampled along a smooth monotone random time map (module doc)."""
    tau = time_maps(lengths, x.shape[-1], generator, sigma, knots, kind, x.dtype)
    return resample(x, lengths, tau)


def window_starts(
    lengths: torch.Tensor, generator: torch.Generator, ratio: float, dtype: torch.dtype
) -> torch.Tensor:
    """(N,): each window's start, uniform in [0, (1 - ratio) (L - 1)]."""
    room = (1.0 - ratio) * (lengths - 1).clamp_min(0).to(dtype)
    return room * torch.rand(lengths.shape, generator=generator, device=lengths.device, dtype=dtype)


def window_slice(
    x: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator, ratio: float
) -> torch.Tensor:
    """A window of ratio x the real length (from start to start + ratio (L - 1)) stretched back
    to the real length by linear interpolation."""
    steps = x.shape[-1]
    start = window_starts(lengths, generator, ratio, x.dtype)
    tau = start[:, None] + ratio * torch.arange(steps, device=x.device, dtype=x.dtype)[None, :]
    return resample(x, lengths, tau)


@dataclass(frozen=True)
class SeriesSettings:
    """Probabilities (per series; 0 switches an op off) and strengths of the series ops."""

    window_slice_p: float = 0.0
    window_slice_ratio: float = 0.9  # the window's share of the real length
    time_warp_p: float = 0.0
    time_warp_sigma: float = 0.2  # std of the log-speed at the knots
    time_warp_knots: int = 4  # interior knots (K); K + 2 with both ends
    time_warp_kind: Interpolation = "cubic"
    magnitude_warp_p: float = 0.0
    magnitude_warp_sigma: float = 0.2  # std of the curve's knot values around 1
    magnitude_warp_knots: int = 4
    magnitude_warp_kind: Interpolation = "cubic"
    scaling_p: float = 0.0
    scaling_sigma: float = 0.1
    jitter_p: float = 0.0
    jitter_sigma: float = 0.05  # relative to each channel's std over the real length

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_p") and not 0.0 <= value <= 1.0:
                raise ConfigError(f"{f.name} is a probability (0..1).", received=f"{value}")
            if f.name.endswith("_sigma") and not value >= 0.0:
                raise ConfigError(f"{f.name} must be 0 or more.", received=f"{value}")
            if f.name.endswith("_knots") and (not isinstance(value, int) or value < 0):
                raise ConfigError(f"{f.name} is a whole number, 0 or more.", received=f"{value}")
            if f.name.endswith("_kind") and value not in INTERPOLATIONS:
                raise ConfigError(f"{f.name} must be 'cubic' or 'linear'.", received=repr(value))
        if not 0.0 < self.window_slice_ratio <= 1.0:
            raise ConfigError(
                "window_slice_ratio is the window's share of the real length, in (0, 1].",
                received=f"{self.window_slice_ratio}",
            )

    def active(self) -> list[str]:
        """The ops switched on (probability above 0), in the order they run."""
        ops = ("window_slice", "time_warp", "magnitude_warp", "scaling", "jitter")
        return [op for op in ops if getattr(self, f"{op}_p") > 0]


class SeriesAugment:
    """`(x, y[, lengths]) -> (x, y)`: the configured series ops on one batch (module doc)."""

    mixes = False

    def __init__(self, settings: SeriesSettings, *, seed: int) -> None:
        self.settings = settings
        self.seed = int(seed)
        self.epoch, self.calls = 0, 0

    def start_epoch(self, epoch: int, model: object = None, optimizer: object = None) -> None:
        """Called at each epoch's start: batches of `epoch` are numbered from 1 again."""
        self.epoch, self.calls = int(epoch), 0

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = check_batch(x, lengths_from_padding(x) if lengths is None else lengths)
        self.calls += 1
        g = batch_generator(x.device, self.seed, self.epoch, self.calls)
        s = self.settings
        with torch.no_grad():
            for op in s.active():
                # the choice is drawn before the op so the stream does not depend on it
                chosen = torch.rand(x.shape[0], generator=g, device=x.device) < getattr(
                    s, f"{op}_p"
                )
                out = self._apply(op, x, lengths, g)
                x = torch.where(chosen[:, None, None], out, x)
        return x, y

    def _apply(
        self, op: str, x: torch.Tensor, lengths: torch.Tensor, g: torch.Generator
    ) -> torch.Tensor:
        s = self.settings
        if op == "window_slice":
            return window_slice(x, lengths, g, s.window_slice_ratio)
        if op == "time_warp":
            return time_warp(x, lengths, g, s.time_warp_sigma, s.time_warp_knots, s.time_warp_kind)
        if op == "magnitude_warp":
            return magnitude_warp(
                x,
                lengths,
                g,
                s.magnitude_warp_sigma,
                s.magnitude_warp_knots,
                s.magnitude_warp_kind,
            )
        if op == "scaling":
            return scale(x, lengths, g, s.scaling_sigma)
        return jitter(x, lengths, g, s.jitter_sigma)
