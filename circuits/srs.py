"""The structured reference string (KZG powers of tau on BN254): where it comes from, what it is.

A dev SRS made here by ezkl.gen_srs has a trapdoor this machine saw: anyone who kept it can
forge proofs. It is for development only, and every artifact says so. A public ceremony file
is recognised by its sha256 (the list ezkl 22.3.0 ships in src/srs_sha.rs).
"""
from __future__ import annotations

import shutil
import struct
from pathlib import Path

import ezkl

from zkpot.spec import cache
from zkpot.spec.artifacts import ArtifactError, atomic_path, parse_json, sha256_file, write_json
from zkpot.spec.layout import srs_bytes
from zkpot.spec.protocol import MAX_SRS_LOGROWS

# sha256 of the public ceremony-derived KZG SRS files, by logrows (as listed in ezkl 22.3.0).
CEREMONY_SHA256 = {
    1: "cafb2aa72c200ddc4e28aacabb8066e829207e2484b8d17059a566232f8a297b",
    2: "8194ec51da5d332d2e17283ade34920644774452c2fadf33742e8c739e275d8e",
    3: "0729e815bce2ac4dfad7819982c6479c3b22c32b71f64dca05e8fdd90e8535ef",
    4: "2c0785da20217fcafd3b12cc363a95eb2529037cc8a9bddf8fb15025cbc8cdc9",
    5: "5b950e3b76e7a9923d69f6d6585ce6b5f9458e5ec57a71c9de5005d32d544692",
    6: "85030b2924111fc60acaf4fb8a7bad89531fbe0271aeab0c21e545f71eee273d",
    7: "e65f95150519fe01c2bedf8f832f5249822ef84c9c017307419e10374ff9eeb1",
    8: "446092fd1d6030e5bb2f2a8368267d5ed0fbdb6a766f6c5e4a4841827ad3106f",
    9: "493d088951882ad81af11e08c791a38a37c0ffff14578cf2c7fb9b7bca654d8b",
    10: "9705d450e5dfd06adb673705f7bc34418ec86339203198beceb2ae7f1ffefedb",
    11: "257fa566ed9bc0767d3e63e92b5e966829fa3347d320a32055dc31ee7d33f8a4",
    12: "28b151069f41abc121baa6d2eaa8f9e4c4d8326ddbefee2bd9c0776b80ac6fad",
    13: "d5d94bb25bdc024f649213593027d861042ee807cafd94b49b54f1663f8f267d",
    14: "c09129f064c08ecb07ea3689a2247dcc177de6837e7d2f5f946e30453abbccef",
    15: "90807800a1c3b248a452e1732c45ee5099f38b737356f5542c0584ec9c3ebb45",
    16: "2a1a494630e71bc026dd5c0eab4c1b9a5dbc656228c1f0d48f5dbd3909b161d3",
    17: "41509f380362a8d14401c5ae92073154922fe23e45459ce6f696f58607655db7",
    18: "d0148475717a2ba269784a178cb0ab617bc77f16c58d4a3cbdfe785b591c7034",
    19: "d1a1655b4366a766d1578beb257849a92bf91cb1358c1a2c37ab180c5d3a204d",
    20: "54ef75911da76d7a6b7ea341998aaf66cb06c679c53e0a88a4fe070dd3add963",
    21: "486e044cf98704e07f41137d2b89698dc03d1fbf34d13b60902fea19a6013b4b",
    22: "1ee9b4396db3e4e2516ac5016626ab6ba967f091d5d23afbdb7df122a0bb9d0c",
    23: "748e48b9b6d06f9c82d26bf551d0af43ee2e801e4be56d7ccb20312e267fd1d6",
    24: "f94fa4afa2f5147680f907d4dd96a8826206c26bd3328cd379feaed614b234de",
    25: "dec49a69893fbcd66cd06296b2d936a6aceb431c130b2e52675fe4274b504f57",
    26: "b198a51d48b88181508d8e4ea9dea39db285e4585663b29b7e4ded0c22a94875",
}

CEREMONY = "ceremony"
INSECURE = "insecure-dev"


def logrows_of(path: Path) -> int:
    """An ezkl SRS file starts with k as a little-endian u32; its size must fit 2^k points."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"SRS file not found: {path}")
    with open(path, "rb") as f:
        head = f.read(4)
    if len(head) != 4:
        raise ArtifactError(f"{path}: too short to be an SRS")
    (k,) = struct.unpack("<I", head)
    if not 1 <= k <= MAX_SRS_LOGROWS:
        raise ArtifactError(f"{path}: not an ezkl KZG SRS file (header says k={k})")
    # k | g[0..2^k) | g_lagrange[0..2^k) (G1, 64 bytes each) | h | s·h (G2, 128 bytes each)
    if path.stat().st_size != srs_bytes(k):
        raise ArtifactError(f"{path}: {path.stat().st_size} bytes, an SRS of k={k} has exactly {srs_bytes(k)}"
                            " (truncated or padded)")
    return k


def identify(path: Path, digest: str | None = None) -> dict:
    """sha256, logrows and origin of an SRS file; origin is judged from the hash, never from a claim.
    `digest`: the file's sha256 where the caller has just computed it (a large SRS is hashed once)."""
    k = logrows_of(path)
    digest = digest or sha256_file(path)
    origin = CEREMONY if CEREMONY_SHA256.get(k) == digest else INSECURE
    return {"sha256": digest, "logrows": k, "origin": origin}


# --- the verifier's part ---------------------------------------------------------------------------
# A KZG verifier reads g[0], h and s·h only (ezkl's reduced_srs loads the file downsized to k=1), so a
# bundle carries the k=1 SRS cut from its full SRS: 516 bytes instead of 268 MB at k=21. Only the full
# file (hashed) says which SRS that is; each machine remembers, by sha256, the verifier part of every
# full SRS it has hashed, so the identity of a bundle's 516 bytes is checked without the 2^k points.

VERIFIER_K = 1


def verifier_srs(full: Path) -> bytes:
    """The k=1 SRS of `full` (what halo2's downsize(1) gives): g[0], g[1], the Lagrange basis of the
    domain {1, -1}, i.e. [(1+s)/2] and [(1-s)/2], then h and s·h."""
    from py_ecc import optimized_bn128 as bn  # (imported here: a cached verification never cuts an SRS)

    logrows_of(full)
    with open(full, "rb") as f:
        f.seek(4)
        g = f.read(128)
        f.seek(-256, 2)
        g2 = f.read(256)
    mont = (1 << 256) % bn.field_modulus  # halo2 stores coordinates in Montgomery form, little-endian

    def point(raw: bytes):
        x, y = (int.from_bytes(raw[i : i + 32], "little") * pow(mont, -1, bn.field_modulus) for i in (0, 32))
        return bn.FQ(x), bn.FQ(y), bn.FQ.one()

    def raw(p) -> bytes:
        return b"".join((int(c) * mont % bn.field_modulus).to_bytes(32, "little") for c in bn.normalize(p))

    g0, g1, half = point(g[:64]), point(g[64:]), pow(2, -1, bn.curve_order)
    lagrange = (bn.multiply(bn.add(g0, g1), half), bn.multiply(bn.add(g0, bn.neg(g1)), half))
    return struct.pack("<I", VERIFIER_K) + g + b"".join(map(raw, lagrange)) + g2


def see(full: Path) -> dict:
    """Hash a full SRS and remember (sealed: spec/cache.py) its logrows, where it is, and its verifier
    part; its identity."""
    ident = identify(full)
    d = _seen(ident["sha256"])
    with atomic_path(d / "verifier.srs") as tmp:
        tmp.write_bytes(verifier_srs(full))
    cache.seal(d / "verifier.srs")
    here = str(Path(full).resolve())
    write_json(d / "srs.json", {"sha256": ident["sha256"], "logrows": ident["logrows"],
                                "paths": [here] + [p for p in _record(d).get("paths", []) if p != here][:7]})
    cache.seal(d / "srs.json")
    return ident


def seen(digest: str) -> tuple[dict, bytes] | None:
    """(identity, verifier part) of the full SRS with this sha256, if this machine has hashed it (its
    sealed record); the origin is judged from the hash again, never from the record."""
    d = _seen(digest)
    record, part = _record(d), cache.sealed(d / "verifier.srs")
    if record.get("sha256") != digest or part is None:
        return None
    k = record["logrows"]
    return {"sha256": digest, "logrows": k, "origin": CEREMONY if CEREMONY_SHA256.get(k) == digest else INSECURE}, part


def _record(d: Path) -> dict:
    """srs.json of a seen entry if sealed by this user, else {} (a planted record is not read)."""
    raw = cache.sealed(d / "srs.json")
    record = parse_json(raw, d / "srs.json") if raw is not None else {}
    return record if isinstance(record, dict) else {}


def full_file(digest: str) -> Path | None:
    """The full SRS with this sha256 where this machine last saw it (newest first) and it is still that
    file (re-hashed), or None."""
    paths = _record(_seen(digest)).get("paths", [])
    return next((Path(p) for p in paths if Path(p).is_file() and sha256_file(p) == digest), None)


def full_srs(digest: str, given: Path | None = None, purpose: str = "this", hint: str = "pass it with --srs FILE") -> Path:
    """The full SRS with this sha256 (`purpose` needs all its 2^k points): `given` (hashed here and remembered
    from then on), else the file this machine last saw with it; ArtifactError saying what to pass otherwise."""
    if given is not None:
        if see(given)["sha256"] != digest:
            raise ArtifactError(f"{given} is not the SRS {purpose} needs (sha256 {digest[:16]}…)")
        return Path(given)
    found = full_file(digest)
    if found is None:
        raise ArtifactError(f"{purpose} needs the full SRS (sha256 {digest[:16]}…), which this machine has not "
                            f"hashed or no longer finds unchanged: {hint}")
    return found


def _seen(digest: str) -> Path:
    if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
        raise ArtifactError("an SRS sha256 is 64 lowercase hex digits")
    return cache.entry("srs-seen", sha256=digest)


def export_srs(digest: str, out: Path) -> dict:
    """`zkpot srs export`: copy the full SRS with this sha256, as this machine last saw it, to `out`."""
    src = full_srs(digest, purpose="exporting", hint="export it on the machine that set the run up (a dev SRS exists only "
                   "there), or download the ceremony file it names")
    with atomic_path(out) as tmp:
        shutil.copyfile(src, tmp)
    ident = identify(out)
    if ident["sha256"] != digest:
        Path(out).unlink()
        raise ArtifactError(f"{src} changed while it was copied")
    return ident


def export_dev_srs(logrows: int, out: Path | None = None) -> tuple[Path, dict]:
    """`zkpot srs dev`: the cached dev SRS of `logrows`, copied to `out` if given; (its path, its identity)."""
    if not 1 <= logrows <= MAX_SRS_LOGROWS:
        raise ArtifactError(f"--logrows {logrows}: must be between 1 and {MAX_SRS_LOGROWS}")
    path = dev_srs(logrows)
    if out is not None:
        with atomic_path(out) as tmp:
            shutil.copyfile(path, tmp)
        path = Path(out)
    return path, identify(path)


def dev_srs(logrows: int) -> Path:
    """A locally generated SRS of exactly `logrows` (a larger one is downsized on every load), cached."""
    path = cache.entry("srs-dev", logrows=logrows) / f"dev-insecure-k{logrows}.srs"
    if not path.exists():
        with atomic_path(path) as tmp:
            ezkl.gen_srs(str(tmp), logrows)
    return path


def srs_for(k: int, srs_file: Path | None, progress=print) -> tuple[Path, dict]:
    """The SRS a circuit of logrows k is set up with: the given file (it must hold 2^k points), or a
    dev SRS made here (INSECURE); with its identity."""
    if srs_file is None:
        progress(f"making a dev SRS at logrows {k} (INSECURE: its trapdoor was on this machine)")
        srs_file = dev_srs(k)
    ident = see(srs_file)
    if ident["logrows"] < k:
        raise ArtifactError(f"SRS {srs_file} has logrows {ident['logrows']}, the circuit needs {k}")
    return Path(srs_file), ident
