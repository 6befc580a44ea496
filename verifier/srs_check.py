"""Check an ezkl/halo2 KZG SRS file with py_ecc: are its points the powers of one secret s?

No check can show that nobody knows s (only an honest ceremony gives that). What the checks do
show is that the file is a well-formed SRS, so that the ceremony's (or anyone's) claim about s is
the only thing left to trust, and that the vk a setup derives from it commits to the stated circuit.

File layout (halo2 ParamsKZG::write, raw bytes; checked against files made by ezkl.gen_srs):

    k: u32 LE | g[0..n): G1 | g_lagrange[0..n): G1 | h: G2 | s·h: G2        n = 2^k

G1 = x ‖ y, G2 = x.c0 ‖ x.c1 ‖ y.c0 ‖ y.c1; every coordinate 32 bytes little-endian in
Montgomery form (value·2^256 mod p). halo2 reads g and h at verification, and commits the
circuit's fixed columns with g_lagrange at setup: a wrong Lagrange basis gives a vk for a
different circuit, even when the vk is "rebuilt", so the basis is checked too.

Checks (with n−1 pairs (i, i+1) of powers and n Lagrange points):
  curve      every point is on its curve and not infinity; s·h is in the order-r subgroup
             (G1 has cofactor 1, so on the curve means in the subgroup)
  generators g[0] = G1 and h = G2, the standard BN254 generators (py_ecc's)
  powers     e(g[i+1], h) = e(g[i], s·h): by the sum over all pairs (deterministic; catches any single
             bad power), then a random linear combination (128-bit scalars) of a random sample of pairs
  lagrange   g_lagrange[i] = [L_i(s)] for L_i(X) = ω^i(X^n − 1)/(n(X − ω^i)): Σ g_lagrange[i] = g[0] and
             Σ (−1)^i g_lagrange[i] = g[n/2] (deterministic), and e(n·ω^−i·L_i, s·h)·e(−n·L_i, h) = e(G1, h)^(s^n−1)
             for every i, on a random zero-sum combination of a random sample of i (the common right
             side cancels). Together these pin every L_i down.
"""
from __future__ import annotations

import secrets
import struct
import time
from pathlib import Path

from py_ecc import optimized_bn128 as bn
from py_ecc.optimized_bn128 import FQ, FQ2

from zkpot.circuits import srs as srs_mod
from zkpot.spec import cache
from zkpot.spec.artifacts import ArtifactError, write_json
from zkpot.spec.errors import Rejected
from zkpot.verifier.decider import pairings_equal

P = bn.field_modulus
R = bn.curve_order
R_INV = pow(1 << 256, -1, P)                       # Montgomery: stored value = x·2^256 mod p
ROOT_OF_UNITY = pow(7, (R - 1) >> 28, R)           # halo2curves' 2^28-th root of unity in Fr (generator 7)
G1_BYTES, G2_BYTES = 64, 128
DEFAULT_SAMPLES = 256
SCALAR_BITS = 128


def _fq(raw: bytes, where: str) -> int:
    v = int.from_bytes(raw, "little")
    if v >= P:
        raise Rejected("srs", f"{where}: coordinate not reduced modulo p")
    return v * R_INV % P


def _g1(buf: bytes, off: int, where: str):
    if not any(buf[off : off + G1_BYTES]):
        raise Rejected("srs", f"{where} is the point at infinity")
    pt = (FQ(_fq(buf[off : off + 32], where)), FQ(_fq(buf[off + 32 : off + 64], where)), FQ.one())
    if not bn.is_on_curve(pt, bn.b):
        raise Rejected("srs", f"{where} is not on the BN254 G1 curve")
    return pt


def _g2(buf: bytes, off: int, where: str):
    if not any(buf[off : off + G2_BYTES]):
        raise Rejected("srs", f"{where} is the point at infinity")
    c = [_fq(buf[off + 32 * j : off + 32 * j + 32], where) for j in range(4)]
    pt = (FQ2(c[0:2]), FQ2(c[2:4]), FQ2.one())
    if not bn.is_on_curve(pt, bn.b2):
        raise Rejected("srs", f"{where} is not on the BN254 G2 twist")
    if not bn.is_inf(bn.multiply(pt, R)):
        raise Rejected("srs", f"{where} is not in the order-r subgroup of G2")
    return pt


class SrsFile:
    """The file's bytes, decoding a point (and checking it is on its curve) only when asked:
    memory stays the file's size (268 MB at k=21) however many points are checked."""

    def __init__(self, path: Path):
        self.k = srs_mod.logrows_of(path)
        self.n = 1 << self.k
        size = 4 + 2 * self.n * G1_BYTES + 2 * G2_BYTES
        self.buf = Path(path).read_bytes()
        if len(self.buf) != size or struct.unpack("<I", self.buf[:4])[0] != self.k:
            raise ArtifactError(f"{path}: {len(self.buf)} bytes, an SRS of k={self.k} has exactly {size}")
        base = 4 + 2 * self.n * G1_BYTES
        self.h, self.sh = _g2(self.buf, base, "h"), _g2(self.buf, base + G2_BYTES, "s·h")

    def g(self, i: int):
        return _g1(self.buf, 4 + i * G1_BYTES, f"g[{i}]")

    def lag(self, i: int):
        return _g1(self.buf, 4 + (self.n + i) * G1_BYTES, f"g_lagrange[{i}]")


def msm(points: list, scalars: list[int]):
    """Σ scalars[i]·points[i] by the bucket method: ~(bits/c)(n + 2^c) additions, not n·bits."""
    total = bn.Z1
    scalars = [s % R for s in scalars]
    if not points:
        return total
    c = max(2, min(14, len(points).bit_length() - 2))
    for w in reversed(range(0, max(s.bit_length() for s in scalars) or 1, c)):
        for _ in range(c):
            total = bn.double(total)
        buckets: dict[int, tuple] = {}
        for pt, s in zip(points, scalars):
            d = (s >> w) & ((1 << c) - 1)
            if d:
                buckets[d] = bn.add(buckets[d], pt) if d in buckets else pt
        running = acc = bn.Z1
        for d in range((1 << c) - 1, 0, -1):
            if d in buckets:
                running = bn.add(running, buckets[d])
            acc = bn.add(acc, running)
        total = bn.add(total, acc)
    return total


def _sum(points):
    acc = bn.Z1
    for pt in points:
        acc = bn.add(acc, pt)
    return acc


def _sample(population: int, m: int) -> list[int]:
    return list(range(population)) if m >= population else sorted(secrets.SystemRandom().sample(range(population), m))


def check_powers(srs: SrsFile, samples: int) -> str:
    n, h, sh = srs.n, srs.h, srs.sh
    middle = _sum(srs.g(i) for i in range(1, n - 1))            # decodes (and curve-checks) every power
    first, last = srs.g(0), srs.g(n - 1)
    if not pairings_equal(bn.add(middle, last), h, bn.add(first, middle), sh):
        raise Rejected("srs", "powers: the sum over all pairs fails e(g[i+1], h) = e(g[i], s·h): "
                              "some g[i] is not s^i·G1 for the s of s·h")
    idx = _sample(n - 1, samples)
    r = [secrets.randbits(SCALAR_BITS) for _ in idx]
    if not pairings_equal(msm([srs.g(i + 1) for i in idx], r), h, msm([srs.g(i) for i in idx], r), sh):
        raise Rejected("srs", f"powers: a random linear combination of {len(idx)} pairs fails "
                              "e(g[i+1], h) = e(g[i], s·h): some g[i] is not s^i·G1")
    return (f"e(g[i+1], h) = e(g[i], s·h): sum over all {n - 1} pairs, and a random linear combination "
            f"({SCALAR_BITS}-bit scalars) of {'all' if len(idx) == n - 1 else 'a random sample of'} "
            f"{len(idx)} of the {n - 1} pairs")


def check_lagrange(srs: SrsFile, samples: int) -> str:
    n, h, sh = srs.n, srs.h, srs.sh
    total = alternating = bn.Z1
    for i in range(n):                                          # decodes (and curve-checks) every point
        pt = srs.lag(i)
        total = bn.add(total, pt)
        alternating = bn.add(alternating, pt if i % 2 == 0 else bn.neg(pt))
    if not bn.eq(total, srs.g(0)):
        raise Rejected("srs", "lagrange: the Lagrange points do not sum to g[0] (Σ L_i(s) = 1)")
    if n >= 2 and not bn.eq(alternating, srs.g(n // 2)):
        raise Rejected("srs", f"lagrange: Σ (−1)^i·g_lagrange[i] is not g[{n // 2}]")
    idx = _sample(n, samples)
    r = [secrets.randbits(SCALAR_BITS) for _ in idx[:-1]]
    r.append(-sum(r))                                  # zero sum: the common e(G1, h)^(s^n−1) cancels
    w_inv = pow(pow(ROOT_OF_UNITY, 1 << (28 - srs.k), R), -1, R)
    pts = [srs.lag(i) for i in idx]
    left = msm(pts, [ri * n * pow(w_inv, i, R) for ri, i in zip(r, idx)])
    right = msm(pts, [ri * n for ri in r])
    if not pairings_equal(left, sh, right, h):
        raise Rejected("srs", f"lagrange: a random combination of {len(idx)} points fails "
                              "e(n·ω^−i·L_i, s·h) = e(n·L_i, h)·e(G1, h)^(s^n−1): not the Lagrange basis of s")
    return (f"g_lagrange = [L_i(s)]: sum and alternating sum over all {n}, and a random zero-sum combination "
            f"({SCALAR_BITS}-bit scalars) of {'all' if len(idx) == n else 'a random sample of'} {len(idx)} of the {n} points")


def check_srs(path: Path, samples: int = DEFAULT_SAMPLES) -> dict:
    """Every check above; raises Rejected naming the first that fails, else returns what was checked."""
    if samples < 2:
        raise ArtifactError("--samples must be at least 2")
    start = time.perf_counter()
    ident = srs_mod.identify(path)
    srs = SrsFile(path)
    if not bn.eq(srs.g(0), bn.G1):
        raise Rejected("srs", "generators: g[0] is not the BN254 G1 generator (1, 2)")
    if not bn.eq(srs.h, bn.G2):
        raise Rejected("srs", "generators: h is not the BN254 G2 generator")
    if bn.eq(srs.sh, srs.h):
        raise Rejected("srs", "generators: s·h = h, so s = 1")
    checks = ["generators: g[0] = G1 and h = G2 (BN254)",
              "powers: " + check_powers(srs, samples),
              "lagrange: " + check_lagrange(srs, samples),
              f"curve: all {2 * srs.n} G1 points on the curve and not infinity, h and s·h on the twist and in the order-r subgroup"]
    return {**ident, "checks": checks, "samples": samples, "seconds": round(time.perf_counter() - start, 2)}


def import_srs(path: Path, samples: int = DEFAULT_SAMPLES, record: Path | None = None) -> tuple[dict, Path]:
    """`zkpot srs import`: check_srs, then remember the file by its sha256 (verify and fold find it from then
    on) and write the check's record (default: the cache's srs-checked namespace); (result, record path)."""
    res = check_srs(path, samples)
    srs_mod.see(path)
    record = record or cache.entry("srs-checked", sha256=res["sha256"]) / "check.json"
    write_json(record, {**res, "file": str(Path(path).resolve())})
    return res, record
