"""The public batch order: each epoch visits every committed batch once, in an order drawn from a public seed.

The order is a sort by sha256(seed|epoch|batch), so anyone can recompute it in any language.
"""
from __future__ import annotations

import hashlib


def epoch_order(num_batches: int, epoch: int, seed: int) -> list[int]:
    key = lambda b: hashlib.sha256(f"{seed}|{epoch}|{b}".encode()).digest()  # noqa: E731
    return sorted(range(num_batches), key=key)


def schedule(num_batches: int, epochs: int, seed: int) -> list[tuple[int, int]]:
    """(epoch, batch index) for every step of the run, in order."""
    return [(e, b) for e in range(epochs) for b in epoch_order(num_batches, e, seed)]
