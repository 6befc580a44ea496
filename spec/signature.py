"""Who published a key package: BLS12-381 signatures (py_ecc, proof-of-possession scheme).

The signed message is DOMAIN ‖ sha256(package.json bytes), so a signature on a package covers every
file it lists. Several co-signers give one aggregate signature checked with FastAggregateVerify.
That check alone would accept a rogue key (pk_B = x·G − pk_A lets B sign "for" A and B), so every
signer is stored with a proof of possession of its secret key, and each one is verified.

A signature says nothing unless the verifier chose the keys: only keys the user names with
--publisher count, every signer must be named, and every named key must have signed.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from py_ecc.bls import G2ProofOfPossession as bls

from zkpot.spec.artifacts import ArtifactError
from zkpot.spec.errors import Rejected

DOMAIN = b"zkpot/vk-package-1 sha256:"
SIGNATURES_FORMAT = "zkpot/package-signatures-1"
SCHEME = "BLS12-381 G2ProofOfPossession (py_ecc, IETF BLS draft)"
PUBKEY_HEX = re.compile(r"^[0-9a-f]{96}$")
SIG_HEX = re.compile(r"^[0-9a-f]{192}$")


def signing_message(package_bytes: bytes, domain: bytes = DOMAIN) -> bytes:
    """What a key signs: a domain (a package, an owner's statement) and the document's sha256."""
    return domain + hashlib.sha256(package_bytes).digest()


def short(pk: bytes) -> str:
    return pk.hex()[:16] + "…"


def parse_public_key(text: str, where: str) -> bytes:
    """A compressed G1 public key as 96 hex digits (0x and case tolerated in user input)."""
    h = text.strip().lower().removeprefix("0x")
    if not PUBKEY_HEX.match(h):
        raise ArtifactError(f"{where}: not a BLS12-381 public key (96 hex digits expected)")
    pk = bytes.fromhex(h)
    if not bls.KeyValidate(pk):
        raise ArtifactError(f"{where}: not a valid BLS12-381 public key (not a point of the G1 subgroup)")
    return pk


def read_publisher(arg: str, option: str = "--publisher") -> bytes:
    """--publisher (or --owner): a public key in hex, or a file holding one (as `zkpot keys show` writes)."""
    path = Path(arg)
    if path.is_file():
        if path.stat().st_size > 4096:
            raise ArtifactError(f"{option} {arg}: file too large to be a public key")
        words = path.read_text(errors="replace").split()
        return parse_public_key(words[0] if words else "", f"{option} {arg}")
    if re.fullmatch(r"(0x)?[0-9a-fA-F]+", arg.strip()):
        return parse_public_key(arg, option)
    raise ArtifactError(f"{option} {arg}: neither a public key in hex nor an existing file")


def parse_signatures(doc) -> tuple[list[bytes], list[bytes], bytes, str]:
    """(public keys, proofs of possession, aggregate signature, package sha256) from signatures.json."""
    ok = (isinstance(doc, dict) and doc.get("format") == SIGNATURES_FORMAT and isinstance(doc.get("signers"), list)
          and doc["signers"] and isinstance(doc.get("aggregate_signature"), str)
          and isinstance(doc.get("package_sha256"), str))
    if not ok:
        raise Rejected("publisher", f"signatures.json is not a {SIGNATURES_FORMAT} document with signers")
    pks, pops = [], []
    for s in doc["signers"]:
        if not (isinstance(s, dict) and PUBKEY_HEX.match(str(s.get("public_key")))
                and SIG_HEX.match(str(s.get("proof_of_possession")))):
            raise Rejected("publisher", "signatures.json: malformed signer entry")
        pks.append(bytes.fromhex(s["public_key"]))
        pops.append(bytes.fromhex(s["proof_of_possession"]))
    if len(set(pks)) != len(pks):
        raise Rejected("publisher", "signatures.json lists a signer twice")
    if not SIG_HEX.match(doc["aggregate_signature"]):
        raise Rejected("publisher", "signatures.json: malformed aggregate signature")
    return pks, pops, bytes.fromhex(doc["aggregate_signature"]), doc["package_sha256"]


def check_possession(pks: list[bytes], pops: list[bytes], check: str) -> None:
    """Every key comes with a valid proof of possession of its secret key (no rogue keys)."""
    for pk, pop in zip(pks, pops):
        if not bls.PopVerify(pk, pop):
            raise Rejected(check, f"signer {short(pk)}: invalid proof of possession (a rogue or foreign key)")


def check_aggregate(pks: list[bytes], pops: list[bytes], signature: bytes, package_bytes: bytes) -> None:
    """Every proof of possession holds and the aggregate signs this package.json for exactly these keys."""
    check_possession(pks, pops, "publisher")
    if not bls.FastAggregateVerify(pks, signing_message(package_bytes), signature):
        names = ", ".join(short(pk) for pk in pks)
        raise Rejected("publisher", f"the aggregate signature does not verify on package.json for key(s) {names}")


def check_publishers(doc, package_bytes: bytes, named: list[bytes]) -> str:
    """The package is signed by exactly the keys the user named (all of them). Returns a summary."""
    if doc is None:
        if named:
            raise Rejected("publisher", "the package is unsigned (no signatures.json), but --publisher was given")
        return ""
    pks, pops, signature, digest = parse_signatures(doc)
    if digest != hashlib.sha256(package_bytes).hexdigest():
        raise Rejected("publisher", "signatures.json signs another package.json (its package_sha256 differs)")
    if not named:
        raise Rejected("publisher", f"the package is signed by {len(pks)} key(s) "
                                    f"({', '.join(short(pk) for pk in pks)}): name the ones you trust with --publisher")
    for pk in pks:
        if pk not in named:
            raise Rejected("publisher", f"signer {short(pk)} is not a publisher you named")
    for pk in named:
        if pk not in pks:
            raise Rejected("publisher", f"publisher {short(pk)} did not sign this package (missing co-signature)")
    check_aggregate(pks, pops, signature, package_bytes)
    return f"aggregate BLS signature of {len(pks)} named key(s) on package.json: {', '.join(short(pk) for pk in pks)}"
