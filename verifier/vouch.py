"""Stage 5, vouch: a published key package and its signers, against the bundle being verified."""
from __future__ import annotations

from pathlib import Path

from zkpot.spec.artifacts import ArtifactError, sha256_file
from zkpot.spec.bundle import path_in
from zkpot.spec.errors import Rejected
from zkpot.spec.package import SAME_AS_BUNDLE, aggregation_vks, check_package_files, read_package
from zkpot.spec.protocol import SRS_IDENTITY
from zkpot.spec.signature import check_publishers
from zkpot.verifier.read import Bundle
from zkpot.verifier.report import Report


def check_against_bundle(pkg: Path, meta: dict, public: Path, m: dict) -> str:
    """The bundle's circuit files, SRS, base commitment, dataset root and run are the package's."""
    pkg, public = Path(pkg), Path(public)
    for role in ("onnx", "settings", "vk"):
        mine, theirs = meta["circuit"][role], m["circuit"].get(role)
        if sha256_file(pkg / mine) != sha256_file(path_in(public, theirs)):
            raise Rejected("package", f"the bundle's {theirs} differs from the package's {mine}")
    agg = aggregation_vks(m)
    if agg != meta.get("aggregation", {}).get("vks", {}):
        raise Rejected("package", "the bundle's aggregation vks are not the ones the package lists")
    for name in agg:
        if name not in meta["files"] or sha256_file(pkg / name) != sha256_file(path_in(public, name)):
            raise Rejected("package", f"the bundle's {name} differs from the package's")
    ident = {k: m["srs"].get(k) for k in SRS_IDENTITY}  # (bound to the bundle's kzg.srs by verify's `srs` check)
    want = {k: meta["srs"].get(k) for k in SRS_IDENTITY}
    if ident != want:
        raise Rejected("package", f"the bundle's SRS (sha256 {str(ident['sha256'])[:16]}…) is not the SRS the "
                                  f"package names (sha256 {str(want['sha256'])[:16]}…)")
    if m["base"].get("commitment") != meta["base"].get("commitment") or m["base"].get("salt") != meta["base"].get("salt"):
        raise Rejected("package", "manifest.json: the base commitment or its salt differs from the package's")
    if m["dataset"].get("root") != meta["dataset"].get("root"):
        raise Rejected("package", "manifest.json: the dataset root differs from the package's")
    for key in SAME_AS_BUNDLE:
        if m.get(key) != meta[key]:
            raise Rejected("package", f"manifest.json: {key!r} differs from the package's")
    names = [meta["circuit"][r] for r in ("onnx", "settings", "vk")] + list(agg)
    return (f"bundle matches the package: {', '.join(names)}, "
            f"SRS {ident['sha256'][:16]}…, base commitment, dataset root, run")


def check_package(pkg: Path, public: Path, m: dict, publishers: list[bytes]) -> tuple[str, str]:
    """(package summary, publisher summary; empty if the package is unsigned). Raises Rejected."""
    try:
        meta, raw, sigs = read_package(pkg)
        signed_by = check_publishers(sigs, raw, publishers)     # first: is package.json the one they signed?
        check_package_files(pkg, meta)
        return check_against_bundle(pkg, meta, public, m), signed_by
    except (ArtifactError, OSError, KeyError, TypeError, AttributeError) as e:
        raise Rejected("package", f"unreadable package ({e.__class__.__name__}: {e})") from None


def vouch(b: Bundle, package: Path, publishers: list[bytes], report: Report) -> None:
    """The bundle uses the package's circuit, SRS and base model; the package is signed by exactly `publishers`."""
    summary, signed_by = check_package(package, b.public, b.m, publishers)
    report.passed.append(("package", summary))
    if signed_by:
        report.passed.append(("publisher", signed_by))
    else:
        report.warnings.append("the package is unsigned: it ties the bundle to its files, not to a publisher")
