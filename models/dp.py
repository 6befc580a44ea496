"""DP-SGD steps as functions of flat vectors, traced and exported as models/step.py's SGD steps are.

    state_out = dp_step(state_in, batch, noise, challenge, salt_out)
    state_out = chunk(state_in, batch_1, noise_1, challenge_1, ..., batch_S, noise_S, challenge_S, salt_out)

state, batch, salt_out  as in models/step.py
noise     = [v: (W+2)P values in [0, 1) on the grid of 2^-scale | salt]  secret, committed before the challenge
                                                                     (hashed with its salt: H(noise) hides v)
challenge = [r: (W+2)P values in [0, 1) on the same grid]                public (its hash is the proof's; the
                                                                     verifier hashes the r it knows)

For each example of the batch, its own gradient (torch.func.vmap over torch.func.grad of the run's loss on that
example alone), clipped to L2 norm C: g * min(1, C / |g|), computed as g * 1 / max(|g| / C, 1) (a reciprocal of
a value >= 1: never of 0, at most 1); their sum; plus Gaussian noise SIGMA * C * z on every trained parameter;
divided by the batch size (as opacus does: the sum's noise is not averaged away); then the run's optimizer
update (weight decay and momentum on that noisy gradient, as opacus's DPOptimizer wraps torch's SGD) and the
declared weight bound, by models/step.py's own code.

The noise: u = frac(v + r), uniform on the grid whatever v was if r is (the trainer fixed v before r was
known), and unknown to whoever does not know v; then Box-Muller, one normal per trained parameter from W + 1
uniforms: W words a_1..a_W (u1 = 0.a_1 a_2 ... a_W in base S = 2^scale, so its tail reaches S^-W, not S^-1)
and one angle b; and a dither c. Word i of parameter j is u[i * P + j]; then the P angles, then the P dithers:

    k = number of leading zero words among a_1..a_{W-1},  w = the first nonzero word (1/S if all W are 0)
    z = sqrt(2 (k ln S - ln w)) * cos(2 pi b)        -ln u1 = k ln S - ln w; |z| <= sqrt(2 W ln S)
    noise = SIGMA C z + (c - 1/2)                     c on the grid: a uniform integer number of quanta

The dither (variance 1/12, against (SIGMA C)^2) fills the gaps between the values SIGMA C z takes (a quantum of z
is SIGMA C quanta of the noise) and smooths its uneven mass, which is what epsilon is computed from
(spec/dp_noise.py, spec/accountant.py).

v and r are clamped to [0, 1 - 2^-scale] first (two ReLUs each: an honest value is unchanged, and any other
cannot move a lookup's input out of its domain), and frac is one comparison. The Ln and Cos lookups' inputs
are clamped to their domains (spec/lookups.domain) by the trace (models/bounded.py, domains=True), so their
table is a function of the scale alone. ezkl's sqrt and reciprocal are no lookups (a witness checked to be
the rounded optimum, and range-checked): the norm and the clip factor need no table.

docs/dp.md: what the fixed-point circuit computes in place of each of these.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.func import grad, vmap

from zkpot.models.step import Layout, Optimizer, export, loss_of, read_batch, unflatten, update
from zkpot.spec import dp as dp_spec
from zkpot.spec.protocol import SALT_WORDS

WORDS, UNIFORMS_PER_PARAM = dp_spec.WORDS, dp_spec.UNIFORMS_PER_PARAM   # spec/dp.py: the layout's one source


@dataclass(frozen=True)
class DP:
    """The DP-SGD claims a step is a function of: per-example L2 clip C, noise multiplier SIGMA (std SIGMA * C)."""

    clip: float
    noise: float

    def __post_init__(self):
        if not self.clip > 0 or not self.noise >= 0:
            raise ValueError(f"DP-SGD needs a clip norm > 0 and a noise multiplier >= 0, got C={self.clip}, "
                             f"SIGMA={self.noise}")


def uniforms(layout: Layout) -> int:
    """The uniforms one step draws (spec/dp.py)."""
    return dp_spec.uniforms(layout.n_params)


def noise_length(layout: Layout) -> int:
    return dp_spec.noise_length(layout.n_params)


def challenge_length(layout: Layout) -> int:
    return dp_spec.challenge_length(layout.n_params)


def unit_interval(t: torch.Tensor, scale: int) -> torch.Tensor:
    """t clamped to [0, 1 - 2^-scale], the grid's unit interval (two ReLUs)."""
    top = 1.0 - 2.0 ** -scale
    return top - torch.relu(top - torch.relu(t))


def frac_sum(v: torch.Tensor, r: torch.Tensor, scale: int) -> torch.Tensor:
    """frac(v + r) of v, r in the grid's unit interval (clamped there): one comparison, no table."""
    t = unit_interval(v, scale) + unit_interval(r, scale)
    return t - (t >= 1.0).to(t.dtype)


def gaussian(v: torch.Tensor, r: torch.Tensor, scale: int) -> torch.Tensor:
    """len(v) / (WORDS + 1) standard normals from the secret v and public r (Box-Muller of u = frac(v + r), u1 from
    WORDS words: module docstring). Comparisons and products only, so the circuit needs no table beyond Ln, Cos."""
    u = frac_sum(v, r, scale)
    n = u.shape[0] // (WORDS + 1)
    q = 2.0 ** -scale
    words = [u[i * n : (i + 1) * n] for i in range(WORDS)]
    prefix = (words[0] < 0.5 * q).to(u.dtype)     # prefix_{i+1} = [a_1 .. a_i all 0] (a == 0 on the grid)
    k, w = prefix, words[0] + prefix * words[1]
    for i in range(2, WORDS):
        prefix = prefix * (words[i - 1] < 0.5 * q).to(u.dtype)
        k, w = k + prefix, w + prefix * words[i]
    w = q + torch.relu(w - q)                     # all WORDS zero: w = 1/S, -ln u1 = WORDS ln S
    return torch.sqrt(2.0 * (k * math.log(2.0 ** scale) - torch.log(w))) * torch.cos((2 * math.pi) * u[WORDS * n :])


def noise_added(v: torch.Tensor, r: torch.Tensor, scale: int, sigma_c: float) -> torch.Tensor:
    """What the step adds to each coordinate of the clipped sum: SIGMA C z (Box-Muller of the first (W+1)P
    uniforms) plus the dither c - 1/2 (the last P), u = frac(v + r) throughout (module docstring)."""
    n = v.shape[0] // UNIFORMS_PER_PARAM
    cut = (WORDS + 1) * n
    return sigma_c * gaussian(v[:cut], r[:cut], scale) + (frac_sum(v[cut:], r[cut:], scale) - 0.5)


def per_example_gradients(loss_fn, layout: Layout, params: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """B x P: row i is the gradient of the loss on example i alone, in the layout's order."""
    B = layout.batch_size
    gs = vmap(grad(loss_fn), in_dims=(None, 0, 0))(params, x.unsqueeze(1), y.unsqueeze(1))
    return torch.cat([gs[n].reshape(B, -1) for n in layout.names], dim=1)


def clip_rows(g: torch.Tensor, c: float, slack: float = 0.0, q: float = 0.0) -> torch.Tensor:
    """Each row g_i scaled by a factor f_i <= min(1, C / |g_i|) however the prover rounds (spec/dp.norm_slack):

        t = (|g_i| + slack) * (1/C + q/2)       never below |g_i| / C: the slack covers the norm's roundings
        f = relu(1 / max(t, 1) - q [t > 1])     the reciprocal's own rounding taken off; exactly 1 when t <= 1

    With slack = q = 0 (float, no rounding) this is opacus's min(1, C / |g_i|)."""
    norm = torch.sqrt((g * g).sum(dim=1, keepdim=True)) + slack
    t = norm * (1.0 / c + q / 2)
    f = torch.reciprocal(1.0 + torch.relu(t - 1.0)) - q * (t > 1.0).to(g.dtype)
    return g * torch.relu(f)


def make_dp_step(module: torch.nn.Module, loss: str, layout: Layout, opt: Optimizer, dp: DP, scale: int,
                 bounds: dict | None = None):
    """One DP-SGD step as a function of flat vectors (module docstring); `scale`: the fixed-point scale whose grid
    the uniforms are on."""
    P, B, U = layout.n_params, layout.batch_size, uniforms(layout)
    loss_fn = loss_of(module, loss, layout)
    slack = dp_spec.norm_slack(dp.clip, P, scale)

    def step(state_in, batch, noise, challenge, salt_out):
        w = state_in[:P]
        x, y = read_batch(layout, batch, bounds)
        g = clip_rows(per_example_gradients(loss_fn, layout, unflatten(layout, w), x, y), dp.clip, slack, 2.0 ** -scale)
        noisy = (g.sum(dim=0) + noise_added(noise[:U], challenge[:U], scale, dp.noise * dp.clip)) / B
        return update(layout, opt, state_in, w, noisy, salt_out, bounds)

    return step


def make_dp_chunk(step, steps: int):
    """S consecutive DP steps as one function, each with its batch, noise and challenge (models/step.make_chunk)."""

    def chunk(state_in, *inputs):
        *triples, salt_out = inputs
        assert len(triples) == 3 * steps
        state = state_in
        for i in range(steps):
            batch, noise, challenge = triples[3 * i : 3 * i + 3]
            state = step(state, batch, noise, challenge, salt_out if i == steps - 1 else state[-SALT_WORDS:])
        return state

    return chunk


def dp_example_inputs(layout: Layout, steps: int) -> tuple[torch.Tensor, ...]:
    per_step = []
    for _ in range(steps):
        per_step += [torch.zeros(layout.batch_len), torch.zeros(noise_length(layout)), torch.zeros(challenge_length(layout))]
    return (torch.zeros(layout.state_len), *per_step, torch.zeros(SALT_WORDS))


def dp_input_names(steps: int) -> list[str]:
    return ["state_in", *[f"{k}_{i}" for i in range(steps) for k in ("batch", "noise", "challenge")], "salt_out"]


def export_dp_chunk(step, layout: Layout, steps: int, path: Path, scale: int) -> None:
    """Trace S DP steps and write ONNX as models/step.export_chunk does, the noise transform's lookups clamped to
    their domains."""
    export(make_dp_chunk(step, steps), dp_example_inputs(layout, steps), dp_input_names(steps), "state_out", path,
           scale, domains=True)


__all__ = ["DP", "WORDS", "UNIFORMS_PER_PARAM", "clip_rows", "export_dp_chunk", "frac_sum", "gaussian", "make_dp_chunk", "make_dp_step", "noise_added",
           "noise_length", "challenge_length", "per_example_gradients", "uniforms", "unit_interval"]
