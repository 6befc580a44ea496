"""SRS and keys for a run's circuit. Keys are cached outside the run, keyed by what determines them.

ezkl.setup is deterministic in (ONNX, settings, SRS), so the cache key is the sha256 of all three;
a second run with the same circuit reuses the proving key (hundreds of MB) without recomputing it.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from zkpot.circuits import pipeline
from zkpot.circuits import srs as srs_mod
from zkpot.prover.run import RunDir
from zkpot.spec import cache
from zkpot.spec.artifacts import ArtifactError, atomic_path, read_json, sha256_file
from zkpot.spec.fold_plan import logrows_for


def _place(src: Path, dst: Path, link: bool = False) -> None:
    """Copy (public files: editing the bundle must never touch the cache) or hard-link (the private pk)."""
    with atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            if not link:
                raise OSError
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def setup(run: RunDir, srs_file: Path | None = None, progress=print, fold_fan_in: int = 0) -> dict:
    """Place the SRS (the full one beside the run's private files, its verifier part in the bundle),
    then the vk (public) and pk (private); returns the SRS identity.

    With fold_fan_in, the dev SRS is made at the aggregation's logrows: folding needs every
    proof on one tau, and one file at exactly the largest k avoids downsizing a larger one.
    """
    if not run.compiled.exists():
        raise ArtifactError(f"{run.compiled} is missing: run `zkpot train` first")
    k = read_json(run.settings)["run_args"]["logrows"]
    if fold_fan_in:
        k = max(k, logrows_for(fold_fan_in))
    srs_file, ident = srs_mod.srs_for(k, srs_file, progress)
    _place(srs_file, run.srs, link=True)
    with atomic_path(run.verifier_srs) as tmp:
        tmp.write_bytes(srs_mod.verifier_srs(run.srs))

    cached = cached_keys(run.onnx, run.settings, run.compiled, run.srs, ident["sha256"], progress)
    _place(cached / "vk.key", run.vk)
    _place(cached / "pk.key", run.pk, link=True)
    return ident


def cached_keys(onnx: Path, settings: Path, compiled: Path, srs_file: Path, srs_sha256: str, progress=print) -> Path:
    """The directory holding vk.key and pk.key of this circuit and SRS, set up unless cached."""
    # the compiled file differs on every compile (ezkl serialises hash maps), its inputs do not
    cached = cache.entry("keys", onnx=sha256_file(onnx), settings=sha256_file(settings), srs=srs_sha256)
    if not ((cached / "pk.key").exists() and (cached / "vk.key").exists()):  # a kill can land between the renames
        progress(f"ezkl setup at logrows {read_json(settings)['run_args']['logrows']} (cached as {cached})")
        cached.mkdir(parents=True, exist_ok=True)
        pipeline.setup(compiled, srs_file, cached / "vk.key", cached / "pk.key")
    return cached
