"""ε at δ from the claims alone, for the noise a DP step's circuit adds (spec/dp_noise.py; docs/dp.md, "ε").

The mechanism of one step, in quanta of 2^-scale: y = G(D) + N, G the sum over the batch of the per-example clipped
gradients (integers), N iid on each of the P trained coordinates with the circuit's exact pmf p; all else is
post-processing. Neighbours replace one example: ||G(D) - G(D')||_2 <= l2_quanta (the caller's proven bound,
2 C' 2^scale), and the schedule is a fixed partition: an example is in one step per epoch, so `epochs` steps
compose, with no amplification by subsampling.

p is bounded and discrete, so any shift d gives points of infinite privacy loss, and its tails are uneven. For
every shift d, a bad set B_d (the points of largest loss, infinite ones first, at most `budget` of p's mass) is cut:
conditioned on no coordinate landing in its B_d, the steps are the adaptive composition of the conditioned kernels,
and P(E) <= P(E | good) + P(bad) <= e^ε Q(E) + δ_rdp + δ_tail. The conditioned Rényi divergences f_α(d) are exact
sums over p; the worst shift vector Δ in Z^P with ||Δ||² <= D² has Σ f_α(Δ_i) <= n g_α(D² / n), g_α the least
concave majorant of t -> max_{d² <= t} f_α(d), n = min(P, D²) its nonzero coordinates (Jensen). RDP then becomes
(ε, δ) by dp-accounting's conversion.
"""
from __future__ import annotations

import math
from functools import lru_cache
from importlib.metadata import version

import numpy as np
from scipy.special import logsumexp

from zkpot.spec import dp_noise

ORDERS = (1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0, 20.0, 24.0, 32.0, 48.0, 64.0,
          128.0, 256.0)
TAIL_FRACTION = 0.1    # of δ, the cut tails' budget (raised to the infinite-loss mass if that is larger)


@lru_cache(maxsize=8)
def _pmf(scale: int, sigma_c: float, words: int) -> tuple[np.ndarray, np.ndarray]:
    return dp_noise.noise_pmf(scale, sigma_c, words)


def shift_divergences(values: np.ndarray, probs: np.ndarray, shift: int, orders, budget: float
                      ) -> tuple[np.ndarray, float]:
    """(f_α for each order, the cut mass) of p against p shifted by `shift`: the points of largest privacy loss,
    infinite ones first, cut while their mass stays <= budget; inf if the infinite ones alone weigh more."""
    lo = values[0]
    dense = np.zeros(values[-1] - lo + 1)
    dense[values - lo] = probs
    src = values - shift - lo                              # p_d(x) = p(x - d)
    inside = (src >= 0) & (src < dense.size)
    q = np.where(inside, dense[np.clip(src, 0, dense.size - 1)], 0.0)
    with np.errstate(divide="ignore"):
        lp, lq = np.log(probs), np.log(q)
    loss = lp - lq
    order = np.argsort(-loss, kind="stable")
    cut = np.cumsum(probs[order]) <= budget
    n_inf = int(np.isinf(loss).sum())
    if n_inf and not cut[n_inf - 1]:
        return np.full(len(orders), np.inf), float(probs[np.isinf(loss)].sum())
    keep = np.ones(len(values), bool)
    keep[order[cut]] = False
    mass = float(probs[~keep].sum())
    a = np.asarray(orders)[:, None]
    lp_c = lp[keep] - math.log1p(-mass)                    # p conditioned on the good set
    return logsumexp(a * lp_c + (1 - a) * lq[keep], axis=1) / (a[:, 0] - 1), mass


def infinite_mass(values: np.ndarray, probs: np.ndarray, shift: int) -> float:
    """p's mass where p shifted by `shift` has none: privacy loss infinite, so cut into δ whatever the budget."""
    return float(probs[~np.isin(values - shift, values)].sum())


def concave_bound(t: np.ndarray, y: np.ndarray, at: float) -> float:
    """The least concave majorant at `at` of the points (0, 0), (t_i, y_i) (t increasing), y made non-decreasing
    first: the best chord over two points straddling `at` (or the maximum, past the last)."""
    t, y = np.concatenate([[0.0], t]), np.maximum.accumulate(np.concatenate([[0.0], y]))
    if at >= t[-1]:
        return float(y[-1])
    i, j = np.flatnonzero(t <= at), np.flatnonzero(t >= at)
    ti, tj, yi, yj = t[i][:, None], t[j][None, :], y[i][:, None], y[j][None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        chord = np.where(tj > ti, yi + (yj - yi) * (at - ti) / (tj - ti), np.maximum(yi, yj))
    return float(np.max(chord))


def rdp_of_step(values: np.ndarray, probs: np.ndarray, l2_quanta: float, params: int, budget: float,
                orders=ORDERS) -> tuple[np.ndarray, float]:
    """(RDP at each order, tail mass) of one step, noise pmf (values, probs) on every coordinate, for the worst
    shift vector; each coordinate's cut mass <= budget."""
    dmax = int(math.floor(l2_quanta))
    if dmax < 1:
        return np.zeros(len(orders)), 0.0
    n = min(params, dmax * dmax)
    f = np.zeros((dmax, len(orders)))
    tail = 0.0
    for d in range(1, dmax + 1):
        for sign in (1, -1):
            fd, mass = shift_divergences(values, probs, sign * d, orders, budget)
            f[d - 1] = np.maximum(f[d - 1], fd)
            tail = max(tail, mass)
    if not np.isfinite(f).all():
        return np.full(len(orders), np.inf), tail
    t = np.arange(1, dmax + 1, dtype=float) ** 2
    rdp = np.array([n * concave_bound(t, f[:, i], l2_quanta ** 2 / n) for i in range(len(orders))])
    return rdp, n * tail


def gaussian_epsilon(noise_multiplier: float, epochs: int, delta: float, orders=ORDERS) -> float:
    """The continuous Gaussian mechanism's ε (noise std / L2 sensitivity = noise_multiplier), composed `epochs`
    times, by dp-accounting's RDP accountant at the same orders."""
    import dp_accounting
    from dp_accounting.rdp import RdpAccountant

    acc = RdpAccountant(list(orders))
    acc.compose(dp_accounting.GaussianDpEvent(noise_multiplier), epochs)
    return acc.get_epsilon(delta)


def epsilon_of_pmf(values: np.ndarray, probs: np.ndarray, l2_quanta: float, params: int, epochs: int,
                   delta: float, tail_fraction: float = TAIL_FRACTION, orders=ORDERS) -> dict:
    """ε at δ of `epochs` compositions of y = G + N, N iid with pmf (values: increasing integers, probs) on each of
    `params` coordinates, ||G(D) - G(D')||_2 <= l2_quanta (module docstring)."""
    from dp_accounting.rdp.rdp_privacy_accountant import compute_epsilon

    if not (l2_quanta >= 0 and params >= 1 and epochs >= 1 and 0 < delta < 1 and 0 < tail_fraction < 1):
        raise ValueError(f"no ε for l2_quanta={l2_quanta}, params={params}, epochs={epochs}, delta={delta}")
    values, probs = np.asarray(values), np.asarray(probs)
    dmax = max(1, int(math.floor(l2_quanta)))
    n = epochs * min(params, dmax * dmax)
    must = max(infinite_mass(values, probs, d) for d in range(-dmax, dmax + 1))   # cut whatever the budget
    budget = max(must, tail_fraction * delta / n)
    rdp, tail = rdp_of_step(values, probs, l2_quanta, params, budget, orders) if n * must < delta else (None, must)
    delta_tail = min(1.0, epochs * tail)
    eps, order = (compute_epsilon(list(orders), list(epochs * rdp), delta - delta_tail)
                  if rdp is not None and np.isfinite(rdp).all() and delta_tail < delta else (math.inf, None))
    return {"epsilon": float(eps), "delta": delta, "delta_tails": delta_tail, "order": order,
            "orders": list(orders), "rdp": None if rdp is None else (epochs * rdp).tolist(),
            "accountant": f"zkpot exact-pmf RDP, RDP to (ε, δ) by dp-accounting {version('dp-accounting')}"}


def epsilon(scale: int, sigma: float, clip: float, l2_quanta: float, params: int, epochs: int, delta: float,
            words: int = dp_noise.WORDS, tail_fraction: float = TAIL_FRACTION, orders=ORDERS) -> dict:
    """ε at δ of `epochs` epochs of DP-SGD steps whose circuit adds N (spec/dp_noise, SIGMA * C = sigma * clip) to
    every one of `params` coordinates of a clipped-gradient sum of L2 sensitivity `l2_quanta` in quanta of
    2^-scale (replace-one: 2 C' 2^scale, C' a proven bound on a clipped row's norm)."""
    if not (sigma >= 0 and clip > 0):
        raise ValueError(f"no ε for sigma={sigma}, clip={clip}")
    values, probs = _pmf(scale, float(sigma * clip), words)
    out = epsilon_of_pmf(values, probs, l2_quanta, params, epochs, delta, tail_fraction, orders)
    return {**out, "noise_quanta": int(dp_noise.rnd(sigma * clip * 2 ** scale)), "words": words, "scale": scale}


__all__ = ["ORDERS", "TAIL_FRACTION", "concave_bound", "epsilon", "epsilon_of_pmf", "gaussian_epsilon", "infinite_mass", "rdp_of_step",
           "shift_divergences"]
