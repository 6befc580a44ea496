"""The cache: what this machine derived or set up once, under one directory and one key scheme.

Root: $ZKPOT_CACHE, or ~/.cache/zkpot. An entry is a directory NAMESPACE/ID, where ID is the first 32
hex digits of sha256 over the canonical JSON of {inputs: what the entry is a function of, versions: what
made it}. The versions are the hash of zkpot's own code that derivations are made by (code_hash: the
spec, models, circuits and verifier subpackages, so an edit to a derivation rule makes new entries with no number
to bump), the hash of the module that calls ezkl (pipeline_hash) and the versions of the tools (zkpot,
ezkl, torch, onnx); a namespace whose entries do not depend on all of them is keyed by the few it names
(KEYED_BY: a dev SRS by ezkl's alone, the prover's keys by ezkl's and the pipeline's). Every file in
it is written atomically (spec/artifacts.py), so a file that exists is complete. docs/cache.md is this
table in prose.

Whoever can write the cache could plant a derivation (a step graph, a vk, an SRS's identity) that a
verifier would then compare the bundle against. So a file a verifier relies on is sealed: an HMAC under
a secret of this user kept outside the cache (~/.config/zkpot/cache.secret, mode 0600), over its place in
the cache and its content. A file without a valid seal is not used (it is derived again): a cache copied
from elsewhere (a shared CI cache, a pre-warmed image, a prover's folder) seals nothing here. A cache
directory another user can write to is refused outright.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import stat
import tempfile
from functools import cache
from pathlib import Path

from zkpot.spec.artifacts import atomic_path
from zkpot.spec.canonical import canonical_json
from zkpot.spec.errors import BadInput

# namespace: (what it holds, keyed by, written by, read by)
NAMESPACES = {
    "circuits": ("step.onnx traced from the claims; per step graph settings.json, circuit.ezkl, vk per SRS, and for "
                 "a folded run the verifier's own: the run proof's vk per tree shape (`aggregation-vk-<shape id>-<logrows>-"
                 "<srs>.vk`), sample aggregates of the node shapes below the top (`aggregation-json-<shape id>-<logrows>-"
                 "<srs>.json`) and a sample proof of the chunk circuit on zero inputs (`aggregation-sample-c-<srs>.json`); "
                 "each sealed", "the circuit claims", "circuits/derive.py, verifier/rebuild.py",
                 "prover (train, setup, infer), verifier (derive, rebuild)"),
    "keys": ("vk.key and pk.key of a step or inference circuit", "step.onnx and settings.json sha256, SRS sha256; of the "
             "versions, ezkl's and circuits/pipeline.py's only (its calls of ezkl)",
             "prover/keys.py", "prover (setup, prove, infer)"),
    "aggregation": ("vk.key and pk.key of an aggregation circuit: the prover's own, not sealed (a verifier derives "
                    "every aggregation vk itself: circuits)", "logrows, SRS sha256, the inner proofs' protocols; of the versions, "
                    "ezkl's and circuits/pipeline.py's only",
                    "prover/fold.py", "prover/fold.py"),
    "srs-seen": ("a full SRS's record (srs.json: sha256, logrows, where it was) and its verifier part, sealed; "
                 "the origin is judged from the sha256 on every read",
                 "the full SRS's sha256; of the versions, ezkl's only (what this machine hashed outlives an edit of zkpot)",
                 "circuits/srs.py (see)", "verifier (srs), prover (fold), circuits/srs.py"),
    "srs-dev": ("an INSECURE dev SRS made here (kzg.srs)", "logrows; of the versions, ezkl's only (not zkpot's code)",
                "circuits/srs.py (dev_srs)", "prover (setup)"),
    "graphs": ("a user's ONNX model (model.onnx), its external data inline; re-hashed on every read",
               "its own sha256 (run.model.graph); no version (content-addressed)", "models/onnx_graph.py (register)",
               "models/onnx_graph.py (load_module)"),
    "srs-checked": ("the record of `zkpot srs import` (check.json)", "the SRS's sha256; of the versions, ezkl's only",
                    "cli.py (srs import)",
                    "the user"),
}
TOOLS = ("zkpot", "ezkl", "torch", "onnx")
MARK = "made-by.json"   # in every entry: the versions that made it (entry, survey)
VERSIONS = ("code", "pipeline", *TOOLS)   # what keys an entry, beside its inputs (versions())
CODE = ("spec", "models", "circuits", "verifier")   # zkpot's subpackages that derivations are made by (code_hash; verifier: rebuild.py derives the aggregation files)
PIPELINE = "circuits/pipeline.py"   # the module through which the prover calls ezkl (pipeline_hash)
# namespace: the versions it is keyed by, where not all of VERSIONS. A dev SRS is ezkl.gen_srs(logrows): no
# code of zkpot's makes it, and it costs minutes (~7 at logrows 21) to make again after every edit; which full
# SRS files this machine hashed (and what `srs import` checked) must not be forgotten at every edit either (a
# verifier would ask for --srs again); a graph is named by its own bytes' hash. The prover's keys are ezkl's
# compile and setup of files their inputs name by sha256 (a step's ONNX and settings; an aggregation's inner
# protocols): a function of those, of how PIPELINE calls ezkl and of ezkl, not of the rest of zkpot's code, so an
# edit elsewhere does not set up an 8.9 GB aggregation key again.
KEYED_BY = {"srs-dev": ("ezkl",), "srs-seen": ("ezkl",), "srs-checked": ("ezkl",), "graphs": (),
            "keys": ("pipeline", "ezkl"), "aggregation": ("pipeline", "ezkl")}


def root() -> Path:
    """The cache directory, refused if another user could write to it (or to a namespace in it). Made here,
    owner-only whatever the umask (a umask of 002 would make it group-writable), where it does not exist."""
    path = Path(os.environ.get("ZKPOT_CACHE", Path.home() / ".cache" / "zkpot"))
    for d in (path, *(path / ns for ns in NAMESPACES)):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        _private(d, "the cache directory")
    return path


def _private(path: Path, what: str) -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if st.st_uid != os.getuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise BadInput(f"{what} {path} can be written by another user (owner uid {st.st_uid}, mode "
                       f"{stat.filemode(st.st_mode)}): whoever writes it chooses what is derived; "
                       "chmod go-w it, or point ZKPOT_CACHE at a directory of your own")


def secret_path() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "zkpot" / "cache.secret"


def _secret() -> bytes:
    """This user's sealing key, made once (linked into place, so two first runs agree on one)."""
    path = secret_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent)  # (mode 0600)
        try:
            os.write(fd, os.urandom(32))
            os.close(fd)
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    _private(path, "the cache secret")
    if os.stat(path).st_mode & 0o077:
        raise BadInput(f"the cache secret {path} is readable by others: chmod 600 it")
    key = path.read_bytes()
    if len(key) != 32:
        raise BadInput(f"the cache secret {path} is not 32 bytes: delete it (the cache is then re-derived)")
    return key


def _mac(path: Path, data: bytes) -> bytes:
    place = Path(path).resolve().relative_to(root().resolve()).as_posix()
    return hmac.new(_secret(), canonical_json({"place": place, "sha256": hashlib.sha256(data).hexdigest()}),
                    hashlib.sha256).digest()


def _seal_of(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".seal")


def seal(path: Path) -> Path:
    """Seal a cache file this process just wrote (its content read back once); returns path."""
    with atomic_path(_seal_of(path)) as tmp:
        tmp.write_bytes(_mac(path, Path(path).read_bytes()))
    return path


def sealed(path: Path) -> bytes | None:
    """The content of a cache file, read once, if its seal is this user's for this place and content."""
    try:
        data, mac = Path(path).read_bytes(), _seal_of(path).read_bytes()
    except OSError:
        return None
    return data if hmac.compare_digest(mac, _mac(path, data)) else None


@cache
def code_hash() -> str:
    """sha256 over zkpot's own source that derivations are made by: every .py file under the installed
    package's CODE subpackages, read through the package's files (the installed copy, whatever the working
    directory), as canonical JSON of {path in the package: sha256 of its bytes}. Once per process."""
    from importlib.resources import files

    def walk(node, prefix: str):
        for child in node.iterdir():
            name = f"{prefix}/{child.name}"
            if child.is_dir():
                if child.name != "__pycache__":
                    yield from walk(child, name)
            elif child.name.endswith(".py"):
                yield name, hashlib.sha256(child.read_bytes()).hexdigest()

    package = files("zkpot")  # (not files("zkpot.models"): that would import torch)
    return hashlib.sha256(canonical_json(dict(sorted(kv for sub in CODE for kv in walk(package / sub, sub))))).hexdigest()


@cache
def pipeline_hash() -> str:
    """sha256 of PIPELINE as installed: what keys the prover's ezkl keys besides ezkl's version."""
    from importlib.resources import files

    return hashlib.sha256((files("zkpot") / PIPELINE).read_bytes()).hexdigest()


@cache
def versions() -> dict:
    """What made an entry: zkpot's code (code_hash), its ezkl calls (pipeline_hash) and, from the installed
    packages' metadata (no import of torch), the tools' versions."""
    from importlib.metadata import version

    return {"code": code_hash(), "pipeline": pipeline_hash(), **{tool: version(tool) for tool in TOOLS}}


def entry_id(inputs: dict, keyed_by: tuple[str, ...] = VERSIONS) -> str:
    """ID of the entry of these inputs, made with the versions named (all of VERSIONS by default)."""
    made_by = {name: versions()[name] for name in keyed_by}
    return hashlib.sha256(canonical_json({"inputs": inputs, "versions": made_by})).hexdigest()[:32]


def made_by(namespace: str) -> dict:
    """The versions that key `namespace`'s entries, as this process has them."""
    return {name: versions()[name] for name in KEYED_BY.get(namespace, VERSIONS)}


def entry(namespace: str, **inputs) -> Path:
    """The directory of the entry of `namespace` made from `inputs`, keyed by the versions the namespace
    names (KEYED_BY), else by all of them. Made, with its MARK (the versions, in clear), if it was not: an
    ID is a one-way hash, and the mark is how `prune` tells the entries of older versions from today's."""
    if namespace not in NAMESPACES:
        raise ValueError(f"no cache namespace {namespace!r}")
    d, current = root() / namespace / entry_id(inputs, KEYED_BY.get(namespace, VERSIONS)), made_by(namespace)
    if _mark_of(d) != current:   # (absent, or not this ID's: planted or torn)
        with atomic_path(d / MARK) as tmp:   # (makes d; only prune reads it: a planted mark can cost an entry, never a verdict)
            tmp.write_bytes(canonical_json({"versions": current}))
    return d


def _mark_of(d: Path) -> dict | None:
    try:
        return json.loads((d / MARK).read_bytes())["versions"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _size(d: Path) -> int:
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file() and not f.is_symlink())


def survey() -> list[dict]:
    """Per namespace: its entries and bytes, and those made by other versions than this process's (`stale`:
    marked with other versions, or unmarked where the namespace is keyed by more than ezkl's version: those
    IDs all moved when the marks came in). Unmarked entries of the namespaces keyed by ezkl's version or by
    nothing (a dev SRS, an SRS's record, a graph) are counted apart, not stale: they may be today's."""
    rows = []
    for ns in NAMESPACES:
        row = {"namespace": ns, "entries": 0, "bytes": 0, "stale": [], "stale_bytes": 0, "unmarked": 0}
        current, by = made_by(ns), KEYED_BY.get(ns, VERSIONS)
        for d in sorted(p for p in (root() / ns).iterdir() if p.is_dir()):
            size, mark = _size(d), _mark_of(d)
            row["entries"] += 1
            row["bytes"] += size
            if mark is None and set(by) <= {"ezkl"}:
                row["unmarked"] += 1
            elif mark != current:
                row["stale"].append(d)
                row["stale_bytes"] += size
        rows.append(row)
    return rows


def stale_total(rows: list[dict]) -> tuple[int, int]:
    """(entries, bytes) of the stale entries `survey` found."""
    return sum(len(r["stale"]) for r in rows), sum(r["stale_bytes"] for r in rows)


def prune(rows: list[dict]) -> tuple[int, int]:
    """Delete the stale entries `survey` found; their (entries, bytes). Deleting an entry is always safe:
    whatever needs it derives it again (one another process deleted first is gone already)."""
    for row in rows:
        for d in row["stale"]:
            try:
                shutil.rmtree(d)
            except FileNotFoundError:
                pass
    return stale_total(rows)
