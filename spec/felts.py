"""Field elements of BN254's scalar field as ezkl writes them: 64 hex digits, little-endian, reduced."""
from __future__ import annotations

from zkpot.spec.protocol import FIELD_MODULUS


def is_felt(v) -> bool:
    """A field element as ezkl writes it: ezkl panics on anything else."""
    if not (isinstance(v, str) and len(v) == 64):
        return False
    try:
        return int.from_bytes(bytes.fromhex(v), "little") < FIELD_MODULUS
    except ValueError:
        return False


def felt_to_int(felt_le_hex: str) -> int:
    return int.from_bytes(bytes.fromhex(felt_le_hex), "little")


def int_to_felt(n: int) -> str:
    """A field element from an integer (negatives wrap, as ezkl's quantization of a negative value does)."""
    return (n % FIELD_MODULUS).to_bytes(32, "little").hex()
