"""Salts and batch commitments' preimages.

Every salt is SALT_WORDS words of SALT_BITS bits (144 bits) derived from a 256-bit master key
drawn from `secrets` with a keyed BLAKE2b PRF, one domain per use ("batch", "state"): fresh
for every batch and every state, yet a resumed run recomputes the same salts. The master key
never leaves private/.
"""
from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import numpy as np

from zkpot.spec.artifacts import atomic_path
from zkpot.spec.protocol import SALT_BITS, SALT_WORDS


def load_or_create_master_key(path: Path) -> bytes:
    if path.exists():
        key = path.read_bytes()
        if len(key) != 32:
            raise ValueError(f"{path}: corrupt master key ({len(key)} bytes, expected 32)")
        return key
    key = secrets.token_bytes(32)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with atomic_path(path, mode=0o600) as tmp:
        tmp.write_bytes(key)
    return key


def salt_words(master: bytes, domain: str, index: int) -> list[int]:
    """SALT_WORDS uniform integers in [0, 2^SALT_BITS)."""
    digest = hashlib.blake2b(f"{domain}:{index}".encode(), key=master, digest_size=32).digest()
    n = int.from_bytes(digest, "little")
    mask = (1 << SALT_BITS) - 1
    return [(n >> (SALT_BITS * i)) & mask for i in range(SALT_WORDS)]


def private_seed(master: bytes, domain: str) -> int:
    """A seed for a private random choice (which rows, which partition): hidden like the salts."""
    return int.from_bytes(hashlib.blake2b(f"seed:{domain}".encode(), key=master, digest_size=8).digest(), "little")


def salt_values(words: list[int], scale: int) -> list[float]:
    """Salt words as the floats that ezkl quantizes back to exactly those integers."""
    return [w / (1 << scale) for w in words]


def partition(n_rows: int, batch_size: int, seed: int) -> list[list[int]]:
    """Private, fixed partition of the rows into full batches (a remainder of < batch_size rows is dropped)."""
    perm = np.random.default_rng(seed).permutation(n_rows)
    n = n_rows // batch_size
    if n == 0:
        raise ValueError(f"{n_rows} rows cannot fill one batch of {batch_size}")
    return [perm[i * batch_size : (i + 1) * batch_size].tolist() for i in range(n)]


def batch_vector(X: np.ndarray, Y: np.ndarray, rows: list[int], salt: list[float]) -> list[float]:
    """The batch input: features row-major, then encoded labels, then the salt."""
    return X[rows].reshape(-1).tolist() + Y[rows].reshape(-1).tolist() + list(salt)


def to_felts(values, scale: int) -> list[str]:
    """Quantize floats to field elements (ezkl's own rounding), the form every input is given in."""
    import ezkl

    return [ezkl.float_to_felt(float(v), scale) for v in values]


def commitment(felts: list[str]) -> str:
    """The Poseidon hash ezkl exposes for a "hashed" input or output."""
    import ezkl

    return ezkl.poseidon_hash(felts)[0]


def batch_felts(X, Y, parts, b: int, master: bytes, scale: int) -> list[str]:
    """Batch b's committed vector (rows, labels, salt) as field elements."""
    return to_felts(batch_vector(X, Y, parts[b], salt_values(salt_words(master, "batch", b), scale)), scale)
