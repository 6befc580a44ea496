"""Layout arithmetic: how many values the state, a batch and a step take, how large an SRS file is, where its G2 points are.

state = [parameters | momentum buffers (if momentum) | salt]      (models/step.py)
batch = [features (B x F) | labels (B x L) | salt]
"""
from __future__ import annotations

import math

from zkpot.spec import dp as dp_spec
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


def step_inputs(layout: dict, steps_per_proof: int, dp: bool = False) -> int:
    """Values a chunk circuit takes: state_in, its batches (with a DP step's noise and challenge), and the
    output state's fresh salt."""
    n = param_count(layout["shapes"])
    per_step = batch_length(layout["batch_size"], layout["features"], layout["label_width"])
    if dp:
        per_step += dp_spec.noise_length(n) + dp_spec.challenge_length(n)
    return state_length(n, layout["momentum"]) + SALT_WORDS + steps_per_proof * per_step


# A chunk proof's public instances, one hash per input then the output's:
#   H(state_in), per step H(batch) [, H(noise), H(challenge) in a DP run], H(salt_out), H(state_out)
def inputs_per_step(dp: bool) -> int:
    return 3 if dp else 1


def chunk_instances(steps_per_proof: int, dp: bool = False) -> int:
    return steps_per_proof * inputs_per_step(dp) + 3


def batch_at(i: int, dp: bool = False) -> int:
    """Where step i's H(batch) is among its chunk proof's instances."""
    return 1 + i * inputs_per_step(dp)


def noise_at(i: int) -> int:
    """(DP) where step i's noise commitment is."""
    return batch_at(i, True) + 1


def challenge_at(i: int) -> int:
    """(DP) where step i's H(challenge) is."""
    return batch_at(i, True) + 2


def srs_bytes(k: int) -> int:
    """An ezkl KZG SRS file: k (u32) | g[0..2^k) | its Lagrange basis (G1, 64 bytes each) | h | s·h (G2, 128 each)."""
    return 4 + (128 << k) + 256


BASE_FIELD = 21888242871839275222246405745257275088696311157297823662689037894645226208583  # BN254's q
_MONT_R_INV = pow(2**256 % BASE_FIELD, -1, BASE_FIELD)  # ezkl/halo2 store coordinates in Montgomery form


def srs_g2_coordinates(tail: bytes) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """[1]_2 and [s]_2 from an SRS file's last 256 bytes, each as (x.c0, x.c1, y.c0, y.c1): what the decider
    pairs with, off chain (verifier/decider.py) and on chain (ZkpotRun.sol)."""
    if len(tail) != 256:
        raise ValueError(f"an SRS's G2 points take 256 bytes, got {len(tail)}")
    words = [int.from_bytes(tail[i:i + 32], "little") * _MONT_R_INV % BASE_FIELD for i in range(0, 256, 32)]
    return tuple(words[:4]), tuple(words[4:])


def srs_g2_of(srs_file) -> tuple[tuple[int, ...], tuple[int, ...]]:
    with open(srs_file, "rb") as f:
        f.seek(-256, 2)
        return srs_g2_coordinates(f.read(256))
