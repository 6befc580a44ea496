"""The public batch order: each epoch visits every committed batch once, in an order drawn from a public seed.

The order is a sort by sha256(seed|epoch|batch), so anyone can recompute it in any language.
"""
from __future__ import annotations

import hashlib

from zkpot.spec.errors import Rejected


def epoch_order(num_batches: int, epoch: int, seed: int) -> list[int]:
    key = lambda b: hashlib.sha256(f"{seed}|{epoch}|{b}".encode()).digest()  # noqa: E731
    return sorted(range(num_batches), key=key)


def schedule(num_batches: int, epochs: int, seed: int) -> list[tuple[int, int]]:
    """(epoch, batch index) for every step of the run, in order."""
    return [(e, b) for e in range(epochs) for b in epoch_order(num_batches, e, seed)]


def chunks(order: list[tuple[int, int]], steps_per_proof: int) -> list[list[tuple[int, int]]]:
    """The schedule cut into proofs: chunk c holds steps c*S .. c*S+S-1."""
    S = steps_per_proof
    return [order[c * S : (c + 1) * S] for c in range(len(order) // S)]


def expected_chunks(m: dict, num_batches: int) -> list[list[tuple[int, int]]]:
    """The chunks a manifest's proofs must cover, from its public claims alone."""
    S = int(m["run"]["steps_per_proof"])
    order = schedule(num_batches, int(m["run"]["epochs"]), int(m["run"]["schedule_seed"]))
    if S < 1 or len(order) % S:
        raise Rejected("schedule", f"{len(order)} steps cannot be cut into proofs of {S} steps")
    return chunks(order, S)
