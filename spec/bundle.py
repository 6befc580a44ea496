"""Reading an untrusted bundle: the manifest's shape, and that every file is the one it names."""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
from pathlib import Path

from zkpot.spec import protocol as P
from zkpot.spec.artifacts import ArtifactError, read_json
from zkpot.spec.claims import check_shape, size_limit
from zkpot.spec.errors import Rejected, need_document
from zkpot.spec.protocol import FORMAT, MANIFEST, MAX_MANIFEST

SAFE_NAME = re.compile(r"^((proofs|fold)/)?[A-Za-z0-9_.-]+$")

REQUIRED = {
    "format": str, "insecure_dev_srs": bool, "run": dict, "base": dict, "final": dict,
    "dataset": dict, "chunks": list, "circuit": dict, "srs": dict, "versions": dict, "files": dict,
}


def load_manifest(public: Path) -> dict:
    refuse_links(public, MANIFEST, "manifest")
    try:
        m = read_json(Path(public) / MANIFEST, max_bytes=MAX_MANIFEST)
    except ArtifactError as e:
        raise Rejected("manifest", str(e)) from None
    need_document(m, REQUIRED, FORMAT, "manifest", MANIFEST)
    check_shape(m)
    return m


def refuse_links(public: Path, name: str, check: str) -> None:
    """No link anywhere between the bundle and its file: a link's target is not the bundle's to vouch for
    (a manifest linked to another bundle's verified VALID)."""
    for depth in range(1, len(Path(name).parts) + 1):
        part = Path(public).joinpath(*Path(name).parts[:depth])
        if part.is_symlink():
            raise Rejected(check, f"{'/'.join(Path(name).parts[:depth])} is a link: a bundle holds its files itself")


def path_in(public: Path, name) -> Path:
    """A file the manifest names, refused unless it is a plain name inside the bundle."""
    if not isinstance(name, str) or not SAFE_NAME.match(name):
        raise Rejected("manifest", f"unsafe or malformed file name {name!r}")
    return Path(public) / name


def check_files(public: Path, m: dict, used: list | None = None, into: Path | None = None) -> dict[str, str]:
    """Every file the verifier will read exists and has the sha256 the manifest records; returns
    {name: sha256} of the files checked, so that nothing is hashed twice.

    `used` narrows the check to the files a verification reads (a folded run is verified
    without reading its chunk proofs); by default every file the manifest names. `into`: a private
    directory that receives each file as it is hashed, so that what is verified later is what was
    hashed (a file system the prover controls may serve a second read differently).
    """
    named = m["files"]
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in named.items()):
        raise Rejected("files", "file table malformed")
    referenced = [m["circuit"].get(k) for k in ("onnx", "settings", "vk")]
    referenced += [m["srs"].get("file"), m["base"].get("file"), m["dataset"].get("file")]
    referenced += [c.get("proof") if isinstance(c, dict) else None for c in m["chunks"]]
    referenced += [P.BACKBONE] if m["run"].get("backbone") is not None else []
    referenced += [P.BASE_GRAPH] if m["run"]["model"]["name"] == P.ONNX_MODEL else []
    referenced += [n[k] for level in (m.get("fold") or {}).get("levels", []) for n in level for k in ("proof", "vk")]
    for name in referenced + list(used or []):
        if name not in named:
            raise Rejected("files", f"{name!r} is used but has no sha256 in the manifest")
    checked, inodes = {}, {}
    for name in dict.fromkeys(referenced if used is None else used):  # (a name nothing reads is never hashed)
        digest = named[name]
        path = path_in(public, name)
        refuse_links(public, name, "files")
        if not path.is_file():
            raise Rejected("files", f"{name} is missing")
        if not path.resolve().is_relative_to(Path(public).resolve()):
            raise Rejected("files", f"{name} is a link out of the bundle")
        st = path.stat()
        if inodes.setdefault((st.st_dev, st.st_ino), name) != name:  # (one file hashed once per name it has)
            raise Rejected("files", f"{name} and {inodes[(st.st_dev, st.st_ino)]} are one file (hard links)")
        limit = size_limit(m, name, path)
        if st.st_size > limit:
            raise Rejected("files", f"{name}: {st.st_size} bytes, more than the {limit} allowed")
        if read_once(path, limit, None if into is None else path_in(into, name)) != digest:
            raise Rejected("files", f"{name} does not match its sha256 in the manifest (or grew while read)")
        checked[name] = digest
    return checked


def read_once(path: Path, limit: int, copy: Path | None) -> str | None:
    """sha256 of the file's bytes, read once (never through a link) and copied to `copy` as read;
    None past `limit` bytes."""
    h, n = hashlib.sha256(), 0
    if copy is not None:
        copy.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as f, \
            (open(copy, "xb") if copy is not None else contextlib.nullcontext()) as out:
        while chunk := f.read(1 << 20):
            n += len(chunk)
            if n > limit:
                return None
            h.update(chunk)
            if out is not None:
                out.write(chunk)
    return h.hexdigest()
