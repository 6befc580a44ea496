"""DP-SGD steps as functions of flat vectors, traced and exported as models/step.py's SGD steps are.

    state_out = dp_step(state_in, batch, noise, challenge, salt_out)
    state_out = chunk(state_in, batch_1, noise_1, challenge_1, ..., batch_S, noise_S, challenge_S, salt_out)

state, batch, salt_out  as in models/step.py
noise     = [v: 2P values in [0, 1) on the grid of 2^-scale | salt]   secret, committed before the challenge
                                                                     (hashed with its salt: H(noise) hides v)
challenge = [r: 2P values in [0, 1) on the same grid]                 public (its hash is the proof's; the
                                                                     verifier hashes the r it knows)

For each example of the batch, its own gradient (torch.func.vmap over torch.func.grad of the run's loss on that
example alone), clipped to L2 norm C: g * min(1, C / |g|), computed as g * 1 / max(|g| / C, 1) (a reciprocal of
a value >= 1: never of 0, at most 1); their sum; plus Gaussian noise SIGMA * C * z on every trained parameter;
divided by the batch size (as opacus does: the sum's noise is not averaged away); then the run's optimizer
update (weight decay and momentum on that noisy gradient, as opacus's DPOptimizer wraps torch's SGD) and the
declared weight bound, by models/step.py's own code.

The noise: u = frac(v + r), uniform on the grid whatever v was if r is (the trainer fixed v before r was
known), and unknown to whoever does not know v; then Box-Muller, one normal per pair (u1 from the first P
uniforms, u2 from the last P):

    z = sqrt(-2 ln(1 - u1)) * cos(2 pi u2)          1 - u1 in [2^-scale, 1]: never ln(0)

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
from zkpot.spec.protocol import SALT_WORDS

UNIFORMS_PER_PARAM = 2   # Box-Muller's u1, u2 for each trained parameter's normal


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
    """The uniforms one step draws: two per trained parameter."""
    return UNIFORMS_PER_PARAM * layout.n_params


def noise_length(layout: Layout) -> int:
    return uniforms(layout) + SALT_WORDS


def challenge_length(layout: Layout) -> int:
    return uniforms(layout)


def unit_interval(t: torch.Tensor, scale: int) -> torch.Tensor:
    """t clamped to [0, 1 - 2^-scale], the grid's unit interval (two ReLUs)."""
    top = 1.0 - 2.0 ** -scale
    return top - torch.relu(top - torch.relu(t))


def frac_sum(v: torch.Tensor, r: torch.Tensor, scale: int) -> torch.Tensor:
    """frac(v + r) of v, r in the grid's unit interval (clamped there): one comparison, no table."""
    t = unit_interval(v, scale) + unit_interval(r, scale)
    return t - (t >= 1.0).to(t.dtype)


def gaussian(v: torch.Tensor, r: torch.Tensor, scale: int) -> torch.Tensor:
    """len(v) / 2 standard normals from the secret v and public r (Box-Muller of u = frac(v + r))."""
    u = frac_sum(v, r, scale)
    n = u.shape[0] // 2
    q = 2.0 ** -scale
    u1 = q + torch.relu((1.0 - u[:n]) - q)   # in [q, 1]: on the grid already; in float, the tail below q cut as there
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2 * math.pi) * u[n:])


def per_example_gradients(loss_fn, layout: Layout, params: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """B x P: row i is the gradient of the loss on example i alone, in the layout's order."""
    B = layout.batch_size
    gs = vmap(grad(loss_fn), in_dims=(None, 0, 0))(params, x.unsqueeze(1), y.unsqueeze(1))
    return torch.cat([gs[n].reshape(B, -1) for n in layout.names], dim=1)


def clip_rows(g: torch.Tensor, c: float) -> torch.Tensor:
    """Each row g_i scaled by min(1, C / |g_i|) = 1 / max(|g_i| / C, 1)."""
    norm = torch.sqrt((g * g).sum(dim=1, keepdim=True))
    return g * torch.reciprocal(1.0 + torch.relu(norm * (1.0 / c) - 1.0))


def make_dp_step(module: torch.nn.Module, loss: str, layout: Layout, opt: Optimizer, dp: DP, scale: int,
                 bounds: dict | None = None):
    """One DP-SGD step as a function of flat vectors (module docstring); `scale`: the fixed-point scale whose grid
    the uniforms are on."""
    P, B, U = layout.n_params, layout.batch_size, uniforms(layout)
    loss_fn = loss_of(module, loss, layout)

    def step(state_in, batch, noise, challenge, salt_out):
        w = state_in[:P]
        x, y = read_batch(layout, batch, bounds)
        g = clip_rows(per_example_gradients(loss_fn, layout, unflatten(layout, w), x, y), dp.clip)
        z = gaussian(noise[:U], challenge[:U], scale)
        noisy = (g.sum(dim=0) + (dp.noise * dp.clip) * z) / B
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


__all__ = ["DP", "clip_rows", "export_dp_chunk", "frac_sum", "gaussian", "make_dp_chunk", "make_dp_step",
           "noise_length", "challenge_length", "per_example_gradients", "uniforms", "unit_interval"]
