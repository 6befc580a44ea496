"""DP-SGD's provable step (issue 26, first slice; models/dp.py, docs/dp.md): per-example gradients clipped to norm C,
summed, Gaussian noise SIGMA * C * z from committed uniforms v mixed with a public challenge r, then the update.

In float: the step equals plain torch looping over the examples (and opacus's per-sample clipping), clipping clips,
and z is a standard normal whatever v is. In ezkl: the step of the tests' small logistic regression compiles with
its lookup table computed from the claims, its mock prover passes (also for inputs far outside the claims), and
its fixed point is within 8 quanta of float. The noise transform's exact fixed point and distribution, and ε:
tests/test_dp_noise.py."""
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
from zkpot.models.step import Optimizer, export_chunk, layout_of, make_step
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
    """z from v and r as docs/dp.md states it, in float64 numpy (not models/dp.py's code): u = frac(v + r); per
    normal, W words a_i and an angle b; zero_i = [a_i < 2^-scale / 2], prefix_1 = 1, prefix_{i+1} = prefix_i zero_i;
    k = sum_{i >= 2} prefix_i, w = max(sum_i prefix_i a_i, 2^-scale); z = sqrt(2 (k ln S - ln w)) cos(2 pi b)."""
    q, W = 2.0 ** -scale, D.WORDS
    u = np.mod(np.clip(v, 0, 1 - q) + np.clip(r, 0, 1 - q), 1.0)
    n = len(u) // (W + 1)
    words = u[: W * n].reshape(W, n)
    prefix = np.cumprod(np.vstack([np.ones(n), words[:-1] < q / 2]), axis=0)
    k, w = prefix[1:].sum(axis=0), np.maximum((prefix * words).sum(axis=0), q)
    return np.sqrt(2 * (k * np.log(2.0 ** scale) - np.log(w))) * np.cos(2 * np.pi * u[W * n :])


def noise_reference(v, r, sigma_c, scale=SCALE):
    """What a step adds, as docs/dp.md states it: SIGMA C z from the first (W+1)P uniforms, plus the dither
    frac(v + r) - 1/2 of the last P."""
    q, cut = 2.0 ** -scale, (D.WORDS + 1) * (len(v) // D.UNIFORMS_PER_PARAM)
    dither = np.mod(np.clip(v[cut:], 0, 1 - q) + np.clip(r[cut:], 0, 1 - q), 1.0) - 0.5
    return sigma_c * box_muller(v[:cut], r[:cut], scale) + dither


def quiet_uniforms(layout) -> np.ndarray:
    """v (with r = v) that make the dither 0: u = 1/2 in the dither's places (the rest 0)."""
    v = np.zeros(D.uniforms(layout))
    v[(D.WORDS + 1) * layout.n_params :] = 0.25
    return v


def guarded_factor(norm: float, C: float, n_params: int, scale: int = SCALE) -> float:
    """The clip factor as docs/dp.md states it (not models/dp.py's code): min(1, C / |g|) made safe against the
    prover's rounding, relu(1 / max(t, 1) - q [t > 1]) with t = (|g| + slack) (1/C + q/2)."""
    from zkpot.spec.dp import norm_slack

    q = 2.0 ** -scale
    t = (norm + norm_slack(C, n_params, scale)) * (1 / C + q / 2)
    return max(0.0, 1 / max(t, 1.0) - (q if t > 1 else 0.0))


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
            total = total + g * guarded_factor(g.norm().item(), C, layout.n_params)
        noisy = (total + torch.from_numpy(noise_reference(v, r, SIGMA * C))) / layout.batch_size
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
    """opacus 1.6's GradSampleModule and DPOptimizer on the same model, data and C: its sum of per-sample clipped
    gradients is our per-example gradients clipped by clip_rows without the fixed-point guard (slack 0), and the
    step's update, with C so large that nothing clips, is opacus's."""
    opacus = pytest.importorskip("opacus")
    from opacus.optimizers import DPOptimizer

    lr = 0.5
    module, layout, x, y = setup_model(name, loss, out, seed=2)
    for C in (0.3, 1e3):
        gsm = opacus.GradSampleModule(copy.deepcopy(module), loss_reduction="sum")
        opt = DPOptimizer(torch.optim.SGD(gsm.parameters(), lr=lr), noise_multiplier=0.0, max_grad_norm=C,
                          expected_batch_size=layout.batch_size, loss_reduction="sum")
        opt.zero_grad()
        per_example_mean = out if loss == "mse" else 1   # (an example's mse is the mean over its outputs)
        (TORCH_LOSS[loss](gsm(x), y, reduction="sum") / per_example_mean).backward()
        norms = torch.stack([p.grad_sample.reshape(layout.batch_size, -1).norm(dim=1) ** 2 for p in gsm.parameters()]).sum(0).sqrt()
        assert bool((norms > C).any()) == (C < 1)   # opacus clips at the small C, not at the large one
        opt.clip_and_accumulate()
        theirs = torch.cat([p.summed_grad.reshape(-1) for p in gsm.parameters()])
        params = {n: p.detach() for n, p in module.named_parameters()}
        ours = D.clip_rows(D.per_example_gradients(D.loss_of(module, loss, layout), layout, params, x, y), C).sum(0)
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    w = torch.cat([p.detach().reshape(-1) for p in module.parameters()])
    want = w - lr * theirs / layout.batch_size   # SGD on the mean of the (unclipped) per-sample gradients
    step = D.make_dp_step(module, loss, layout, Optimizer(lr=lr), D.DP(clip=1e3, noise=0.0), SCALE)
    v = quiet_uniforms(layout)
    new = step(*flat_inputs(module, layout, x, y, v, v))
    torch.testing.assert_close(new[: layout.n_params], want, rtol=1e-5, atol=1e-5)


# --- (b) clipping clips ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [8, 12])
def test_a_clipped_example_contributes_at_most_C(scale):
    """A batch of one: what the step subtracts (times B / lr, no noise) is the example's clipped gradient. A large
    one contributes at most C, in its own direction, less the guard's relative loss of about 2^-scale |g| / C
    (docs/dp.md): 3% for |g| = 10 C at scale 8, 0.3% at scale 12; one larger than C 2^scale contributes
    nothing (never more than C); a small one (norm below C less the guard's slack) is not scaled at all."""
    C, lr = 0.7, 0.25
    module, layout, _, y = setup_model("logreg", "bce", 1, batch_size=1)
    step = D.make_dp_step(module, "bce", layout, Optimizer(lr=lr), D.DP(clip=C, noise=0.0), scale)
    zero = quiet_uniforms(layout)
    w = torch.cat([p.detach().reshape(-1) for p in module.parameters()])
    seen = set()
    for scale_x in (1e3, 1.0, 1e-3):
        x = torch.full((1, 5), scale_x) * torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0])
        contribution = (w - step(*flat_inputs(module, layout, x, y, zero, zero))[: layout.n_params]) / lr
        module.zero_grad()
        F.binary_cross_entropy_with_logits(module(x), y).backward()
        g = torch.cat([p.grad.reshape(-1) for p in module.parameters()])
        ratio = float(g.norm() / C)
        assert contribution.norm() <= C
        seen.add("huge" if ratio > 2 ** scale else "clipped" if ratio > 1 else "small")
        if ratio > 2 ** scale:
            assert contribution.norm() == 0
        elif ratio > 1:
            assert contribution.norm() >= C * (1 - 1.5 * ratio * 2.0 ** -scale) - dp_slack(C, layout, scale)
            torch.testing.assert_close(contribution / contribution.norm(), g / g.norm(), rtol=1e-4, atol=1e-6)
        else:
            torch.testing.assert_close(contribution, g, rtol=1e-5, atol=1e-7)
    assert seen == {"huge", "clipped", "small"} if scale == 8 else seen >= {"clipped", "small"}


def dp_slack(C, layout, scale):
    from zkpot.spec.dp import norm_slack

    return norm_slack(C, layout.n_params, scale)


def test_clip_rows_bounds_every_row_by_C():
    g = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0], [-600.0, 800.0]])
    out = D.clip_rows(g, 1.0)
    torch.testing.assert_close(out.norm(dim=1), torch.tensor([1.0, 0.5, 0.0, 1.0]))
    torch.testing.assert_close(out[0], torch.tensor([0.6, 0.8]))
    assert torch.equal(out[1], g[1]) and torch.equal(out[2], g[2])   # factor exactly 1 below C (reciprocal of 1)
    guarded = D.clip_rows(g, 1.0, slack=0.25, q=Q)   # with the fixed-point guard: never above C, unscaled below
    assert (guarded.norm(dim=1) <= 1.0).all() and torch.equal(guarded[1], g[1]) and torch.equal(guarded[2], g[2])


# --- (c) the noise has the claimed std ---------------------------------------------------------------------------

@pytest.mark.parametrize("secret", ["uniform", "constant"])
def test_z_is_standard_normal_whatever_v_is(secret):
    """Over 400,000 draws, z's mean is 0, its std 1 and P(|z| < 1) the normal's 0.6827, within sampling error:
    with v uniform and r fixed, and with v fixed (a trainer's choice) and r uniform (the challenge). Words drawn
    near 0 (so that u1 takes its later words) are checked too."""
    n, rng, U = 400_000, np.random.default_rng(3), D.WORDS + 1
    draws = rng.random((2, U * n))
    v, r = (draws[0], np.full(U * n, 0.3712)) if secret == "uniform" else (np.full(U * n, 0.8137), draws[1])
    z = D.gaussian(torch.tensor(v), torch.tensor(r), SCALE).numpy()
    assert z.shape == (n,) and np.isfinite(z).all()
    assert abs(z.mean()) < 0.01
    assert abs(z.std() - 1.0) < 0.01
    assert abs(np.mean(np.abs(z) < 1) - 0.6827) < 0.005
    np.testing.assert_allclose(z, box_muller(v, r), atol=1e-6)
    tail = np.zeros(U * 1000)                          # on the grid: j leading zero words, then m / S
    lead = np.arange(1000) % (D.WORDS + 1)
    for i in range(D.WORDS):
        tail[i * 1000 : (i + 1) * 1000] = np.where(lead > i, 0.0, rng.integers(1, 256, 1000) * Q)
    tail[D.WORDS * 1000 :] = rng.integers(0, 256, 1000) * Q
    zt = D.gaussian(torch.tensor(tail), torch.zeros(U * 1000, dtype=torch.float64), SCALE).numpy()
    np.testing.assert_allclose(zt, box_muller(tail, np.zeros(U * 1000)), atol=1e-9)
    assert np.abs(zt).max() > 8 and np.abs(zt).max() <= math.sqrt(2 * D.WORDS * math.log(256)) + 1e-9


def test_the_noise_added_is_sigma_C_z():
    """The step with noise minus the step without (SIGMA = 0: the dither alone), times -B / lr, is SIGMA * C * z(v, r)
    on every parameter; v outside [0, 1) counts as clamped to the grid's unit interval."""
    C, SIGMA, lr = 1.5, 1.1, 0.5
    module, layout, x, y = setup_model("mlp", "bce", 1)
    rng = np.random.default_rng(4)
    v, r = rng.random(D.uniforms(layout)), rng.random(D.uniforms(layout))
    v[:3] = [-5.0, 7.0, 1.0]
    noisy = D.make_dp_step(module, "bce", layout, Optimizer(lr=lr), D.DP(C, SIGMA), SCALE)
    quiet = D.make_dp_step(module, "bce", layout, Optimizer(lr=lr), D.DP(C, 0.0), SCALE)
    added = (quiet(*flat_inputs(module, layout, x, y, v, r)) - noisy(*flat_inputs(module, layout, x, y, v, r)))
    added = added[: layout.n_params] * layout.batch_size / lr
    cut = (D.WORDS + 1) * layout.n_params
    z = box_muller(v[:cut], r[:cut])
    assert np.abs(z).max() > 0.5 and len(z) == layout.n_params
    np.testing.assert_allclose(added.numpy(), SIGMA * C * z, atol=2e-5)


# --- (d) the circuit (its noise exactly: tests/test_dp_noise.py) ------------------------------------------------------

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
