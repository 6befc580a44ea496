"""Prove every stored witness, then write the public bundle's manifest.

Resumable: a proof file exists only once complete (atomic rename), so a restarted prover
skips finished chunks and redoes at most the one it was killed in. Proofs use the Poseidon
transcript ("for-aggr") so that a run can be folded later from its proofs alone.
"""
from __future__ import annotations

import platform
import time

import onnx
import torch

from zkpot.circuits import pipeline
from zkpot.circuits import srs as srs_mod
from zkpot.models.step import Layout
from zkpot.prover.config import RunConfig, chunks_of
from zkpot.prover.fold import check_foldable
from zkpot.prover.run import RunDir, proof_name
from zkpot.prover.train import base_module, frozen_claims
from zkpot.spec import protocol as P
from zkpot.spec.artifacts import ArtifactError, read_json, sha256_file, write_json
from zkpot.spec.protocol import FORMAT


def check_fold_plan(run: RunDir, fan_in: int, pipelined: bool, keep_keys: bool) -> None:
    """`prove --fold`: refuse a fold that cannot happen before hours of chunk proofs (`pipelined`: folded on
    a Ray cluster as the proofs arrive, where this machine's memory does not count)."""
    if pipelined and not keep_keys:
        raise ArtifactError("--no-keep-keys deletes keys on this machine; Ray fold workers keep theirs in their own "
                            "caches: drop it, or prove without --fold and run `zkpot fold --no-keep-keys` here")
    if not run.srs.is_file():
        raise ArtifactError(f"{run.srs} is missing: run `zkpot setup` first")
    check_foldable(len(chunks_of(run)), run.srs, fan_in, memory=not pipelined)


def prove_all(run: RunDir, on_chunk=lambda c, n, seconds: None, jobs: int = 1,
              executor: str = "local", address: str | None = None, fold_fan_in: int = 0,
              on_node=lambda depth, i, seconds: None, placed: dict | None = None) -> None:
    """Prove every chunk not proved yet, then write the manifest; on_chunk(done, n, seconds).

    executor "local" proves in this process, or in `jobs` processes (prover/parallel.py);
    "ray" on a Ray cluster (prover/ray_exec.py; `jobs` caps the provers). The bundle is the same.
    With "ray", `fold_fan_in` also folds each node of the fold tree as soon as its inputs exist,
    on the cluster's fold nodes; `prover.fold.fold` then finds the nodes made and records the
    tree; `placed` gets the Ray node of every proof (prover/ray_exec.py). Locally an aggregation needs the memory the provers use, so `fold` runs after proving.
    """
    n = len(chunks_of(run))
    if not run.pk.exists():
        raise ArtifactError(f"{run.pk} is missing: run `zkpot setup` first")
    for c in range(n):
        if not run.witness(c).exists():
            raise ArtifactError(f"no witness for chunk {c}: run `zkpot train` to the end first")
    done = [c for c in range(n) if run.proof(c).exists()]
    todo = [c for c in range(n) if c not in done]

    def finished(c: int, seconds: float) -> None:
        done.append(c)
        on_chunk(len(done), n, seconds)

    if done:
        on_chunk(len(done), n, 0.0)  # resumed: show the chunks already proved
    if fold_fan_in and executor != "ray":
        raise ValueError("folding while proving needs --executor ray; locally, fold after proving")
    if executor == "ray":
        from zkpot.prover.ray_exec import prove_ray

        prove_ray(run, todo, address, finished, provers=jobs if jobs > 1 else None, fold_fan_in=fold_fan_in,
                  on_node=on_node, placed=placed)
    elif executor != "local":
        raise ValueError(f"unknown executor {executor!r}: use local or ray")
    elif jobs > 1:
        from zkpot.prover.parallel import prove_parallel

        prove_parallel(run, todo, jobs, finished)
    else:
        for c in todo:
            start = time.perf_counter()
            pipeline.prove(run.witness(c), run.compiled, run.pk, run.proof(c), run.srs)
            finished(c, time.perf_counter() - start)
    write_manifest(run)


def versions() -> dict:
    from importlib.metadata import version

    return {
        "zkpot": version("zkpot"),
        "ezkl": version("ezkl"),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "python": platform.python_version(),
    }


def write_manifest(run: RunDir) -> dict:
    cfg = RunConfig.load(run.config)
    part = read_json(run.partition)
    layout = Layout.from_dict(part["layout"])
    chunks = chunks_of(run)
    first = read_json(run.witness(0), max_bytes=1 << 30)
    last = read_json(run.witness(len(chunks) - 1), max_bytes=1 << 30)
    base_salt = first["inputs"][0][-len(first["inputs"][-1]):]
    srs = srs_mod.identify(run.srs)
    files = [P.STEP_ONNX, P.SETTINGS, P.VK, P.SRS, P.BASE_MODEL, P.DATASET]
    files += [P.BACKBONE] if cfg.backbone else []
    files += [P.BASE_GRAPH] if cfg.graph is not None else []
    files += [proof_name(c) for c in range(len(chunks))]
    manifest = {
        "format": FORMAT,
        "insecure_dev_srs": srs["origin"] != srs_mod.CEREMONY,
        "run": cfg.run_claims(layout, len(part["batches"]), frozen_claims(base_module(run, cfg, layout), layout)),
        "base": {"file": P.BASE_MODEL, "salt": base_salt,
                 "commitment": first["processed_inputs"]["poseidon_hash"][0]},
        "final": {"commitment": last["processed_outputs"]["poseidon_hash"][0]},
        "dataset": {"file": P.DATASET, "root": read_json(run.dataset)["root"],
                    **({"owners": read_json(run.owners)} if cfg.owners else {})},
        "chunks": [{"proof": proof_name(c), "steps": [list(s) for s in steps]} for c, steps in enumerate(chunks)],
        "circuit": {"onnx": P.STEP_ONNX, "settings": P.SETTINGS, "vk": P.VK},
        "srs": {"file": P.SRS, **srs},
        "versions": versions(),
        "files": {f: sha256_file(run.public / f) for f in files},
        **({"beacon": read_json(run.beacon)} if cfg.dp else {}),
    }
    write_json(run.manifest, manifest)
    return manifest
