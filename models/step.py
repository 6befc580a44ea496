"""SGD steps as a function of flat vectors, traced generically and exported to ONNX.

    state_out = step(state_in, batch, salt_out)
    state_out = chunk(state_in, batch_1, ..., batch_S, salt_out)     S steps in one circuit

state = [parameters | momentum buffers (if momentum) | salt]   (the salt makes H(state) hiding)
batch = [features (B x F) | labels (B x L) | salt]              (the salt makes H(batch) hiding)
salt_out = the fresh salt that state_out carries

Gradients come from torch.func.grad of a functional_call of the loss, traced with make_fx:
no hand-written backward pass for any model. Learning rate, momentum, weight decay, the
architecture and the loss are constants of the traced graph, so the circuit's verification
key fixes them. So are frozen parameters (fine-tuning): the layout lists only the parameters
that train; every other parameter of the module enters the graph as a constant with the
module's value (the public base model's), and never moves.
"""
from __future__ import annotations

import contextlib
import fnmatch
import io
import logging
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.func import functional_call, grad
from torch.fx.experimental.proxy_tensor import make_fx

from zkpot.models.bounded import bound_lookups
from zkpot.models.losses import LOSSES
from zkpot.spec.layout import batch_length, param_count, state_length
from zkpot.spec.protocol import SALT_WORDS


@dataclass(frozen=True)
class Layout:
    """Where each value sits in the flat state and batch vectors."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    batch_size: int
    features: int
    label_width: int
    momentum: bool

    @property
    def n_params(self) -> int:
        return param_count(self.shapes)

    @property
    def state_len(self) -> int:
        return state_length(self.n_params, self.momentum)

    @property
    def batch_len(self) -> int:
        return batch_length(self.batch_size, self.features, self.label_width)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Layout":
        return cls(**{**d, "names": tuple(d["names"]), "shapes": tuple(tuple(s) for s in d["shapes"])})


def select(module: torch.nn.Module, patterns: str) -> tuple[str, ...]:
    """The parameter names that train: those matching any of the comma-separated glob patterns
    (fnmatch over names such as "net.2.weight"; "*" trains everything)."""
    names = [n for n, _ in module.named_parameters()]
    globs = [g.strip() for g in patterns.split(",") if g.strip()]
    if not globs:
        raise ValueError("--train names no parameter pattern")
    for g in globs:
        if not fnmatch.filter(names, g):
            raise ValueError(f"--train pattern {g!r} matches no parameter of the model (its parameters: {', '.join(names)})")
    return tuple(n for n in names if any(fnmatch.fnmatchcase(n, g) for g in globs))


def layout_of(module: torch.nn.Module, batch_size: int, features: int, label_width: int, momentum: bool,
              trained: tuple[str, ...] | None = None) -> Layout:
    """The state's layout: the parameters in `trained` (default: all), in the module's order."""
    named = [(n, p) for n, p in module.named_parameters() if trained is None or n in trained]
    return Layout(
        names=tuple(n for n, _ in named),
        shapes=tuple(tuple(p.shape) for _, p in named),
        batch_size=batch_size,
        features=features,
        label_width=label_width,
        momentum=momentum,
    )


def flatten(module: torch.nn.Module, layout: Layout) -> torch.Tensor:
    """The module's trained parameters (the layout's) as one flat vector."""
    params = dict(module.named_parameters())
    return torch.cat([params[n].detach().reshape(-1) for n in layout.names]).float()


def frozen_of(module: torch.nn.Module, layout: Layout) -> dict[str, torch.Tensor]:
    """The parameters that do not train: constants of the step graph."""
    return {n: p.detach() for n, p in module.named_parameters() if n not in layout.names}


def unflatten(layout: Layout, flat: torch.Tensor) -> dict[str, torch.Tensor]:
    out, at = {}, 0
    for name, shape in zip(layout.names, layout.shapes):
        n = math.prod(shape)
        out[name] = flat[at : at + n].reshape(shape)
        at += n
    return out


@dataclass(frozen=True)
class Optimizer:
    """Plain SGD; momentum adds a velocity buffer to the state, weight decay adds wd * w to the gradient."""

    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0


def clip(t: torch.Tensor, bound: float) -> torch.Tensor:
    """t clamped to [-bound, bound] with two ReLUs (ezkl compares by range checks; no table)."""
    return bound - torch.relu(bound - (torch.relu(t + bound) - bound))


def make_step(module: torch.nn.Module, loss: str, layout: Layout, opt: Optimizer, bounds: dict | None = None):
    """One SGD step as a function of flat vectors. With the declared `bounds` ({features, weights}), the step
    clips the batch's features to +-features and the state it returns to +-weights: what `train` does and
    checks, made a property of every proof (an honest run is unchanged: its values are already inside)."""
    P = layout.n_params
    grad_of = grad(loss_of(module, loss, layout))

    def step(state_in, batch, salt_out):
        w = state_in[:P]
        x, y = read_batch(layout, batch, bounds)
        g = grad_of(unflatten(layout, w), x, y)
        g = torch.cat([g[n].reshape(-1) for n in layout.names])
        return update(layout, opt, state_in, w, g, salt_out, bounds)

    return step


def loss_of(module: torch.nn.Module, loss: str, layout: Layout):
    """The loss as a function (params, x, y) of the trained parameters (a dict, the layout's), features and
    labels; every other parameter of the module a constant (frozen)."""
    loss_fn = LOSSES[loss]
    frozen = frozen_of(module, layout)

    def loss_of(params, x, y):  # differentiated in the trained parameters only
        return loss_fn(functional_call(module, {**frozen, **params}, (x,)), y)

    return loss_of


def read_batch(layout: Layout, batch: torch.Tensor, bounds: dict | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A flat batch's features (B x F, clipped to the declared feature bound) and labels (B x L)."""
    B, F, L = layout.batch_size, layout.features, layout.label_width
    x = batch[: B * F].reshape(B, F)
    if bounds:
        x = clip(x, bounds["features"])
    y = batch[B * F : B * (F + L)].reshape(B, L)
    return x, y


def update(layout: Layout, opt: Optimizer, state_in: torch.Tensor, w: torch.Tensor, g: torch.Tensor,
           salt_out: torch.Tensor, bounds: dict | None) -> torch.Tensor:
    """The state after the optimizer's update of the parameters w = state_in[:P] with gradient g (weight decay,
    momentum), clipped to the declared weight bound, carrying salt_out."""
    P = layout.n_params
    if opt.weight_decay:
        g = g + opt.weight_decay * w
    if layout.momentum:
        v = opt.momentum * state_in[P : 2 * P] + g
        trained = torch.cat([w - opt.lr * v, v])
    else:
        trained = w - opt.lr * g
    return torch.cat([clip(trained, bounds["weights"]) if bounds else trained, salt_out])


def make_chunk(step, steps: int):
    """S consecutive steps as one function: a proof of it covers S SGD steps.

    Inner states keep their incoming salt (they are never committed); only the last step
    takes the fresh salt_out.
    """

    def chunk(state_in, *batches_and_salt):
        *batches, salt_out = batches_and_salt
        assert len(batches) == steps
        state = state_in
        for i, batch in enumerate(batches):
            state = step(state, batch, salt_out if i == steps - 1 else state[-SALT_WORDS:])
        return state

    return chunk


def example_inputs(layout: Layout, steps: int) -> tuple[torch.Tensor, ...]:
    # distinct tensors: make_fx would trace one tensor passed twice as one input
    return (torch.zeros(layout.state_len), *[torch.zeros(layout.batch_len) for _ in range(steps)], torch.zeros(SALT_WORDS))


def input_names(steps: int) -> list[str]:
    return ["state_in", *[f"batch_{i}" for i in range(steps)], "salt_out"]


def export_chunk(step, layout: Layout, steps: int, path: Path, scale: int) -> None:
    """Trace S steps (forward, backward, update each) with make_fx and write ONNX with the dynamo exporter;
    `scale`: the fixed-point scale its lookups are bounded for (models/bounded.py)."""
    export(make_chunk(step, steps), example_inputs(layout, steps), input_names(steps), "state_out", path, scale)


def make_forward(module: torch.nn.Module, layout: Layout, rows: int):
    """The model's prediction on `rows` inputs, as a function of a committed state:

        prediction = forward(state, inputs)      inputs = [rows x features | salt]

    The state is the training state, velocity and salt included, so that the proof's H(state) is the
    run's final commitment itself; the inputs carry their own salt, so H(inputs) hides them."""
    P, F = layout.n_params, layout.features
    frozen = frozen_of(module, layout)

    def forward(state, inputs):
        x = inputs[: rows * F].reshape(rows, F)
        return functional_call(module, {**frozen, **unflatten(layout, state[:P])}, (x,))

    return forward


def export_forward(module: torch.nn.Module, layout: Layout, rows: int, path: Path, scale: int) -> None:
    """Trace the prediction on `rows` inputs and write it as ONNX, as export_chunk does a step."""
    args = (torch.zeros(layout.state_len), torch.zeros(rows * layout.features + SALT_WORDS))
    export(make_forward(module, layout, rows), args, ["state", "inputs"], "prediction", path, scale)


# Ops whose fused ONNX form ezkl's tract front end cannot compile (LayerNormalization's three outputs, GELU's
# Erf shared by forward and backward become "Dummy" nodes): traced as their decompositions instead.
DECOMPOSITIONS = (torch.ops.aten.native_layer_norm, torch.ops.aten.native_layer_norm_backward,
                  torch.ops.aten.gelu, torch.ops.aten.gelu_backward)


def export(fn, args: tuple, inputs: list[str], output: str, path: Path, scale: int, domains: bool = False) -> None:
    """make_fx, every lookup's input clamped where it saturates at `scale` (so its table is a function of the
    claims), then torch's dynamo exporter at the opset ezkl's tract backend is tested against. `domains`: a DP
    step's Ln and Cos clamped to their noise transform's domains too (models/bounded.py)."""
    from torch._decomp import get_decompositions

    gm = make_fx(fn, decomposition_table=get_decompositions(list(DECOMPOSITIONS)))(*args)
    gm.graph.eliminate_dead_code()  # the forward loss value is traced but unused: drop it
    bound_lookups(gm, scale, domains=domains)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(gm, args, str(path), dynamo=True, external_data=False, opset_version=18,
                          input_names=inputs, output_names=[output], verbose=False)
