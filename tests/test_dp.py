"""DP-SGD's provable step (issue 26, first slice; models/dp.py, docs/dp.md): per-example gradients clipped to norm C,
summed, Gaussian noise SIGMA * C * z from committed uniforms v mixed with a public challenge r, then the update.

In float: the step equals plain torch looping over the examples (and opacus's per-sample clipping), clipping clips,
and z is a standard normal whatever v is. In ezkl: the step of the tests' small logistic regression compiles with
its lookup table computed from the claims, its mock prover passes (also for inputs far outside the claims), its
fixed point is within 8 quanta of float, and the noise transform is, value for value, the fixed-point model below
(from which the accountant of a later slice will take its exact distribution)."""
from __future__ import annotations

import copy
import math
from pathlib import Path

import ezkl
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.conftest import SMALL
from zkpot.circuits import derive, pipeline
from zkpot.models import dp as D
from zkpot.models import zoo
from zkpot.models.losses import encode_labels
from zkpot.models.step import Optimizer, export, export_chunk, layout_of, make_step
from zkpot.prover.config import RunConfig
from zkpot.prover.train import frozen_claims
from zkpot.spec import lookups
from zkpot.spec import protocol as P
from zkpot.spec.protocol import SALT_WORDS

TORCH_LOSS = {"bce": F.binary_cross_entropy_with_logits, "ce": F.cross_entropy, "mse": F.mse_loss}  # torch's own
SCALE = 8
Q = 2.0 ** -SCALE


def setup_model(name, loss, out, batch_size=4, features=5, momentum=0.0, seed=0):
    spec = {"name": name, "kwargs": {"in_features": features, "out_features": out}}
    module = zoo.build(spec, seed=seed)
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.uniform(-2, 2, (batch_size, features)), dtype=torch.float32)
    raw = rng.integers(0, 2 if loss != "ce" else out, (batch_size,) if loss != "mse" else (batch_size, out))
    y = torch.tensor(encode_labels(loss, raw, out))
    layout = layout_of(module, batch_size, features, y.shape[1], momentum > 0)
    return module, layout, x, y


def flat_inputs(module, layout, x, y, v, r):
    w = torch.cat([p.detach().reshape(-1) for p in module.parameters()])
    state = torch.cat([w] + ([torch.zeros_like(w)] if layout.momentum else []) + [torch.zeros(SALT_WORDS)])
    batch = torch.cat([x.reshape(-1), y.reshape(-1), torch.zeros(SALT_WORDS)])
    noise = torch.cat([torch.as_tensor(v, dtype=torch.float32), torch.zeros(SALT_WORDS)])
    return state, batch, noise, torch.as_tensor(r, dtype=torch.float32), torch.arange(SALT_WORDS, dtype=torch.float32)


def box_muller(v, r, scale=SCALE):
    """z from v and r as the issue states it, in float64 numpy (not models/dp.py's code): u = frac(v + r),
    z = sqrt(-2 ln(1 - u1)) cos(2 pi u2), 1 - u1 guarded at one quantum."""
    q = 2.0 ** -scale
    u = np.mod(np.clip(v, 0, 1 - q) + np.clip(r, 0, 1 - q), 1.0)
    n = len(u) // 2
    return np.sqrt(-2 * np.log(np.maximum(1 - u[:n], q))) * np.cos(2 * np.pi * u[n:])


# --- (a) in float, the step is DP-SGD ----------------------------------------------------------------------------

@pytest.mark.parametrize("name, loss, out", [("logreg", "bce", 1), ("mlp", "ce", 3), ("mlp", "mse", 2)])
@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.9, 0.01)])
def test_the_step_is_a_per_example_loop_in_plain_torch(name, loss, out, momentum, weight_decay):
    """Two DP steps (noise on) against torch looping over the examples: each example's backward alone, its
    gradient scaled by min(1, C / norm), the sum, SIGMA * C * z (z by numpy's Box-Muller of the same v, r), / B,
    then torch.optim.SGD with the run's momentum and weight decay."""
    C, SIGMA, lr = 0.5, 0.8, 0.1
    module, layout, x, y = setup_model(name, loss, out, momentum=momentum)
    ref = copy.deepcopy(module)
    rng = np.random.default_rng(1)
    v, r = rng.integers(0, 256, D.uniforms(layout)) * Q, rng.integers(0, 256, D.uniforms(layout)) * Q
    opt = Optimizer(lr=lr, momentum=momentum, weight_decay=weight_decay)
    step = D.make_dp_step(module, loss, layout, opt, D.DP(clip=C, noise=SIGMA), SCALE)
    state, batch, noise, challenge, salt = flat_inputs(module, layout, x, y, v, r)
    new = step(step(state, batch, noise, challenge, salt), batch, noise, challenge, salt)

    params = list(ref.parameters())
    sgd = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    clipped_any = False
    for _ in range(2):
        total = 0
        for i in range(layout.batch_size):
            ref.zero_grad()
            TORCH_LOSS[loss](ref(x[i : i + 1]), y[i : i + 1]).backward()
            g = torch.cat([p.grad.reshape(-1) for p in params]).double()
            clipped_any |= bool(g.norm() > C)
            total = total + g * min(1.0, C / g.norm().item())
        noisy = (total + SIGMA * C * torch.from_numpy(box_muller(v, r))) / layout.batch_size
        at = 0
        for p in params:
            p.grad = noisy[at : at + p.numel()].reshape(p.shape).float()
            at += p.numel()
        sgd.step()
    assert clipped_any   # C is small enough to clip
    want = torch.cat([p.detach().reshape(-1) for p in params])
    torch.testing.assert_close(new[: layout.n_params], want, rtol=1e-5, atol=1e-5)
    assert torch.equal(new[-SALT_WORDS:], salt)


@pytest.mark.parametrize("name, loss, out", [("logreg", "bce", 1), ("mlp", "ce", 3), ("mlp", "mse", 2)])
def test_the_step_is_opacus_per_sample_clipping(name, loss, out):
    """opacus 1.6's GradSampleModule and DPOptimizer on the same model, data and C, zero noise: the same update."""
    opacus = pytest.importorskip("opacus")
    from opacus.optimizers import DPOptimizer

    C, lr = 0.3, 0.5
    module, layout, x, y = setup_model(name, loss, out, seed=2)
    gsm = opacus.GradSampleModule(copy.deepcopy(module), loss_reduction="mean")
    opt = DPOptimizer(torch.optim.SGD(gsm.parameters(), lr=lr), noise_multiplier=0.0, max_grad_norm=C,
                      expected_batch_size=layout.batch_size, loss_reduction="mean")
    opt.zero_grad()
    TORCH_LOSS[loss](gsm(x), y).backward()
    norms = torch.stack([p.grad_sample.reshape(layout.batch_size, -1).norm(dim=1) ** 2 for p in gsm.parameters()]).sum(0).sqrt()
    assert (norms > C).any()   # opacus clips here too
    opt.step()
    want = torch.cat([p.detach().reshape(-1) for p in gsm.parameters()])

    step = D.make_dp_step(module, loss, layout, Optimizer(lr=lr), D.DP(clip=C, noise=0.0), SCALE)
    v = np.zeros(D.uniforms(layout))
    new = step(*flat_inputs(module, layout, x, y, v, v))
    torch.testing.assert_close(new[: layout.n_params], want, rtol=1e-5, atol=1e-5)


# --- (b) clipping clips ------------------------------------------------------------------------------------------

def test_an_example_with_a_huge_gradient_contributes_exactly_C():
    """A batch of one: what the step subtracts (times B / lr, no noise) is the example's clipped gradient. A huge
    one (features 1e3) contributes norm C exactly, in its own direction; a small one (norm < C) is not scaled up."""
    C, lr = 0.7, 0.25
    module, layout, _, y = setup_model("logreg", "bce", 1, batch_size=1)
    step = D.make_dp_step(module, "bce", layout, Optimizer(lr=lr), D.DP(clip=C, noise=0.0), SCALE)
    zero = np.zeros(D.uniforms(layout))
    w = torch.cat([p.detach().reshape(-1) for p in module.parameters()])
    for scale_x, clipped in ((1e3, True), (1e-3, False)):
        x = torch.full((1, 5), scale_x) * torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0])
        contribution = (w - step(*flat_inputs(module, layout, x, y, zero, zero))[: layout.n_params]) / lr
        module.zero_grad()
        F.binary_cross_entropy_with_logits(module(x), y).backward()
        g = torch.cat([p.grad.reshape(-1) for p in module.parameters()])
        if clipped:
            assert g.norm() > 100 * C
            torch.testing.assert_close(contribution.norm(), torch.tensor(C), rtol=1e-5, atol=0)
            torch.testing.assert_close(contribution / C, g / g.norm(), rtol=1e-4, atol=1e-6)
        else:
            assert g.norm() < C
            torch.testing.assert_close(contribution, g, rtol=1e-5, atol=1e-7)


def test_clip_rows_bounds_every_row_by_C():
    g = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0], [-600.0, 800.0]])
    out = D.clip_rows(g, 1.0)
    torch.testing.assert_close(out.norm(dim=1), torch.tensor([1.0, 0.5, 0.0, 1.0]))
    torch.testing.assert_close(out[0], torch.tensor([0.6, 0.8]))
    assert torch.equal(out[1], g[1]) and torch.equal(out[2], g[2])   # factor exactly 1 below C (reciprocal of 1)


# --- (c) the noise has the claimed std ---------------------------------------------------------------------------

@pytest.mark.parametrize("secret", ["uniform", "constant"])
def test_z_is_standard_normal_whatever_v_is(secret):
    """Over 400,000 draws, z's mean is 0, its std 1 (sqrt(1 - 2^-scale) with the tail cut at one quantum) and
    P(|z| < 1) the normal's 0.6827, within sampling error: with v uniform and r fixed, and with v fixed (a
    trainer's choice) and r uniform (the challenge)."""
    n, rng = 400_000, np.random.default_rng(3)
    draws = rng.random((2, 2 * n))
    v, r = (draws[0], np.full(2 * n, 0.3712)) if secret == "uniform" else (np.full(2 * n, 0.8137), draws[1])
    z = D.gaussian(torch.tensor(v), torch.tensor(r), SCALE).numpy()
    assert z.shape == (n,) and np.isfinite(z).all()
    assert abs(z.mean()) < 0.01
    assert abs(z.std() - 1.0) < 0.01
    assert abs(np.mean(np.abs(z) < 1) - 0.6827) < 0.005
    np.testing.assert_allclose(z, box_muller(v, r), atol=1e-6)


def test_the_noise_added_is_sigma_C_z():
    """The step with noise minus the step without, times -B / lr, is SIGMA * C * z(v, r) on every parameter; v
    outside [0, 1) counts as clamped to the grid's unit interval."""
    C, SIGMA, lr = 1.5, 1.1, 0.5
    module, layout, x, y = setup_model("mlp", "bce", 1)
    rng = np.random.default_rng(4)
    v, r = rng.random(D.uniforms(layout)), rng.random(D.uniforms(layout))
    v[:3] = [-5.0, 7.0, 1.0]
    noisy = D.make_dp_step(module, "bce", layout, Optimizer(lr=lr), D.DP(C, SIGMA), SCALE)
    quiet = D.make_dp_step(module, "bce", layout, Optimizer(lr=lr), D.DP(C, 0.0), SCALE)
    added = (quiet(*flat_inputs(module, layout, x, y, v, r)) - noisy(*flat_inputs(module, layout, x, y, v, r)))
    added = added[: layout.n_params] * layout.batch_size / lr
    z = box_muller(v, r)
    assert np.abs(z).max() > 0.5 and len(z) == layout.n_params
    np.testing.assert_allclose(added.numpy(), SIGMA * C * z, atol=2e-5)


# --- (d, e) the circuit ------------------------------------------------------------------------------------------

def fixed_point_z(k1: np.ndarray, k2: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """The integer z * 2^scale the circuit computes from u = frac(v + r) = (k1, k2) / 2^scale (ezkl 22.3, honest
    rounding: Rust's f64::round, half away from zero; docs/dp.md):

        L = round(S ln((S - k1) / S))        Ln lookup at input scale S = 2^scale
        R = round(sqrt(S * (-2 L)))          sqrt (a witness checked to be the optimum)
        A = round(round(2 pi S) * k2 / S)    the constant 2 pi at the param scale, the product rescaled
        K = round(S cos(A / S))              Cos lookup
        z = round(R * K / S)                 the product rescaled"""
    S = 2 ** scale
    rnd = lambda t: np.sign(t) * np.floor(np.abs(t) + 0.5)
    L = rnd(S * np.log((S - k1) / S))
    R = rnd(np.sqrt(S * (-2 * L)))
    A = rnd(rnd(2 * math.pi * S) * k2 / S)
    K = rnd(S * np.cos(A / S))
    return rnd(R * K / S).astype(np.int64)


def settings_as_derived(onnx: Path, samples: Path, out: Path, domains: bool) -> dict:
    """circuits/derive.settings_for's procedure on our own samples (a DP run has no claims in the manifest yet):
    calibrate per decomposition, keep a smaller table only while it lowers logrows, the lookup table from the
    clamps (spec/lookups.table_range), never the samples'."""
    best = None
    for base, legs in P.DECOMPOSITIONS:
        cand = out.with_name(f"{out.stem}-{base}.json")
        pipeline.gen_settings(onnx, cand, SCALE, (base, legs))
        s = pipeline.calibrate(samples, onnx, cand, SCALE, P.MAX_LOGROWS, P.CALIBRATION_MARGIN)
        lo, hi = lookups.table_range(s["required_lookups"], SCALE, domains=domains)
        k = max(s["run_args"]["logrows"], math.ceil(math.log2(hi - lo + 1 + derive.TABLE_SLACK)))
        s = pipeline.set_lookup_table(cand, (lo, hi), k)
        if best is not None and k >= best[0]:
            break
        best = (k, cand, s)
        if base + derive.TABLE_SLACK <= 2 ** (k - 1):
            break
    out.write_bytes(best[1].read_bytes())
    return best[2]


C_SMALL, SIGMA_SMALL = 1.0, 1.0


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """The tests' small logistic regression (conftest SMALL: 8 features, batch 4, lr 0.5, scale 8, the default
    bounds) as DP-SGD with C = 1, SIGMA = 1, and as plain SGD: both step graphs, settings and circuits."""
    tmp = tmp_path_factory.mktemp("dp")
    cfg = RunConfig(**SMALL)
    F_, B = SMALL["features"], SMALL["batch_size"]
    module = zoo.build(cfg.model_spec(F_, 1), seed=cfg.seed)
    layout = layout_of(module, B, F_, 1, False)
    claims = derive.circuit_claims(cfg.run_claims(layout, SMALL["rows"] // B, frozen_claims(module, layout)))
    opt, bounds = Optimizer(lr=cfg.lr), claims["bounds"]
    step = D.make_dp_step(module, "bce", layout, opt, D.DP(C_SMALL, SIGMA_SMALL), SCALE, bounds)
    D.export_dp_chunk(step, layout, 1, tmp / "dp.onnx", SCALE)
    export_chunk(make_step(module, "bce", layout, opt, bounds), layout, 1, tmp / "sgd.onnx", SCALE)

    base = derive.public_samples(claims)   # the derivation's own public samples, plus uniform v and r
    rng = np.random.default_rng(5)
    U = D.uniforms(layout)
    noise, challenge = [], []
    for _ in range(P.CALIBRATION_SAMPLES):
        noise += (rng.integers(0, 256, U) * Q).tolist() + (rng.integers(0, 1 << 24, SALT_WORDS) * Q).tolist()
        challenge += (rng.integers(0, 256, U) * Q).tolist()
    pipeline.write_input(tmp / "samples-dp.json", base[0], base[1], noise, challenge, base[2])
    pipeline.write_input(tmp / "samples-sgd.json", *base)
    out = {"tmp": tmp, "layout": layout, "step": step, "claims": claims}
    for kind, domains in (("dp", True), ("sgd", False)):
        out[kind] = settings_as_derived(tmp / f"{kind}.onnx", tmp / f"samples-{kind}.json", tmp / f"settings-{kind}.json", domains)
        pipeline.compile_circuit(tmp / f"{kind}.onnx", tmp / f"settings-{kind}.json", tmp / f"{kind}.ezkl")
    return out


def grid(a) -> list[float]:
    return (np.round(np.asarray(a, dtype=np.float64) / Q) * Q).tolist()


def test_the_dp_step_compiles_proves_in_mock_and_is_near_float(small_run):
    """The DP step's table is the one the claims give (Exp's saturation clamp, Ln's and Cos's domains, at the
    graph's scale); a run inside the claims and one far outside (features 3x the bound, weights at it, v and r
    out of [0, 1)) keep every lookup inside it and pass ezkl's mock prover; fixed point is within 8 quanta
    (2^-5) of the float step on the same inputs (the float step clamps as the circuit does)."""
    run, tmp = small_run, small_run["tmp"]
    layout, s = run["layout"], run["dp"]
    kinds = sorted(k for lookup in s["required_lookups"] for k in lookup)
    assert kinds == ["Cos", "Exp", "Ln"], kinds
    assert all(p["scale"] == 2 ** SCALE for lookup in s["required_lookups"] for p in lookup.values())
    lo, hi = tuple(s["run_args"]["lookup_range"])
    assert (lo, hi) == lookups.table_range(s["required_lookups"], SCALE, domains=True)
    S = 2 ** SCALE
    assert (lo, hi) == (math.floor(lookups.saturation("Exp", SCALE)[0] * S), math.ceil(2 * math.pi * S))
    with pytest.raises(lookups.UnboundedLookup, match="(Ln|Cos) lookup"):   # no other circuit gets Ln or Cos tables
        lookups.table_range(s["required_lookups"], SCALE)

    P_, B, F_ = layout.n_params, layout.batch_size, layout.features
    U = D.uniforms(layout)
    W, X = run["claims"]["bounds"]["weights"], run["claims"]["bounds"]["features"]
    rng = np.random.default_rng(6)
    salt = lambda: grid(rng.integers(0, 1 << 24, SALT_WORDS) * Q)
    honest = [grid(rng.uniform(-W / 2, W / 2, P_)) + salt(),
              grid(rng.uniform(-X, X, B * F_)) + rng.integers(0, 2, B).astype(float).tolist() + salt(),
              grid(rng.integers(0, 256, U) * Q) + salt(), grid(rng.integers(0, 256, U) * Q), salt()]
    hostile = [grid(W * rng.choice([-1, 1], P_)) + honest[0][P_:],
               grid(3 * X * rng.choice([-1, 1], B * F_)) + honest[1][B * F_:],
               grid(rng.choice([-7.5, 3.0, 1.0, 0.99609375, -Q], U)) + honest[2][U:],
               grid(rng.choice([-2.0, 5.25, 1.0, 0.0], U)), honest[4]]
    for i, inputs in enumerate((honest, hostile)):
        pipeline.write_input(tmp / f"in-{i}.json", *inputs)
        w = pipeline.gen_witness(tmp / f"in-{i}.json", tmp / "dp.ezkl", tmp / f"w-{i}.json")
        assert pipeline.lookup_overflow(w, s) is None
        assert ezkl.mock(str(tmp / f"w-{i}.json"), str(tmp / "dp.ezkl"))
        fixed = np.array([float(t) for t in w["pretty_elements"]["rescaled_outputs"][0]])
        fl = run["step"](*[torch.tensor(a, dtype=torch.float32) for a in inputs]).numpy()
        err = np.abs(fixed[:P_] - fl[:P_]).max()
        print(f"\n{'honest' if i == 0 else 'hostile'} inputs: fixed point vs float, max |diff| {err:.5f} "
              f"({err / Q:.1f} quanta); lookups seen [{w['min_lookup_inputs']}, {w['max_lookup_inputs']}] in "
              f"table [{lo}, {hi}]")
        assert err <= 8 * Q
        np.testing.assert_allclose(fixed[P_:], np.array(inputs[-1]), atol=Q / 2)   # salt_out carried


def test_rows_of_the_dp_step_beside_the_plain_step(small_run):
    """(a report, no assertion on cost) rows and logrows of the two circuits of the same run."""
    for kind in ("sgd", "dp"):
        s = small_run[kind]
        ra = s["run_args"]
        print(f"\n{kind}: {s['num_rows']} rows, logrows {ra['logrows']}, decomposition {ra['decomp_base']}x"
              f"{ra['decomp_legs']}, lookup table {ra['lookup_range']}, lookups "
              f"{sorted(k for lookup in s['required_lookups'] for k in lookup)}")
    assert small_run["dp"]["num_rows"] > small_run["sgd"]["num_rows"]


def test_the_circuit_noise_is_the_fixed_point_model(tmp_path):
    """The noise transform compiled alone, fed every u1 and every u2 of the grid (256 normals): ezkl's witness is
    fixed_point_z value for value (and its mock prover passes), so that model is what the circuit adds; over the
    65,536 equally likely (u1, u2) its std is 1 within 0.01, it has mean 0 exactly, and its support is bounded
    (|z| <= sqrt(2 ln 2^scale))."""
    S, n = 2 ** SCALE, 2 ** SCALE
    export(lambda v, r: D.gaussian(v, r, SCALE), (torch.zeros(2 * n), torch.zeros(2 * n)), ["v", "r"], "z",
           tmp_path / "g.onnx", SCALE, domains=True)
    rng = np.random.default_rng(7)
    k1, k2 = rng.permutation(n), rng.permutation(n)
    r = rng.integers(0, S, 2 * n)
    v = (np.concatenate([k1, k2]) - r) % S    # frac(v + r) = k: the challenge mixed in
    pipeline.write_input(tmp_path / "in.json", (v * Q).tolist(), (r * Q).tolist())
    pipeline.gen_settings(tmp_path / "g.onnx", tmp_path / "s.json", SCALE)
    s = pipeline.calibrate(tmp_path / "in.json", tmp_path / "g.onnx", tmp_path / "s.json", SCALE)
    lo, hi = lookups.table_range(s["required_lookups"], SCALE, domains=True)
    assert (lo, hi) == (0, math.ceil(2 * math.pi * S))   # Ln's [1, S] and Cos's [0, 2 pi S], at scale S
    pipeline.set_lookup_table(tmp_path / "s.json", (lo, hi), max(s["run_args"]["logrows"], math.ceil(math.log2(hi - lo + 65))))
    pipeline.compile_circuit(tmp_path / "g.onnx", tmp_path / "s.json", tmp_path / "g.ezkl")
    w = pipeline.gen_witness(tmp_path / "in.json", tmp_path / "g.ezkl", tmp_path / "w.json")
    assert ezkl.mock(str(tmp_path / "w.json"), str(tmp_path / "g.ezkl"))
    got = np.array([round(float(t) * S) for t in w["pretty_elements"]["rescaled_outputs"][0]])
    np.testing.assert_array_equal(got, fixed_point_z(k1, k2))
    print(f"\nnoise block alone: {s['num_rows']} rows for {n} normals ({s['num_rows'] / n:.0f} per normal)")

    a, b = np.meshgrid(np.arange(S), np.arange(S))
    z = fixed_point_z(a.ravel(), b.ravel()) / S
    print(f"fixed-point z over all {z.size} (u1, u2): mean {z.mean():.6f}, std {z.std():.5f}, "
          f"support [{z.min()}, {z.max()}], {len(np.unique(z))} values")
    assert abs(z.std() - 1) < 0.01 and abs(z.mean()) < 1e-3
    assert np.abs(z).max() <= math.sqrt(2 * math.log(S)) + Q


def test_lookup_domains_are_exact_and_only_for_dp():
    for scale in (6, 8, 10):
        for kind in lookups.DOMAIN_KINDS:
            lo, hi = lookups.domain(kind, scale)
            for k in range(scale, 2 * scale + 1):
                assert lo * 2 ** k == int(lo * 2 ** k) and hi * 2 ** k == int(hi * 2 ** k)
        assert lookups.domain("Ln", scale)[0] > 0 and lookups.domain("Cos", scale)[1] >= 2 * math.pi
    for kind in lookups.DOMAIN_KINDS:
        with pytest.raises(lookups.UnboundedLookup, match=f"{kind} lookup"):
            lookups.table_range([{kind: {"scale": 256.0}}], 8)
    assert lookups.table_range([{"Ln": {"scale": 256.0}}], 8, domains=True) == (0, 256)
    assert lookups.table_range([{"Cos": {"scale": 65536.0}}], 8, domains=True) == (0, math.ceil(2 * math.pi * 256) * 256)
