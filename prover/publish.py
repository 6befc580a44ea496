"""Publish a verification-key package from a proved run, and co-sign one.

The package is what a verifier needs to know which circuit, SRS and base model a proof bundle
must use, signed by whoever vouches for it (the model owner, the data owners). It holds no
proving key, no weights beyond the public base commitment, no data. It is written to a temporary
directory and renamed into place, so a package directory is complete or absent.
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path

from py_ecc.bls import G2ProofOfPossession as bls

from zkpot.prover import evm as evm_mod
from zkpot.prover import signing
from zkpot.spec.artifacts import ArtifactError, atomic_path, sha256_file
from zkpot.spec.bundle import check_files, load_manifest, path_in
from zkpot.spec.canonical import canonical_json
from zkpot.spec.errors import Rejected
from zkpot.spec.package import PACKAGE, SIGNATURES, aggregation_vks, load_package
from zkpot.spec.protocol import PACKAGE_FORMAT, SRS_IDENTITY
from zkpot.spec.signature import SCHEME, SIGNATURES_FORMAT, check_aggregate, parse_signatures, short


def bundle_dir(source: Path) -> Path:
    """A run directory (its public/) or a bundle directory itself."""
    source = Path(source)
    return source / "public" if (source / "public" / "manifest.json").exists() else source


def package_contents(public: Path, m: dict) -> dict:
    """package.json without "files": what the package claims, taken from the checked bundle."""
    ident = {k: m["srs"][k] for k in SRS_IDENTITY}
    agg = aggregation_vks(m)
    return {
        "format": PACKAGE_FORMAT,
        "circuit": {role: m["circuit"][role] for role in ("onnx", "settings", "vk")},
        "srs": ident,
        "base": {"commitment": m["base"]["commitment"], "salt": m["base"]["salt"]},
        "dataset": {"root": m["dataset"]["root"]},
        "run": m["run"],
        "versions": m["versions"],
        "published_with": {p: version(p) for p in ("zkpot", "ezkl", "py_ecc")},
        **({"aggregation": {"fan_in": m["fold"]["fan_in"], "vks": agg}} if agg else {}),
    }


def signatures_doc(package_bytes: bytes, keys: list[Path]) -> dict:
    """One aggregate signature of every key on package.json, with each signer's proof of possession."""
    signers, sigs = [], []
    for key in keys:
        pk, pop, sig = signing.sign(key, package_bytes)
        if any(s["public_key"] == pk.hex() for s in signers):
            raise ArtifactError(f"{key}: this key already signs the package")
        signers.append({"public_key": pk.hex(), "proof_of_possession": pop.hex()})
        sigs.append(sig)
    return {"format": SIGNATURES_FORMAT, "scheme": SCHEME, "package_sha256": hashlib.sha256(package_bytes).hexdigest(),
            "signers": signers, "aggregate_signature": bls.Aggregate(sigs).hex()}


def publish(source: Path, out: Path, keys: list[Path] = (), evm: bool = False, say=print) -> dict:
    """Write the package directory `out` from a proved run; returns package.json."""
    public, out = bundle_dir(source), Path(out)
    m = load_manifest(public)
    check_files(public, m)
    if out.exists():
        raise ArtifactError(f"{out} exists: publish writes a new package directory")
    for key in keys:
        signing.load_secret(key)                      # fail before any work on a bad key file
    if evm and "fold" in m:
        evm_mod.check_tree(m)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        meta = package_contents(public, m)
        for name in [*meta["circuit"].values(), *meta.get("aggregation", {}).get("vks", {})]:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path_in(public, name), tmp / name)
        if evm and "fold" in m:
            say("rendering the run proof's Solidity verifier with ezkl")
            meta["evm"] = evm_mod.render_run(public, m, tmp / "evm", say)
        elif evm:
            say("rendering the Solidity verifier with ezkl")
            meta["evm"] = evm_mod.render(tmp / meta["circuit"]["vk"], tmp / meta["circuit"]["settings"],
                                         path_in(public, m["srs"]["file"]), tmp / "evm", say)
        files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
        meta["files"] = {name: sha256_file(tmp / name) for name in files}
        raw = canonical_json(meta)
        (tmp / PACKAGE).write_bytes(raw)
        if keys:
            (tmp / SIGNATURES).write_bytes(canonical_json(signatures_doc(raw, list(keys))))
        tmp.chmod(0o755)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def cosign(pkg: Path, key: Path) -> list[str]:
    """Add one signature to a package's aggregate, after checking the package and the signatures so far.

    Returns the signers' short keys. Co-signers never share secret keys: each runs this in turn.
    """
    pkg = Path(pkg)
    meta, raw, doc = load_package(pkg)
    pk, pop, sig = signing.sign(key, raw)
    if doc is None:
        new = signatures_doc(raw, [key])
    else:
        pks, pops, agg, _ = parse_signatures(doc)
        if doc["package_sha256"] != hashlib.sha256(raw).hexdigest():
            raise Rejected("publisher", "signatures.json signs another package.json")
        check_aggregate(pks, pops, agg, raw)
        if pk in pks:
            raise ArtifactError(f"key {short(pk)} has already signed this package")
        new = {**doc, "signers": doc["signers"] + [{"public_key": pk.hex(), "proof_of_possession": pop.hex()}],
               "aggregate_signature": bls.Aggregate([agg, sig]).hex()}
    with atomic_path(pkg / SIGNATURES) as tmp:
        tmp.write_bytes(canonical_json(new))
    return [short(bytes.fromhex(s["public_key"])) for s in new["signers"]]
