"""A published verification-key package, checked by itself and against a proof bundle.

A package is a directory: step.onnx, settings.json, vk.key (and evm/ when rendered), package.json
(the sha256 of every file, the SRS identity, the base commitment and salt, the dataset root, the run
description, tool versions) and, when signed, signatures.json. Both JSON files must be in canonical
form, so that changing any byte of any file in the package is detected: a listed file by its sha256,
package.json by the signature over its bytes, signatures.json by its form and content.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from circuits.artifacts import ArtifactError, sha256_file

from .bundle import Rejected, path_in
from .protocol import PACKAGE_FORMAT, SRS_IDENTITY
from .signature import check_publishers

PACKAGE, SIGNATURES = "package.json", "signatures.json"
MAX_JSON = 1 << 20
SAFE_NAME = re.compile(r"^((evm|fold)/)?[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
REQUIRED = {"format": str, "files": dict, "circuit": dict, "srs": dict, "base": dict, "dataset": dict,
            "run": dict, "versions": dict}
SAME_AS_BUNDLE = ("run", "versions")      # package fields that must equal the bundle manifest's


def canonical_json(obj) -> bytes:
    """The one serialisation the package uses: what is signed is exactly what is on disk."""
    return (json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=True) + "\n").encode()


def read_canonical(path: Path, check: str = "package"):
    """(object, bytes) of a JSON file that must be in canonical form."""
    if not path.is_file():
        raise Rejected(check, f"{path.name} is missing")
    if path.stat().st_size > MAX_JSON:
        raise Rejected(check, f"{path.name} is larger than {MAX_JSON} bytes")
    raw = path.read_bytes()
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Rejected(check, f"{path.name} is not valid JSON") from None
    if canonical_json(obj) != raw:
        raise Rejected(check, f"{path.name} is not in canonical form (edited after publishing?)")
    return obj, raw


def read_package(pkg: Path) -> tuple[dict, bytes, dict | None]:
    """(package.json, its bytes, signatures.json or None), both in canonical form; files not yet checked."""
    pkg = Path(pkg)
    if not pkg.is_dir():
        raise Rejected("package", f"{pkg} is not a directory")
    meta, raw = read_canonical(pkg / PACKAGE)
    if not isinstance(meta, dict):
        raise Rejected("package", "package.json is not a JSON object")
    for key, typ in REQUIRED.items():
        if not isinstance(meta.get(key), typ):
            raise Rejected("package", f"package.json: field {key!r} missing or not a {typ.__name__}")
    if meta["format"] != PACKAGE_FORMAT:
        raise Rejected("package", f"package.json: format {meta['format']!r}, this verifier reads {PACKAGE_FORMAT!r}")
    sigs = read_canonical(pkg / SIGNATURES, "publisher")[0] if (pkg / SIGNATURES).exists() else None
    return meta, raw, sigs


def check_package_files(pkg: Path, meta: dict) -> None:
    """Every file package.json lists is present with its sha256, and nothing else is in the package."""
    pkg, files = Path(pkg), meta["files"]
    for role in ("onnx", "settings", "vk"):
        if meta["circuit"].get(role) not in files:
            raise Rejected("package", f"package.json: the circuit's {role} file is not listed")
    for name, digest in files.items():
        if not isinstance(name, str) or not SAFE_NAME.match(name):
            raise Rejected("package", f"package.json: unsafe or malformed file name {name!r}")
        if not (pkg / name).is_file():
            raise Rejected("package", f"{name} is missing")
        if sha256_file(pkg / name) != digest:
            raise Rejected("package", f"{name} does not match its sha256 in package.json")
    present = {p.relative_to(pkg).as_posix() for p in pkg.rglob("*") if p.is_file() or p.is_symlink()}
    extra = sorted(present - set(files) - {PACKAGE, SIGNATURES})
    if extra:
        raise Rejected("package", f"{extra[0]} is in the package but not listed in package.json")


def load_package(pkg: Path) -> tuple[dict, bytes, dict | None]:
    """read_package, then check_package_files: a package consistent in itself (not yet authenticated)."""
    meta, raw, sigs = read_package(pkg)
    check_package_files(pkg, meta)
    return meta, raw, sigs


def aggregation_vks(m: dict) -> dict[str, int]:
    """The verification keys of a folded bundle's aggregation circuits (name -> logrows); {} if not folded."""
    if "fold" not in m:
        return {}
    try:
        return {node["vk"]: int(node["logrows"]) for level in m["fold"]["levels"] for node in level}
    except (KeyError, TypeError, ValueError):
        raise Rejected("package", "the bundle's fold tree is malformed") from None


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
