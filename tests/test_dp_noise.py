"""The DP step's noise, exactly (issue 26): spec/dp_noise.py's integer model is what ezkl's circuit computes, value
for value, and its pmf is the distribution the accountant (spec/accountant.py) takes ε from; the accountant's ε
behaves as ε must (falls with SIGMA, grows with epochs, infinite without noise) and stays within a stated factor
of, and never below, the continuous Gaussian mechanism's."""
from __future__ import annotations

import math

import ezkl
import numpy as np
import pytest
import torch

from zkpot.circuits import pipeline
from zkpot.models import dp as D
from zkpot.models.step import export
from zkpot.spec import accountant, lookups
from zkpot.spec import dp_noise as N

SCALE = 8
S = 2 ** SCALE
Q = 1.0 / S
W = D.WORDS


def test_a_normal_takes_its_words_an_angle_and_a_dither():
    assert D.UNIFORMS_PER_PARAM == N.WORDS + 2 and D.WORDS is N.WORDS


def circuit_cases(rng) -> tuple[np.ndarray, np.ndarray]:
    """W x n words and n angles: k = 0 with every first word m in 1..S-1; every k in 1..W-1 with m in {1, 2, S-1,
    random}; all W words zero; the words after the first nonzero one random; every angle 0..S-1 at least once."""
    cols = [(0, m) for m in range(1, S)] + [(k, m) for k in range(1, W) for m in (1, 2, S - 1, rng.integers(3, S - 1))]
    words = rng.integers(0, S, (W, len(cols) + 1))
    for c, (k, m) in enumerate(cols):
        words[:k, c], words[k, c] = 0, m
    words[:, -1] = 0
    n = words.shape[1]
    angle = np.concatenate([rng.permutation(S), rng.integers(0, S, n - S)])
    return words, angle


def test_the_circuit_noise_is_the_fixed_point_model(tmp_path):
    """models/dp.gaussian compiled alone, and the noise the step adds (models/dp.noise_added: SIGMA * C times it
    plus the dither), fed the cases above with a random challenge r mixed in: ezkl's witness is spec/dp_noise's Z
    and N + c - S/2 value for value, and its mock prover passes; the Ln and Cos tables are still spec/lookups'
    domains."""
    rng = np.random.default_rng(7)
    words, angle = circuit_cases(rng)
    n, sigma_c = words.shape[1], 0.7
    dither = rng.integers(0, S, n)
    k = np.concatenate([words.ravel(), angle, dither])  # word i of normal j at i * n + j, the angles, the dithers
    r = rng.integers(0, S, k.size)
    v = (k - r) % S                                     # frac(v + r) = k: the challenge mixed in
    cut = (W + 1) * n
    export(lambda v, r: torch.cat([D.gaussian(v[:cut], r[:cut], SCALE), D.noise_added(v, r, SCALE, sigma_c)]),
           (torch.zeros(k.size), torch.zeros(k.size)), ["v", "r"], "z", tmp_path / "g.onnx", SCALE, domains=True)
    pipeline.write_input(tmp_path / "in.json", (v * Q).tolist(), (r * Q).tolist())
    pipeline.gen_settings(tmp_path / "g.onnx", tmp_path / "s.json", SCALE)
    s = pipeline.calibrate(tmp_path / "in.json", tmp_path / "g.onnx", tmp_path / "s.json", SCALE)
    lo, hi = lookups.table_range(s["required_lookups"], SCALE, domains=True)
    assert (lo, hi) == (0, math.ceil(2 * math.pi * S))   # Ln's [1, S] and Cos's [0, 2 pi S], at scale S
    k = max(s["run_args"]["logrows"], math.ceil(math.log2(hi - lo + 65)))
    pipeline.set_lookup_table(tmp_path / "s.json", (lo, hi), k)
    pipeline.compile_circuit(tmp_path / "g.onnx", tmp_path / "s.json", tmp_path / "g.ezkl")
    w = pipeline.gen_witness(tmp_path / "in.json", tmp_path / "g.ezkl", tmp_path / "w.json")
    got = np.array([round(float(t) * S) for t in w["pretty_elements"]["rescaled_outputs"][0]])
    lev, m = N.leading(words)
    z = N.fixed_point_z(lev, m, angle, SCALE)
    assert set(lev.tolist()) == set(range(W)) and set(m[lev == 0].tolist()) == set(range(1, S))
    np.testing.assert_array_equal(got[:n], z)
    np.testing.assert_array_equal(got[n:], N.noise_quanta(z, sigma_c, SCALE) + dither - S // 2)
    assert ezkl.mock(str(tmp_path / "w.json"), str(tmp_path / "g.ezkl"))
    print(f"\nnoise block alone: {s['num_rows']} rows, logrows {s['run_args']['logrows']}, for {n} normals "
          f"({s['num_rows'] / n:.0f} per normal, with the SIGMA C product)")


def test_the_noise_pmf_is_exact_and_reaches_the_tails():
    """The pmf sums to 1 exactly (integers over S^(W+2)), its support is +-rnd(SIGMA C S) sqrt(2 W ln S) widened
    by the dither's S/2, every quantum between its ends has mass, and its std is sqrt(1 + 1/12) (the normal's and
    the dither's) within 1%."""
    values, num, den = N.noise_weights(SCALE, 1.0)
    assert sum(num) == den == S ** (W + 2) and min(num) >= 1
    v, p = N.noise_pmf(SCALE, 1.0)
    np.testing.assert_array_equal(v, values)
    edge = math.sqrt(2 * W * math.log(S))
    mean, std = (v * p).sum() / S, math.sqrt((v * v * p).sum()) / S
    print(f"\nnoise at scale {SCALE}, SIGMA C = 1: {len(v)} values, support [{v[0] / S:.3f}, {v[-1] / S:.3f}], mean "
          f"{mean:.6f}, std {std:.5f}, P(|z| > 3.33) {p[np.abs(v) > 853].sum():.3e}, smallest atom {min(num) / den:.2e}")
    assert abs(v[-1] / S - edge - 0.5) < 2 / S and abs(v[0] / S + edge + 0.5) < 2 / S
    assert (np.diff(v) == 1).all()
    assert abs(std - math.sqrt(1 + 1 / 12)) < 0.01 and abs(mean) < 3e-3


def gaussian_pmf(std: float, edge: float) -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(-math.ceil(edge * std), math.ceil(edge * std) + 1)
    g = np.exp(-(x / std) ** 2 / 2)
    return x, g / g.sum()


def test_the_accountant_is_tight_for_a_discretized_gaussian():
    """Fed a discretized Gaussian (std 256 quanta, cut at the circuit's 9.42 std), the accountant's ε is the
    continuous mechanism's within 2%, and not below it: the bound over shift vectors loses nothing here."""
    x, g = gaussian_pmf(256, math.sqrt(2 * W * math.log(S)))
    for epochs in (1, 5):
        got = accountant.epsilon_of_pmf(x, g, 512, 9, epochs, 1e-5)["epsilon"]
        want = accountant.gaussian_epsilon(0.5, epochs, 1e-5)
        assert want <= got <= 1.02 * want, (epochs, got, want)


def test_epsilon_of_the_step_noise_beside_the_continuous_gaussian():
    """ε at δ = 1e-5 (scale 8, P = 9, one epoch, C = 1, sensitivity 2 C) for SIGMA = 1 and 2: within 10% of the
    continuous Gaussian mechanism's with noise SIGMA C (the circuit's is that plus the dither, and discrete,
    bounded: docs/dp.md). Before the dither, SIGMA C = 1 gave 1.9 times the Gaussian's and SIGMA C = 2 no ε."""
    for sigma in (1.0, 2.0):
        out = accountant.epsilon(SCALE, sigma, 1.0, 2 * S, 9, 1, 1e-5)
        cont = accountant.gaussian_epsilon(sigma / 2, 1, 1e-5)
        print(f"\nSIGMA {sigma}, C 1: ε {out['epsilon']:.3f} (order {out['order']}, tails "
              f"{out['delta_tails']:.1e}) vs continuous {cont:.3f}; {out['accountant']}")
        assert 0.9 * cont <= out["epsilon"] <= 1.1 * cont and out["delta_tails"] <= out["delta"]


def test_epsilon_falls_with_sigma_grows_with_epochs_and_is_infinite_without_noise():
    eps = [accountant.epsilon(SCALE, s, 1.0, 2 * S, 9, 1, 1e-5)["epsilon"] for s in (0.5, 0.75, 1.0)]
    assert eps[0] > eps[1] > eps[2]
    by_epochs = [accountant.epsilon(SCALE, 1.0, 1.0, 2 * S, 9, e, 1e-5)["epsilon"] for e in (1, 2, 5)]
    assert by_epochs[0] < by_epochs[1] < by_epochs[2]
    assert accountant.epsilon(SCALE, 0.0, 1.0, 2 * S, 9, 1, 1e-5)["epsilon"] == math.inf
    with pytest.raises(ValueError):
        accountant.epsilon(SCALE, -1.0, 1.0, 2 * S, 9, 1, 1e-5)


def test_noise_coarser_than_a_quantum_is_filled_by_the_dither():
    """SIGMA C = 2: rnd(rnd(SIGMA C S) Z / S) alone takes even values only (a shift by one quantum would have
    infinite privacy loss on all its mass); the dither spreads each over S quanta, so every quantum between the
    ends has mass."""
    S2 = 2 ** SCALE
    m, b = np.meshgrid(np.arange(1, S2), np.arange(S2), indexing="ij")
    assert (N.noise_quanta(N.fixed_point_z(np.zeros(m.size), m.ravel(), b.ravel(), SCALE), 2.0, SCALE) % 2 == 0).all()
    v, p = N.noise_pmf(SCALE, 2.0)
    assert (np.diff(v) == 1).all() and (p > 0).all()


def test_the_rdp_bound_over_shift_vectors():
    """concave_bound is the least concave majorant: linear data gives the line, and a bump is bridged by chords."""
    t = np.arange(1, 11, dtype=float)
    assert accountant.concave_bound(t, 2 * t, 5.5) == pytest.approx(11.0)
    assert accountant.concave_bound(t, np.where(t == 1, 5.0, 0.0), 4.0) == pytest.approx(5.0)
    assert accountant.concave_bound(t, np.where(t == 4, 8.0, 0.0), 2.0) == pytest.approx(4.0)
    assert accountant.concave_bound(t, 2 * t, 50.0) == pytest.approx(20.0)
