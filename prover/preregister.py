"""The circuit and its keys from the claims alone, before any data exists (pre-registration).

Everything in settings.json comes from public samples drawn within the declared bounds, so the
step graph, the settings and the vk a run will use can be published before training: the trained
bundle's step.onnx, settings.json and vk.key are then these files, byte for byte.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from zkpot.circuits import derive
from zkpot.circuits import srs as srs_mod
from zkpot.models import zoo
from zkpot.models.step import frozen_of, layout_of, select
from zkpot.prover.config import RunConfig
from zkpot.prover.sizing import AUTO
from zkpot.prover.train import build_model, frozen_claims
from zkpot.spec import protocol as P
from zkpot.spec.artifacts import atomic_path, read_json, write_json


def claims_of(cfg: RunConfig, features: int, outputs: int) -> tuple[dict, dict]:
    """The circuit claims a run of `cfg` on data of this width will make, and the values of its frozen
    parameters (the base model's, or the seeded initialisation's: constants of the step graph)."""
    cfg.validate()
    module = build_model(cfg, features, outputs)
    layout = layout_of(module, cfg.batch_size, features, outputs, cfg.momentum > 0, select(module, cfg.train))
    claims = derive.circuit_claims(cfg.run_claims(layout, 0, frozen_claims(module, layout)))
    return claims, {n: t.numpy() for n, t in frozen_of(module, layout).items()}


def preregister(cfg: RunConfig, features: int, outputs: int, out: Path, srs: Path | None = None,
                progress=print) -> dict:
    """OUT/claims.json, step.onnx, settings.json, vk.key and kzg.srs (the SRS's verifier part); returns
    the SRS identity."""
    if cfg.steps_per_proof == AUTO:
        raise ValueError("--steps-per-proof auto needs the run's step count (epochs x batches): give `circuit` a number")
    if cfg.model not in zoo.BUILTIN and cfg.graph is None:
        raise ValueError(f"model {cfg.model!r}: pre-registration derives built-in and ONNX models only (a verifier "
                         "cannot trace your module: `zkpot export` makes it an ONNX model)")
    claims, frozen = claims_of(cfg, features, outputs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    progress("tracing the step and deriving the settings from the claims (public samples)")
    onnx = derive.derived_onnx(claims, frozen)
    settings = derive.derived_settings(claims, onnx)
    k = read_json(settings)["run_args"]["logrows"]
    srs, ident = srs_mod.srs_for(k, srs, progress)
    progress(f"ezkl setup at logrows {k} (the vk; the proving key is made again by `zkpot setup`)")
    vk = derive.derived_vk(claims, onnx, lambda: srs, ident["sha256"])
    write_json(out / "claims.json", claims)
    for src, name in ((onnx, P.STEP_ONNX), (settings, P.SETTINGS), (vk, P.VK)):
        with atomic_path(out / name) as tmp:
            shutil.copyfile(src, tmp)
    with atomic_path(out / P.SRS) as tmp:
        tmp.write_bytes(srs_mod.verifier_srs(srs))
    return ident
