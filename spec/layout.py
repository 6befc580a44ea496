"""Layout arithmetic: how many values the state, a batch and a step take, and how large an SRS file is.

state = [parameters | momentum buffers (if momentum) | salt]      (models/step.py)
batch = [features (B x F) | labels (B x L) | salt]
"""
from __future__ import annotations

import math

from zkpot.spec.protocol import SALT_WORDS


def param_count(shapes) -> int:
    return sum(math.prod(s) for s in shapes)


def state_values(n_params: int, momentum: bool) -> int:
    """The trained values a state holds (its salt aside): the parameters, and their velocity with momentum."""
    return n_params * (2 if momentum else 1)


def state_length(n_params: int, momentum: bool) -> int:
    return state_values(n_params, momentum) + SALT_WORDS


def batch_length(batch_size: int, features: int, label_width: int) -> int:
    return batch_size * (features + label_width) + SALT_WORDS


def step_inputs(layout: dict, steps_per_proof: int) -> int:
    """Values a chunk circuit takes: state_in, its batches, and the output state's fresh salt."""
    return (state_length(param_count(layout["shapes"]), layout["momentum"]) + SALT_WORDS
            + steps_per_proof * batch_length(layout["batch_size"], layout["features"], layout["label_width"]))


def srs_bytes(k: int) -> int:
    """An ezkl KZG SRS file: k (u32) | g[0..2^k) | its Lagrange basis (G1, 64 bytes each) | h | s·h (G2, 128 each)."""
    return 4 + (128 << k) + 256
