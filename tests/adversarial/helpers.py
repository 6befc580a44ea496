"""Small tools for playing a cheating prover on a copy of a real bundle."""
from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import rehash
from zkpot.verifier.verify import verify_bundle

R = 0x30644E72E131A029B85045B68181585D2833E84879B9709143E1F593F0000001


def failures(public: Path, **kw) -> set[tuple[str, int | None]]:
    """(check, chunk) of every failure, and ("cannot check", None) if the verdict is CANNOT CHECK HERE;
    the bundle must not be accepted."""
    report = verify_bundle(public, allow_insecure_dev_srs=True, **kw)
    assert not report.ok, "accepted: " + str(report.passed)
    return {(f.check, f.chunk) for f in report.failures} | ({("cannot check", None)} if report.cannot_check else set())


def messages(public: Path, **kw) -> list[str]:
    return [str(f) for f in verify_bundle(public, allow_insecure_dev_srs=True, **kw).failures]


def proof_path(public: Path, c: int) -> Path:
    return public / "proofs" / f"chunk_{c:05d}.json"


def read_proof(public: Path, c: int) -> dict:
    return json.loads(proof_path(public, c).read_text())


def write_proof(public: Path, c: int, p: dict, seal: bool = True) -> None:
    """Write a (tampered) proof, keep hex_proof in step with its bytes, re-seal the manifest."""
    if isinstance(p.get("proof"), list) and p.get("hex_proof") is not None:
        p["hex_proof"] = "0x" + bytes(b % 256 for b in p["proof"]).hex()
    proof_path(public, c).write_text(json.dumps(p))
    if seal:
        rehash(public)


def felt(n: int) -> str:
    """A field element as ezkl writes it: 32 bytes little-endian, hex."""
    return (n % R).to_bytes(32, "little").hex()


def manifest(public: Path) -> dict:
    return json.loads((public / "manifest.json").read_text())
