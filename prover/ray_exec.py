"""Prove a run's chunks on a Ray cluster (`zkpot prove RUN --executor ray --address ADDR`).

Why this shape:
- The proving key is hundreds of MB, so it travels once: the driver `ray.put`s its bytes (with
  the compiled circuit and the SRS) and each prover actor writes them to a local temp directory
  when it starts. Tasks then carry only a witness (KBs) and return a proof (KBs).
- Workers need no access to the run directory: the driver reads witnesses and writes every
  returned proof into RUN/public/proofs with an atomic rename, so an interrupted run resumes
  exactly like the local path (finished chunks are skipped).
- One actor per `cpus_per_prover` CPUs of the cluster; ezkl's thread pool inside an actor is
  pinned to those CPUs, so actors sharing a node do not oversubscribe it.
Workers must have zkpot (and the same ezkl) installed; the proofs are ordinary zkpot proofs.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from circuits.artifacts import ArtifactError, atomic_path
from circuits.pipeline import CircuitError


class _Prover:
    """A Ray actor: keeps the proving key, circuit and SRS in a local temp dir for its lifetime."""

    def __init__(self, blobs: dict):
        import tempfile

        import ray

        self.dir = Path(tempfile.mkdtemp(prefix="zkpot-ray-"))
        for name, ref in blobs.items():  # refs inside a dict are not resolved by Ray: fetch each once
            (self.dir / name).write_bytes(ray.get(ref))

    def prove(self, c: int, witness: bytes) -> tuple[int, bytes, float]:
        from circuits import pipeline

        w, out = self.dir / f"witness_{c}.json", self.dir / f"proof_{c}.json"
        w.write_bytes(witness)
        start = time.perf_counter()
        try:
            pipeline.prove(w, self.dir / "step.ezkl", self.dir / "pk.key", out, self.dir / "kzg.srs")
            return c, out.read_bytes(), time.perf_counter() - start
        finally:
            w.unlink(missing_ok=True)
            out.unlink(missing_ok=True)

    def close(self) -> None:
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)


def prove_ray(run, chunks: list[int], address: str | None = None, on_chunk=lambda c, seconds: None,
              cpus_per_prover: int = 1, provers: int | None = None) -> None:
    """Prove `chunks` of `run` on the Ray cluster at `address` (None: the current/auto one)."""
    try:
        import ray
    except ImportError:
        raise ArtifactError("--executor ray needs Ray: pip install 'zkpot[ray]'") from None
    if not chunks:
        return
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"RUST_LOG": "error"}})
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise ArtifactError(f"cannot connect to the Ray cluster at {address!r}: {e}") from None
    actors = []
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n = max(1, min(provers or cpus // cpus_per_prover, len(chunks)))
        blobs = {name: ray.put(path.read_bytes())
                 for name, path in (("pk.key", run.pk), ("step.ezkl", run.compiled), ("kzg.srs", run.srs))}
        actor_cls = ray.remote(num_cpus=cpus_per_prover)(_Prover)
        env = {"RAYON_NUM_THREADS": str(cpus_per_prover), "RUST_LOG": "error"}
        actors = [actor_cls.options(runtime_env={"env_vars": env}, scheduling_strategy="SPREAD").remote(blobs)
                  for _ in range(n)]
        del blobs  # the actors hold their own copies on disk; let the object store drop the pk
        _drive(ray, run, list(chunks), actors, on_chunk)
    finally:
        for a in actors:
            try:
                ray.get(a.close.remote(), timeout=30)
            except Exception:
                pass
            ray.kill(a)
        if started:
            ray.shutdown()


def _drive(ray, run, todo: list[int], actors: list, on_chunk) -> None:
    """Keep every actor busy with one chunk; write each proof as it comes back."""
    run.proof(0).parent.mkdir(parents=True, exist_ok=True)
    running = {}
    free = list(actors)
    while todo or running:
        while todo and free:
            a, c = free.pop(), todo.pop(0)
            running[a.prove.remote(c, run.witness(c).read_bytes())] = a
        done, _ = ray.wait(list(running), num_returns=1)
        a = running.pop(done[0])
        try:
            c, proof, seconds = ray.get(done[0])
        except ray.exceptions.RayTaskError as e:
            cause = e.cause if isinstance(getattr(e, "cause", None), Exception) else e
            raise CircuitError(f"a Ray prover failed: {str(cause).strip().splitlines()[0]}") from None
        except ray.exceptions.RayError as e:  # actor died, out of memory, node lost: finished proofs are kept
            raise CircuitError(f"a Ray prover failed ({type(e).__name__}); run again to resume") from None
        with atomic_path(run.proof(c)) as tmp:
            tmp.write_bytes(proof)
        free.append(a)
        on_chunk(c, seconds)
