"""Rebuild the verification key from the published ONNX, settings and SRS, and compare it byte for byte.

ezkl's setup is deterministic in (compiled circuit, SRS), so an equal vk means the proofs were made
for the circuit of the published step.onnx (the architecture, loss, optimizer and hyperparameters)
and not for another one behind a vk that merely sits beside it. It costs one ezkl setup (seconds to
minutes, and the proving key's size in memory); the proving key itself is discarded.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import ezkl

from circuits import pipeline
from circuits.artifacts import sha256_file

from .bundle import Rejected


def rebuild_vk(onnx: Path, settings: Path, srs: Path, vk: Path) -> str:
    """Raises Rejected unless compile(onnx, settings) + setup(srs) gives exactly `vk`; returns a summary."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="zkpot-rebuild-") as tmp:
        tmp = Path(tmp)
        try:
            pipeline.compile_circuit(onnx, settings, tmp / "step.ezkl")
        except pipeline.CircuitError as e:
            raise Rejected("rebuild-vk", f"cannot compile {onnx.name} with {settings.name}: {e}") from None
        rebuilt = _setup_vk_only(tmp / "step.ezkl", srs, tmp / "vk.key")
    if rebuilt != Path(vk).read_bytes():
        raise Rejected("rebuild-vk", f"{Path(vk).name} is not the key of {onnx.name} with {settings.name} and "
                                     f"{Path(srs).name}: the rebuilt vk differs (the proofs are for another circuit)")
    return (f"{Path(vk).name} rebuilt from {onnx.name} + {settings.name} + {Path(srs).name} byte for byte "
            f"(sha256 {sha256_file(vk)[:16]}…, {time.perf_counter() - start:.1f} s)")


def _setup_vk_only(compiled: Path, srs: Path, vk: Path) -> bytes:
    """ezkl.setup into a temporary directory; the proving key (large, unused) goes to /dev/null on POSIX."""
    pk = os.devnull if os.name == "posix" else str(vk.with_name("pk.key"))
    try:
        ok = ezkl.setup(str(compiled), str(vk), pk, str(srs))
    except Exception as e:  # ezkl raises bare RuntimeErrors from Rust
        raise Rejected("rebuild-vk", f"ezkl setup failed: {(str(e).strip().splitlines() or [type(e).__name__])[0]}") from None
    if not ok or not vk.is_file():
        raise Rejected("rebuild-vk", "ezkl setup failed")
    return vk.read_bytes()
