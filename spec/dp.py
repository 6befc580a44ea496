"""DP-SGD claims as a format: run.dp's shape, the uniforms a step draws, and the sensitivity the proved clipping gives.

run.dp = {clip: C, noise: SIGMA, delta: D}      the step adds SIGMA * C * z to the clipped sum (models/dp.py);
                                               the verifier derives epsilon at D (spec/accountant.py)

A fact of the layout is written here once: models/dp.py draws these uniforms, the verifier derives the
challenge's length from them, spec/layout.py counts a DP step's inputs with them.
"""
from __future__ import annotations

import math

from zkpot.spec.errors import need
from zkpot.spec.protocol import SALT_WORDS

KEYS = ("clip", "noise", "delta")
WORDS = 8                          # Box-Muller's u1 from 8 uniforms of `scale` bits (64 bits at scale 8): |z| <= 9.42
UNIFORMS_PER_PARAM = WORDS + 2     # and one for the angle, one for the dither (models/dp.py: the layout)
MAX_SIGMA = 1e3
DEFAULT_DELTA = 1e-5


def check_shape(dp, check: str = "manifest") -> None:
    """run.dp's types and ranges (hostile input)."""
    need(check, isinstance(dp, dict) and set(dp) == set(KEYS), f"run.dp must be exactly {{{', '.join(KEYS)}}}")
    ok = all(isinstance(dp[k], (int, float)) and not isinstance(dp[k], bool) and math.isfinite(dp[k]) for k in KEYS)
    need(check, ok and 0 < dp["clip"] <= 1e4 and 0 < dp["noise"] <= MAX_SIGMA and 0 < dp["delta"] < 1,
         f"run.dp must give clip in (0, 10000], noise in (0, {MAX_SIGMA:g}] and delta in (0, 1) as numbers")


def uniforms(n_params: int) -> int:
    """The uniforms one step draws: WORDS for u1, an angle and a dither per trained parameter."""
    return UNIFORMS_PER_PARAM * n_params


def noise_length(n_params: int) -> int:
    """A step's noise input: the secret uniforms v, then their salt (its hash is the noise commitment)."""
    return uniforms(n_params) + SALT_WORDS


def challenge_length(n_params: int) -> int:
    """A step's challenge input: the public uniforms r (no salt: the verifier hashes them itself)."""
    return uniforms(n_params)


def norm_slack(clip: float, n_params: int, scale: int) -> float:
    """What the circuit adds to its computed norm before clipping, so the factor it applies is never above C / |g|
    whatever way the prover rounds (each rescale is free by less than a quantum q = 2^-scale): P rounded squares
    lose < P q, so |g| <= sqrt(sum) + sqrt(P q); the square root loses < q; the constant 1/C is quantized (C q
    covers it); on the grid, rounded up."""
    q = 2.0 ** -scale
    return math.ceil((2 * q + math.sqrt(n_params * q) + clip * q) / q) * q


def sensitivity_quanta(clip: float, n_params: int, scale: int) -> int:
    """A proved bound on how far replacing one example moves the clipped sum, in quanta (L2): each clipped row
    has norm <= C + sqrt(P) q (the factor is <= C / |g|, and each of its P products rounds by < q), and a
    replacement removes one row and adds another."""
    return math.ceil(2 * (clip * 2 ** scale + math.sqrt(n_params)))


def challenge(randomness: bytes, root: bytes, step: int, n_params: int, scale: int) -> list[str]:
    """Step `step`'s public uniforms r = k / 2^scale, as the field elements k the circuit takes: from the beacon
    round's randomness and the root of every step's noise commitment (spec/beacon.challenge_words says why both)."""
    from zkpot.spec.beacon import challenge_words
    from zkpot.spec.felts import int_to_felt

    return [int_to_felt(k) for k in challenge_words(randomness, root, step, challenge_length(n_params), scale)]
