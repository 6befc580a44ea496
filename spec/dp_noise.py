"""The noise a DP step's circuit adds, in integers: its fixed-point model and its exact probability mass function.

models/dp.py's transform, as ezkl 22.3 computes it at scale s (S = 2^s, rnd = Rust's f64::round, half away from
zero; tests/test_dp_noise.py checks every formula against ezkl's own witness). From the W words a_i and the angle
b of one normal, integers on the grid k/S (u = frac(v + r)):

    k = leading zero words among a_1..a_{W-1}, m = the first nonzero word (1 if all W are 0)
    L = rnd(S ln(m / S))                 Ln lookup at input scale S
    X = 2 (k rnd(S ln S) - L)            ln S quantized at the param scale; k a 0/1 sum, so exact
    R = rnd(sqrt(S X))                   ezkl sqrt (a witness checked to be the rounded optimum)
    A = rnd(rnd(2 pi S) b / S)           2 pi at the param scale, the product rescaled
    K = rnd(S cos(A / S))                Cos lookup
    Z = rnd(R K / S)                     z = Z / S
    N = rnd(rnd(SIGMA C S) Z / S)        SIGMA C z in quanta
    N + c - S/2                          what the step adds to the clipped gradients' sum, in quanta: the dither
                                         c (a uniform word, 0..S-1) fills the gaps between N's values (SIGMA C > 1
                                         makes them wider than a quantum) and smooths N's uneven mass

With the words uniform and independent, k = j < W-1 and m in 1..S-1 has probability S^-(j+1) (j zero words, then
m); k = W-1 takes the rest: m in 1..S-1 at S^-W each, and the all-zero words (m = 1) at S^-W more. b is uniform on
0..S-1, and so is c. The pmf below sums these exactly (spec/accountant.py takes ε from it).
"""
from __future__ import annotations

import math

import numpy as np

from zkpot.spec.dp import WORDS


def rnd(t):
    """Rust's f64::round: half away from zero."""
    return np.sign(t) * np.floor(np.abs(t) + 0.5)


def rnd_div(a, d: int):
    """rnd(a / d) of integers, exactly."""
    a = np.asarray(a, dtype=np.int64)
    return np.sign(a) * ((np.abs(a) + d // 2) // d)


def leading(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(k, m) of W x n integer words (row i: word i + 1 of each normal): the leading zero words among the first
    W - 1, and the first nonzero word (1 when all are 0: the circuit's clamp of w to 1/S)."""
    words = np.asarray(words, dtype=np.int64)
    zero = np.cumprod(words == 0, axis=0)                # zero[i]: words 0..i all 0
    k = zero[:-1].sum(axis=0)
    first = np.minimum((words != 0).argmax(axis=0), words.shape[0] - 1)
    m = words[first, np.arange(words.shape[1])]
    return k, np.maximum(m, 1)


def fixed_point_z(k, m, angle, scale: int) -> np.ndarray:
    """Z = z * S the circuit computes for level k, first nonzero word m (clamped to >= 1) and angle b (module
    docstring)."""
    S = 2 ** scale
    k, m, angle = (np.asarray(t, dtype=np.int64) for t in (k, m, angle))
    L = rnd(np.log(m / S) * S).astype(np.int64)
    X = 2 * (k * int(rnd(S * math.log(S))) - L)
    R = rnd(np.sqrt(S * X.astype(np.float64))).astype(np.int64)
    A = rnd_div(int(rnd(2 * math.pi * S)) * angle, S)
    K = rnd(S * np.cos(A / S)).astype(np.int64)
    return rnd_div(R * K, S)


def noise_quanta(z: np.ndarray, sigma_c: float, scale: int) -> np.ndarray:
    """N = rnd(rnd(SIGMA C S) Z / S): the noise in quanta, SIGMA * C quantized at the param scale."""
    S = 2 ** scale
    return rnd_div(int(rnd(sigma_c * S)) * np.asarray(z, dtype=np.int64), S)


def noise_weights(scale: int, sigma_c: float, words: int = WORDS) -> tuple[np.ndarray, list[int], int]:
    """(values, numerators, denominator): P(N + c - S/2 = values[i]) = numerators[i] / denominator exactly (Python
    ints, denominator S^(words + 2))."""
    S = 2 ** scale
    m, b = np.meshgrid(np.arange(1, S), np.arange(S), indexing="ij")
    per_level = [noise_quanta(fixed_point_z(np.full(m.size, j), m.ravel(), b.ravel(), scale), sigma_c, scale)
                 for j in range(words)]
    per_level.append(noise_quanta(fixed_point_z(np.full(S, words - 1), np.ones(S), np.arange(S), scale), sigma_c,
                                  scale))   # the all-zero words
    lo = int(min(n.min() for n in per_level))
    num = [0] * (int(max(n.max() for n in per_level)) - lo + 1)
    for j, n in enumerate(per_level):          # level j: S^-(j+1) per m, 1/S per angle; all-zero: S^-words
        weight = S ** (words - 1 - min(j, words - 1))
        counts = np.bincount(n - lo, minlength=len(num))
        for i in np.flatnonzero(counts):
            num[i] += int(counts[i]) * weight
    # the dither: each value spread over value + (0 - S/2 .. S-1 - S/2), 1/S each (a running sum of width S)
    spread, running = [0] * (len(num) + S - 1), 0
    for i in range(len(spread)):
        running += (num[i] if i < len(num) else 0) - (num[i - S] if i >= S else 0)
        spread[i] = running
    values = np.arange(lo - S // 2, lo - S // 2 + len(spread))
    keep = [i for i, n in enumerate(spread) if n]
    return values[keep], [spread[i] for i in keep], S ** (words + 2)


def noise_pmf(scale: int, sigma_c: float, words: int = WORDS) -> tuple[np.ndarray, np.ndarray]:
    """(values, probs): the noise the step adds, in quanta, and its probability mass. Each prob is the float64 of
    an exact rational whose numerator < 2^(scale (words + 2)) is converted once (relative error <= 2^-53)."""
    values, num, den = noise_weights(scale, sigma_c, words)
    return values, np.array([n / den for n in num])


__all__ = ["WORDS", "fixed_point_z", "leading", "noise_pmf", "noise_quanta", "noise_weights", "rnd", "rnd_div"]
