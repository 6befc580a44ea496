"""A publisher's BLS12-381 key pair (py_ecc G2ProofOfPossession), and signing a key package with it.

The secret key file is JSON, mode 0600, never written where things are published (a directory
named public/, a bundle or a package), and refused when others can read it (as ssh does).
"""
from __future__ import annotations

import json
import secrets
import stat
from pathlib import Path

from py_ecc.bls import G2ProofOfPossession as bls
from py_ecc.optimized_bls12_381 import curve_order as CURVE_ORDER

from zkpot.spec.artifacts import ArtifactError, atomic_path
from zkpot.spec.package import PACKAGE, SIGNATURES
from zkpot.spec.signature import DOMAIN, SCHEME, signing_message

KEY_FORMAT = "zkpot/bls12-381-secret-key-1"


def _refuse_public_place(path: Path) -> None:
    parent = path.resolve().parent
    for d in (parent, *parent.parents):
        if d.name == "public":
            raise ArtifactError(f"{path}: refusing to write a secret key inside a public/ directory")
    for marker in ("manifest.json", PACKAGE, SIGNATURES):
        if (parent / marker).exists():
            raise ArtifactError(f"{path}: refusing to write a secret key into a bundle or package directory "
                                f"({parent} has {marker})")


def new_key(path: Path) -> bytes:
    """Create a secret key file (0600) from 32 bytes of OS randomness; returns the public key."""
    path = Path(path)
    if path.exists():
        raise ArtifactError(f"{path} exists: refusing to overwrite a key")
    _refuse_public_place(path)
    sk = bls.KeyGen(secrets.token_bytes(32))
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with atomic_path(path, mode=0o600) as tmp:
        tmp.write_text(json.dumps({"format": KEY_FORMAT, "scheme": SCHEME, "secret_key": f"{sk:064x}"}) + "\n")
    return bls.SkToPk(sk)


def load_secret(path: Path) -> int:
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"key file not found: {path}")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ArtifactError(f"{path}: secret key readable by others (mode {mode:04o}); chmod 600 {path}")
    if path.stat().st_size > 4096:
        raise ArtifactError(f"{path}: too large to be a zkpot key file")
    try:
        doc = json.loads(path.read_text())
        sk = int(doc["secret_key"], 16)
        ok = doc.get("format") == KEY_FORMAT and 0 < sk < CURVE_ORDER
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        ok = False
    if not ok:
        raise ArtifactError(f"{path}: not a zkpot BLS secret key file ({KEY_FORMAT})")
    return sk


def public_key(path: Path) -> bytes:
    return bls.SkToPk(load_secret(path))


def sign(path: Path, package_bytes: bytes, domain: bytes = DOMAIN) -> tuple[bytes, bytes, bytes]:
    """(public key, proof of possession, signature on the document: package.json, or an owner's statement
    with its own domain) for the key in `path`."""
    sk = load_secret(path)
    return bls.SkToPk(sk), bls.PopProve(sk), bls.Sign(sk, signing_message(package_bytes, domain))
