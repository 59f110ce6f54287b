"""The two-sample statistics of `dlw monitor` (numpy and scipy; bootstrap draws as evaluate's).

Every test compares a reference sample (the champion's predictions on the validation split)
with a live sample (the prediction log) and returns an `Outcome`: a statistic, a p-value that
is valid under "live and reference come from the same distribution", and an effect size in
the unit its alert threshold uses. The p-values are meant for a Bonferroni correction over the
checks that run (dlworkflow.monitor.drift), so every test is exact or conservative:

- `ks_test`: two-sample Kolmogorov-Smirnov (conservative for discrete features).
- `psi`: population stability index on reference-quantile bins (an effect size, no p-value).
- `mmd_test`: unbiased MMD^2 with an RBF kernel (median heuristic) and a permutation p-value;
  given the level it must resolve, it runs as many permutations as that level needs, and
  stops early once the answer cannot reach it.
- `class_shift`: chi-square test of the predicted-class shares (rare classes pooled), with the
  total variation distance as its effect.
- `confidence_drop`: one-sided Mann-Whitney U (live confidence lower), effect = drop of the
  mean.
- `knn_distances` + `ood_rate_test`: out-of-distribution score = distance to the k-th nearest
  reference embedding (leave-one-out on the reference itself); threshold = the reference's
  (1 - rate) quantile; the live exceedance count is tested against its exact null
  distribution, beta-binomial, which accounts for the threshold being estimated from a
  finite reference (a plain binomial test would not, and false-alarms too often).
- `wilson_bound` / `bootstrap_bound`: the live metric with labels, as a one-sided bound and a
  p-value of "the live metric is at least `floor`".
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dlworkflow.evaluate.scores import resample_counts

PSI_BINS = 10
PSI_EPS = 1e-4
OOD_K = 5
MIN_EXPECTED = 5.0  # chi-square: classes expected less often than this are pooled
MAX_PERMUTATIONS = 20_000
PERMUTATION_BATCH = 256
KNN_CHUNK = 1024
MEDIAN_POINTS = 1000  # the median heuristic looks at the pairs of at most this many points


@dataclass(frozen=True)
class Outcome:
    """One test: its statistic, p-value (None: no test, an effect only) and effect size."""

    statistic: float
    p_value: float | None
    effect: float
    details: dict[str, Any] = field(default_factory=dict)


def _clean(values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    return array[np.isfinite(array)]


def _p(value: float) -> float:
    """A p-value in [0, 1]; NaN (no variation at all on either side) reads as 1."""
    return 1.0 if not math.isfinite(value) else float(min(max(value, 0.0), 1.0))


# ---- input features -----------------------------------------------------------------------
def ks_test(reference: Any, live: Any) -> Outcome:
    """Two-sample Kolmogorov-Smirnov; effect = the statistic D (largest CDF gap)."""
    from scipy.stats import ks_2samp

    ref, cur = _clean(reference), _clean(live)
    if len(ref) == 0 or len(cur) == 0:
        return Outcome(0.0, 1.0, 0.0, {"n_reference": len(ref), "n_live": len(cur)})
    if np.ptp(ref) == 0 and np.ptp(cur) == 0 and ref[0] == cur[0]:
        return Outcome(0.0, 1.0, 0.0, {"n_reference": len(ref), "n_live": len(cur)})
    result = ks_2samp(ref, cur, method="asymp" if len(ref) * len(cur) > 250_000 else "auto")
    return Outcome(
        float(result.statistic),
        _p(float(result.pvalue)),
        float(result.statistic),
        {"n_reference": len(ref), "n_live": len(cur)},
    )


def psi(reference: Any, live: Any, *, bins: int = PSI_BINS, eps: float = PSI_EPS) -> float:
    """Population stability index sum((q - p) * ln(q / p)) of a numeric feature.

    Bins: the reference's deciles (deduplicated). A feature with at most `bins` distinct
    reference values (sizes, counts) gets one bin per value and one for anything else, so a
    live value the reference never had is drift, not noise. Empty bins count as `eps`.
    """
    ref, cur = _clean(reference), _clean(live)
    if len(ref) == 0 or len(cur) == 0:
        return 0.0
    distinct = np.unique(ref)
    if len(distinct) <= bins:
        ref_bins = np.searchsorted(distinct, ref)
        pos = np.clip(np.searchsorted(distinct, cur), 0, len(distinct) - 1)
        cur_bins = np.where(distinct[pos] == cur, pos, len(distinct))
        n_bins = len(distinct) + 1
    else:
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
        ref_bins = np.searchsorted(edges, ref, side="right")
        cur_bins = np.searchsorted(edges, cur, side="right")
        n_bins = len(edges) + 1
    return psi_of_counts(
        np.bincount(ref_bins, minlength=n_bins), np.bincount(cur_bins, minlength=n_bins), eps=eps
    )


def psi_of_counts(reference: np.ndarray, live: np.ndarray, *, eps: float = PSI_EPS) -> float:
    """PSI of two count vectors over the same bins (categorical features)."""
    p = np.maximum(np.asarray(reference, np.float64) / max(np.sum(reference), 1), eps)
    q = np.maximum(np.asarray(live, np.float64) / max(np.sum(live), 1), eps)
    return float(np.sum((q - p) * np.log(q / p)))


def category_test(reference: list[Any], live: list[Any], *, eps: float = PSI_EPS) -> Outcome:
    """A categorical feature: chi-square of the category shares (as `class_shift`), effect
    = PSI over the categories (a live category the reference lacks has reference share 0)."""
    shift = class_shift(reference, live)
    keys = shift.details["categories"]
    ref_counts = np.array([shift.details["reference_counts"][k] for k in keys])
    live_counts = np.array([shift.details["live_counts"][k] for k in keys])
    value = psi_of_counts(ref_counts, live_counts, eps=eps)
    return Outcome(shift.statistic, shift.p_value, value, {**shift.details, "psi": value})


# ---- embeddings: maximum mean discrepancy -------------------------------------------------
def _sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d2, 0.0)


def _subsample(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return x if len(x) <= n else x[np.sort(rng.choice(len(x), size=n, replace=False))]


def _median_heuristic(
    d2: np.ndarray, rng: np.random.Generator, points: int = MEDIAN_POINTS
) -> float:
    """Median squared distance between pooled points (all pairs, or the pairs among a random
    `points` of them: the pooled set only, never which side a row is on)."""
    pick = np.arange(len(d2)) if len(d2) <= points else rng.choice(len(d2), points, replace=False)
    upper = d2[np.ix_(pick, pick)][np.triu_indices(len(pick), k=1)]
    value = float(np.median(upper))
    return value if value > 0 else (float(upper.mean()) or 1.0)


def _mmd_u(
    kernel_u: np.ndarray, u: np.ndarray, rowsum: np.ndarray, total: float, n: int, m: int
) -> np.ndarray:
    """Unbiased MMD^2 for each row of the 0/1 membership matrix u (B, N) of the first sample;
    kernel_u = u @ K0 with K0 the kernel matrix with a zero diagonal."""
    sxx = np.einsum("bn,bn->b", kernel_u, u)
    sxy = u @ rowsum - sxx
    syy = total - sxx - 2.0 * sxy
    return sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2.0 * sxy / (n * m)


def mmd_test(
    reference: Any,
    live: Any,
    *,
    permutations: int = 200,
    max_samples: int = 400,
    seed: int = 0,
    resolve: float | None = None,
) -> Outcome:
    """RBF-kernel MMD^2 (unbiased) with a permutation p-value = (1 + #{perm >= observed}) /
    (1 + #perms), on a seeded subsample of at most `max_samples` rows per side.

    The bandwidth is the median pairwise distance of the pooled sample (the median
    heuristic; it does not depend on which rows are labelled live, so the permutation test
    stays exact). `permutations` run first; with `resolve` (the level the p-value is compared
    with, e.g. alpha / m), permutations continue up to ceil(2 / resolve) - 1 (at most 20,000)
    while the p-value can still end below `resolve`, and stop as soon as it cannot. A p-value
    below `resolve` therefore always comes from the full count, and P(p < resolve) <= resolve
    under the null. Effect = sqrt(max(MMD^2, 0)), the distance between the kernel means.
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(live, dtype=np.float64)
    x, y = _subsample(x, max_samples, rng), _subsample(y, max_samples, rng)
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        return Outcome(0.0, 1.0, 0.0, {"n_reference": n, "n_live": m, "permutations": 0})
    z = np.concatenate([x, y])
    kernel = _sq_distances(z, z)
    bandwidth2 = _median_heuristic(kernel, rng)
    kernel *= -1.0 / (2.0 * bandwidth2)
    np.exp(kernel, out=kernel)
    np.fill_diagonal(kernel, 0.0)
    rowsum = kernel.sum(1)
    total = float(rowsum.sum())
    first = np.zeros((1, n + m))
    first[0, :n] = 1.0
    observed = float(_mmd_u(first @ kernel, first, rowsum, total, n, m)[0])
    tolerance = 1e-12 * max(abs(observed), 1e-300)
    target = int(permutations)
    cap = target
    if resolve is not None and resolve > 0:
        cap = max(target, min(MAX_PERMUTATIONS, math.ceil(2.0 / resolve) - 1))
    done = count = 0
    while done < cap:
        if done >= target and (count + 1) > resolve * (cap + 1):  # type: ignore[operator]
            break  # the p-value can no longer end below `resolve`
        batch = min(PERMUTATION_BATCH, cap - done)
        order = np.argsort(rng.random((batch, n + m)), axis=1)[:, :n]
        u = np.zeros((batch, n + m))
        u[np.arange(batch)[:, None], order] = 1.0
        stats = _mmd_u(u @ kernel, u, rowsum, total, n, m)
        count += int(np.count_nonzero(stats >= observed - tolerance))
        done += batch
    p_value = (count + 1) / (done + 1)
    return Outcome(
        observed,
        p_value,
        math.sqrt(max(observed, 0.0)),
        {
            "n_reference": n,
            "n_live": m,
            "permutations": done,
            "bandwidth": math.sqrt(bandwidth2),
            "exceeding": count,
        },
    )


# ---- predictions --------------------------------------------------------------------------
def class_shift(reference: list[Any], live: list[Any]) -> Outcome:
    """Chi-square test of homogeneity of the predicted-class shares (2 x K table; classes
    expected fewer than 5 times in either row are pooled into one cell); effect = total
    variation distance 0.5 * sum |share_live - share_reference| over the unpooled classes."""
    from scipy.stats import chi2

    ref_keys, ref_n = np.unique(np.asarray(reference, dtype=str), return_counts=True)
    cur_keys, cur_n = np.unique(np.asarray(live, dtype=str), return_counts=True)
    keys = sorted(set(ref_keys.tolist()) | set(cur_keys.tolist()))
    ref_counts = dict(zip(ref_keys.tolist(), ref_n.tolist()))
    cur_counts = dict(zip(cur_keys.tolist(), cur_n.tolist()))
    a = np.array([ref_counts.get(k, 0) for k in keys], dtype=np.float64)
    b = np.array([cur_counts.get(k, 0) for k in keys], dtype=np.float64)
    details: dict[str, Any] = {
        "categories": keys,
        "reference_counts": {k: int(ref_counts.get(k, 0)) for k in keys},
        "live_counts": {k: int(cur_counts.get(k, 0)) for k in keys},
    }
    if a.sum() == 0 or b.sum() == 0:
        return Outcome(0.0, 1.0, 0.0, {**details, "dof": 0})
    tv = 0.5 * float(np.abs(a / a.sum() - b / b.sum()).sum())
    table = np.vstack([a, b])
    expected = table.sum(0)[None, :] * table.sum(1)[:, None] / table.sum()
    rare = expected.min(axis=0) < MIN_EXPECTED
    if rare.any():
        table = np.column_stack([table[:, ~rare], table[:, rare].sum(1)])
    table = table[:, table.sum(0) > 0]
    if table.shape[1] < 2:
        return Outcome(0.0, 1.0, tv, {**details, "dof": 0})
    expected = table.sum(0)[None, :] * table.sum(1)[:, None] / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    dof = table.shape[1] - 1
    return Outcome(statistic, _p(float(chi2.sf(statistic, dof))), tv, {**details, "dof": dof})


def confidence_drop(reference: Any, live: Any) -> Outcome:
    """One-sided Mann-Whitney U (live confidence stochastically lower than the reference's);
    effect = mean reference confidence - mean live confidence."""
    from scipy.stats import mannwhitneyu

    ref, cur = _clean(reference), _clean(live)
    if len(ref) == 0 or len(cur) == 0:
        return Outcome(0.0, 1.0, 0.0, {})
    drop = float(ref.mean() - cur.mean())
    details = {"reference_mean": float(ref.mean()), "live_mean": float(cur.mean())}
    if np.ptp(np.concatenate([ref, cur])) == 0:
        return Outcome(0.0, 1.0, drop, details)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = mannwhitneyu(cur, ref, alternative="less", method="asymptotic")
    return Outcome(float(result.statistic), _p(float(result.pvalue)), drop, details)


# ---- out-of-distribution rate -------------------------------------------------------------
def knn_distances(
    reference: Any, query: Any | None = None, *, k: int = OOD_K, chunk: int = KNN_CHUNK
) -> np.ndarray:
    """Euclidean distance of each query row to its k-th nearest reference row. Without
    `query`: the reference's own rows, leaving each row out of its own neighbours."""
    ref = np.asarray(reference, dtype=np.float64)
    leave_one_out = query is None
    rows = ref if query is None else np.asarray(query, dtype=np.float64)
    k = max(1, min(int(k), len(ref) - (1 if leave_one_out else 0)))
    if len(ref) - (1 if leave_one_out else 0) < 1:
        return np.full(len(rows), np.nan)
    ref_sq = (ref * ref).sum(1)
    out = np.empty(len(rows))
    for start in range(0, len(rows), chunk):
        block = rows[start : start + chunk]
        d2 = (block * block).sum(1)[:, None] + ref_sq[None, :] - 2.0 * (block @ ref.T)
        if leave_one_out:
            d2[np.arange(len(block)), start + np.arange(len(block))] = np.inf
        out[start : start + len(block)] = np.partition(d2, k - 1, axis=1)[:, k - 1]
    return np.sqrt(np.maximum(out, 0.0))


def ood_rate_test(reference_scores: Any, live_scores: Any, *, rate: float) -> Outcome:
    """Live out-of-distribution rate against the reference's.

    The threshold is the k-th largest reference score, k = max(1, round(rate * (n + 1))), so
    the reference flags about `rate` of itself. Under the null (live scores distributed as
    the reference's), the chance that a new score exceeds that order statistic is
    Beta(k, n + 1 - k), and the number of live scores above it is beta-binomial: the exact
    null of the count (ties make it conservative). p = P(X >= observed); effect = live rate
    - k / (n + 1), the expected rate.
    """
    ref, cur = _clean(reference_scores), _clean(live_scores)
    n, m = len(ref), len(cur)
    if n == 0 or m == 0:
        return Outcome(0.0, 1.0, 0.0, {"n_reference": n, "n_live": m})
    k = int(min(n, max(1, round(rate * (n + 1)))))
    threshold = float(np.sort(ref)[n - k])
    exceed = int(np.count_nonzero(cur > threshold))
    expected = k / (n + 1)
    p_value = _betabinom_tail(exceed, m, k, n + 1 - k) if exceed > 0 else 1.0
    live_rate = exceed / m
    return Outcome(
        live_rate,
        _p(p_value),
        live_rate - expected,
        {
            "threshold": threshold,
            "reference_rate": expected,
            "live_rate": live_rate,
            "exceeding": exceed,
            "n_reference": n,
            "n_live": m,
            "k_top": k,
        },
    )


def _betabinom_tail(x: int, m: int, a: float, b: float) -> float:
    """P(X >= x) for X ~ BetaBinomial(m, a, b), summed in log space: the tail far from the
    mean stays accurate (1 - cdf loses everything below ~1e-16)."""
    from scipy.special import logsumexp
    from scipy.stats import betabinom

    values = np.arange(x, m + 1)
    return float(min(1.0, math.exp(logsumexp(betabinom.logpmf(values, m, a, b)))))


def ood_flags(scores: Any, threshold: float) -> np.ndarray:
    return np.asarray(scores, dtype=np.float64) > threshold


# ---- the live metric with labels ----------------------------------------------------------
def wilson_bound(successes: int, n: int, *, floor: float, level: float) -> Outcome:
    """A proportion (accuracy) against `floor`: the Wilson score interval at confidence
    1 - 2 * level (so its upper bound is a one-sided level-`level` bound) and the score
    test's one-sided p-value of "the true proportion is at least `floor`" (the two agree:
    upper < floor exactly when p < level). statistic = the observed proportion."""
    from scipy.stats import norm

    if n <= 0:
        return Outcome(float("nan"), None, 0.0, {"n": 0})
    phat = successes / n
    z = float(norm.isf(level))
    center = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low, high = max(0.0, center - half), min(1.0, center + half)
    if floor <= 0:
        p_value = 1.0
    elif floor >= 1:
        p_value = 0.0 if phat < 1 else 1.0
    else:
        p_value = float(norm.cdf((phat - floor) / math.sqrt(floor * (1 - floor) / n)))
    return Outcome(phat, _p(p_value), 0.0, {"interval": [low, high], "n": n, "method": "wilson"})


def bootstrap_bound(
    metric: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    floor: float,
    level: float,
    seed: int = 0,
    resamples: int = 1000,
) -> Outcome:
    """Any metric against `floor` by the percentile bootstrap: `metric(weights)` maps (B, n)
    draw counts to B values (a row of ones is the point estimate). At least ceil(2 / level)
    resamples (at most 20,000) so the tail can be resolved. The interval has confidence
    1 - 2 * level; p = (1 + #{resampled value >= floor}) / (1 + B), which is below `level`
    essentially when the upper bound is below `floor`."""
    if n <= 0:
        return Outcome(float("nan"), None, 0.0, {"n": 0})
    b = int(min(MAX_PERMUTATIONS, max(resamples, math.ceil(2.0 / level))))
    point = float(metric(np.ones((1, n)))[0])
    values = np.concatenate([metric(w) for w in resample_counts(n, n_resamples=b, seed=seed)])
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return Outcome(point, None, 0.0, {"n": n, "method": "bootstrap"})
    low, high = np.quantile(values, [level, 1.0 - level])
    p_value = (1 + np.count_nonzero(values >= floor)) / (1 + len(values))
    return Outcome(
        point,
        _p(float(p_value)),
        0.0,
        {
            "interval": [float(low), float(high)],
            "n": n,
            "method": "bootstrap",
            "resamples": int(len(values)),
        },
    )
