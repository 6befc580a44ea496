"""A published verification-key package, as a format: read and checked by itself (verifier/vouch.py checks
it against a proof bundle; prover/publish.py writes it).

A package is a directory: step.onnx, settings.json, vk.key (and evm/ when rendered), package.json
(the sha256 of every file, the SRS identity, the base commitment and salt, the dataset root, the run
description, tool versions) and, when signed, signatures.json. Both JSON files must be in canonical
form, so that changing any byte of any file in the package is detected: a listed file by its sha256,
package.json by the signature over its bytes, signatures.json by its form and content.
"""
from __future__ import annotations

import re
from pathlib import Path

from zkpot.spec.artifacts import ArtifactError, parse_json, sha256_file
from zkpot.spec.canonical import canonical_json
from zkpot.spec.errors import Rejected, need_document
from zkpot.spec.protocol import PACKAGE_FORMAT

PACKAGE, SIGNATURES = "package.json", "signatures.json"
MAX_JSON = 1 << 20
SAFE_NAME = re.compile(r"^((evm|fold)/)?[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
REQUIRED = {"format": str, "files": dict, "circuit": dict, "srs": dict, "base": dict, "dataset": dict,
            "run": dict, "versions": dict}
SAME_AS_BUNDLE = ("run", "versions")      # package fields that must equal the bundle manifest's


def read_canonical(path: Path, check: str = "package"):
    """(object, bytes) of a JSON file that must be in canonical form."""
    if not path.is_file():
        raise Rejected(check, f"{path.name} is missing")
    if path.stat().st_size > MAX_JSON:
        raise Rejected(check, f"{path.name} is larger than {MAX_JSON} bytes")
    raw = path.read_bytes()
    try:
        obj = parse_json(raw, path.name)
    except ArtifactError:
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
    need_document(meta, REQUIRED, PACKAGE_FORMAT, "package", PACKAGE)
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
