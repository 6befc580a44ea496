"""The KZG decider that ezkl's verify_aggr leaves out, done independently with py_ecc.

An aggregated proof does not check its inner proofs' KZG openings: it folds them into one
accumulator (lhs, rhs) in G1 and exposes it as its first 16 public instances (lhs.x, lhs.y,
rhs.x, rhs.y; 4 limbs of 68 bits each, least significant first). The inner proofs are valid only
if e(lhs, [1]_2) = e(rhs, [s]_2) with the G2 points of the SRS the proofs were made with.
ezkl.verify_aggr never evaluates this pairing, so without it a fold of invalid proofs "verifies".
"""
from __future__ import annotations

import secrets
from pathlib import Path

from py_ecc import optimized_bn128 as bn
from py_ecc.fields import optimized_bn128_FQ as FQ
from py_ecc.fields import optimized_bn128_FQ2 as FQ2

from zkpot.spec.felts import felt_to_int
from zkpot.spec.fold_plan import ACC_INSTANCES, ACC_LIMB_BITS as LIMB_BITS, ACC_LIMBS as LIMBS
from zkpot.spec.layout import BASE_FIELD as _Q, srs_g2_of

assert _Q == bn.field_modulus


class DeciderError(ValueError):
    """An accumulator that is malformed or fails the pairing check."""


def accumulator(instances: list[str]) -> tuple[tuple, tuple]:
    """(lhs, rhs) as py_ecc G1 points from the first 16 instances of an aggregated proof."""
    if len(instances) < ACC_INSTANCES:
        raise DeciderError(f"{len(instances)} instances, an accumulator needs {ACC_INSTANCES}")
    limbs = [felt_to_int(h) for h in instances[:ACC_INSTANCES]]
    if any(limb >> LIMB_BITS for limb in limbs):
        raise DeciderError("an accumulator limb exceeds 68 bits")
    coords = [sum(limbs[4 * c + i] << (LIMB_BITS * i) for i in range(LIMBS)) for c in range(4)]
    if any(x >= _Q for x in coords):
        raise DeciderError("an accumulator coordinate is not a base-field element")
    points = [(FQ(coords[0]), FQ(coords[1]), FQ.one()), (FQ(coords[2]), FQ(coords[3]), FQ.one())]
    for p in points:
        if not bn.is_on_curve(p, bn.b):
            raise DeciderError("an accumulator point is not on BN254's G1")
    return points[0], points[1]


def limbs(point: tuple) -> list[str]:
    """The inverse of `accumulator` for one point: x then y, 4 little-endian 68-bit limbs each, as felts."""
    mask = (1 << LIMB_BITS) - 1
    return [((int(c) >> (LIMB_BITS * i)) & mask).to_bytes(32, "little").hex() for c in bn.normalize(point)
            for i in range(LIMBS)]


def _g2(words: tuple[int, ...]) -> tuple:
    p = (FQ2([words[0], words[1]]), FQ2([words[2], words[3]]), FQ2.one())
    if not bn.is_on_curve(p, bn.b2):
        raise DeciderError("SRS G2 point is not on the curve")
    return p


def srs_g2(srs_file: Path) -> tuple[tuple, tuple]:
    """[1]_2 and [s]_2: the last 256 bytes of an ezkl KZG SRS file."""
    g2, s_g2 = srs_g2_of(srs_file)
    return _g2(g2), _g2(s_g2)


def decide_all(accumulators: list[list[str]], g2: tuple, s_g2: tuple) -> int | None:
    """None iff every accumulator satisfies e(lhs_i, [1]_2) = e(rhs_i, [s]_2); else the first that fails.

    One pairing-product equation for all of them: with fresh random 128-bit r_i,
    e(sum r_i lhs_i, [1]_2) * e(-sum r_i rhs_i, [s]_2) = 1, two Miller loops and one final
    exponentiation whatever the tree. If any single equation fails, the combination passes with
    probability at most 2^-128 (G_T has prime order; a nonzero linear form in the r_i rarely
    vanishes). Only on failure are they checked one by one, to name the culprit.
    """
    points = [accumulator(a) for a in accumulators]
    lhs, rhs = bn.Z1, bn.Z1
    for p, q in points:
        r = secrets.randbits(128) | 1
        lhs, rhs = bn.add(lhs, bn.multiply(p, r)), bn.add(rhs, bn.multiply(q, r))
    if pairings_equal(lhs, g2, rhs, s_g2):
        return None
    return next((i for i, (p, q) in enumerate(points) if not pairings_equal(p, g2, q, s_g2)), 0)


def pairings_equal(a1: tuple, b1: tuple, a2: tuple, b2: tuple) -> bool:
    """e(a1, b1) == e(a2, b2) with a_i in G1, b_i in G2: two Miller loops, one final exponentiation."""
    f = bn.pairing(b1, a1, final_exponentiate=False) * bn.pairing(b2, bn.neg(a2), final_exponentiate=False)
    return bn.final_exponentiate(f) == bn.FQ12.one()
