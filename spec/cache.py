"""The cache: what this machine derived or set up once, under one directory and one key scheme.

Root: $ZKPOT_CACHE, or ~/.cache/zkpot. An entry is a directory NAMESPACE/ID, where ID is the first 32
hex digits of sha256 over the canonical JSON of {inputs: what the entry is a function of, versions:
zkpot's derivation rules and the tools that made it}. Every file in it is written atomically
(spec/artifacts.py), so a file that exists is complete. docs/cache.md is this table in prose.
"""
from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

from zkpot.spec.canonical import canonical_json
from zkpot.spec.protocol import DERIVATION

# namespace: (what it holds, keyed by, written by, read by)
NAMESPACES = {
    "circuits": ("step.onnx traced from the claims; per step graph settings.json, circuit.ezkl, vk per SRS, "
                 "aggregation vk per fan-in", "the circuit claims", "circuits/derive.py, verifier/rebuild.py",
                 "prover (train, setup, infer), verifier (derive)"),
    "keys": ("vk.key and pk.key of a step or inference circuit", "step.onnx and settings.json sha256, SRS sha256",
             "prover/keys.py", "prover (setup, prove, infer)"),
    "aggregation": ("vk.key and pk.key of an aggregation circuit", "logrows, SRS sha256, the inner proofs' protocols",
                    "prover/fold.py", "prover/fold.py, verifier/rebuild.py"),
    "srs-seen": ("a full SRS's identity (srs.json: sha256, logrows, origin, where it was) and its verifier part",
                 "the full SRS's sha256", "circuits/srs.py (see)", "verifier (srs), prover (fold), circuits/srs.py"),
    "srs-dev": ("an INSECURE dev SRS made here (kzg.srs)", "logrows", "circuits/srs.py (dev_srs)",
                "prover (setup)"),
    "graphs": ("a user's ONNX model (model.onnx), its external data inline; re-hashed on every read",
               "its own sha256 (run.model.graph)", "models/onnx_graph.py (register)", "models/onnx_graph.py (load_module)"),
    "srs-checked": ("the record of `zkpot srs import` (check.json)", "the SRS's sha256", "cli.py (srs import)",
                    "the user"),
}
TOOLS = ("zkpot", "ezkl", "torch", "onnx")


def root() -> Path:
    return Path(os.environ.get("ZKPOT_CACHE", Path.home() / ".cache" / "zkpot"))


@cache
def versions() -> dict:
    """From the installed packages' metadata (no import of torch): what made an entry."""
    from importlib.metadata import version

    return {"derivation": DERIVATION, **{tool: version(tool) for tool in TOOLS}}


def entry_id(inputs: dict) -> str:
    return hashlib.sha256(canonical_json({"inputs": inputs, "versions": versions()})).hexdigest()[:32]


def entry(namespace: str, **inputs) -> Path:
    """The directory of the entry of `namespace` made from `inputs` (not created)."""
    if namespace not in NAMESPACES:
        raise ValueError(f"no cache namespace {namespace!r}")
    return root() / namespace / entry_id(inputs)
