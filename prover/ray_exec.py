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
- With `fold_fan_in`, a fold node is submitted the moment its inputs exist (chunk proofs, or the
  level below), while other chunks are still being proved. An aggregation needs ~19 GB per inner
  proof, so it runs only on nodes started with the custom resource `zkpot_fold`
  (`ray start --resources '{"zkpot_fold": 1}'`, one unit per node: one aggregation at a time);
  it reserves no CPU (the provers hold theirs for the whole run). Its key is set up once per
  node and cached there by hash (ZKPOT_CACHE), like `zkpot fold`'s. `--address local` starts a
  local instance with that resource.
- Nodes started with the custom resource `zkpot_prove` (`--resources '{"zkpot_prove": N}'`: N provers
  there) take the chunk proofs, so the fold nodes' memory is left to folding; a cluster without it
  places one prover per `cpus_per_prover` CPUs anywhere. `placed` records the node of every proof.
Workers must have zkpot (and the same ezkl) installed; the proofs are ordinary zkpot proofs.
"""
from __future__ import annotations

import time
from pathlib import Path

from zkpot.circuits.pipeline import CircuitError
from zkpot.prover.config import chunks_of
from zkpot.prover.fold import check_foldable, check_memory, fold_node, node_made, node_path, ready, vk_name
from zkpot.spec.artifacts import ArtifactError, atomic_path

FOLD_RESOURCE = "zkpot_fold"
PROVE_RESOURCE = "zkpot_prove"


def _node() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


class _Prover:
    """A Ray actor: keeps the proving key, circuit and SRS in a local temp dir for its lifetime."""

    def __init__(self, blobs: dict):
        import tempfile

        import ray

        self.dir = Path(tempfile.mkdtemp(prefix="zkpot-ray-"))
        for name, ref in blobs.items():  # refs inside a dict are not resolved by Ray: fetch each once
            (self.dir / name).write_bytes(ray.get(ref))

    def prove(self, c: int, witness: bytes) -> tuple[int, bytes, float, str]:
        from zkpot.circuits import pipeline

        w, out = self.dir / f"witness_{c}.json", self.dir / f"proof_{c}.json"
        w.write_bytes(witness)
        start = time.perf_counter()
        try:
            pipeline.prove(w, self.dir / "step.ezkl", self.dir / "pk.key", out, self.dir / "kzg.srs")
            return c, out.read_bytes(), time.perf_counter() - start, _node()
        finally:
            w.unlink(missing_ok=True)
            out.unlink(missing_ok=True)

    def close(self) -> None:
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)


def _fold(children: list[bytes], srs: bytes, top: bool, fan_in: int) -> tuple[bytes, bytes, float, str]:
    """A Ray task: fold the given proofs (a node of the tree) on this node; (proof, vk, seconds, node id)."""
    import shutil
    import tempfile

    check_memory(fan_in)
    d = Path(tempfile.mkdtemp(prefix="zkpot-ray-fold-"))
    try:
        paths = [d / f"child_{j}.json" for j in range(len(children))]
        for path, b in zip(paths, children):
            path.write_bytes(b)
        (d / "kzg.srs").write_bytes(srs)
        start = time.perf_counter()
        vk, _ = fold_node(paths, d / "node.json", d / "kzg.srs", top, fan_in)
        return (d / "node.json").read_bytes(), vk.read_bytes(), time.perf_counter() - start, _node()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def prove_ray(run, chunks: list[int], address: str | None = None, on_chunk=lambda c, seconds: None,
              cpus_per_prover: int = 1, provers: int | None = None, fold_fan_in: int = 0,
              on_node=lambda depth, i, seconds: None, placed: dict | None = None) -> None:
    """Prove `chunks` of `run` on the Ray cluster at `address` (None: the current/auto one); with
    `fold_fan_in`, also fold the run's proofs into RUN/public/fold/ as their inputs appear.
    `placed` gets the Ray node id of each proof: ("chunk", c) and ("fold", depth, i)."""
    try:
        import ray
    except ImportError:
        raise ArtifactError("--executor ray needs Ray: pip install 'zkpot[ray]'") from None
    if fold_fan_in:  # the fold tree, refused now (before hours of proving) if the SRS does not fit it
        levels = check_foldable(len(chunks_of(run)), run.srs, fold_fan_in, memory=False)
    else:
        levels = []
    if not chunks and not levels:
        return
    started = not ray.is_initialized()
    if started:
        try:
            local_folds = {"resources": {FOLD_RESOURCE: 1}} if levels and address == "local" else {}
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"RUST_LOG": "error"}}, **local_folds)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise ArtifactError(f"cannot connect to the Ray cluster at {address!r}: {e}") from None
    actors, folder = [], None
    try:
        if levels and ray.cluster_resources().get(FOLD_RESOURCE, 0) < 1:
            raise ArtifactError(
                f"no node of the Ray cluster offers the resource {FOLD_RESOURCE!r} for folding: start the nodes "
                f"with memory for it (~19 GB per proof folded) with `ray start --resources '{{\"{FOLD_RESOURCE}\": 1}}'` "
                f"(`--address local` starts a local instance that folds on this machine), "
                f"or prove without --fold and run `zkpot fold` afterwards"
            )
        cpus, slots = int(ray.cluster_resources().get("CPU", 1)), int(ray.cluster_resources().get(PROVE_RESOURCE, 0))
        placed = {} if placed is None else placed
        folder = Folder(ray, run, levels, fold_fan_in, on_node, placed) if levels else None
        if chunks:
            n = max(1, min(provers or slots or cpus // cpus_per_prover, len(chunks)))
            blobs = {"pk.key": ray.put(run.pk.read_bytes()), "step.ezkl": ray.put(run.compiled.read_bytes()),
                     "kzg.srs": folder.srs if folder else ray.put(run.srs.read_bytes())}
            actor_cls = ray.remote(num_cpus=cpus_per_prover)(_Prover)
            env = {"RAYON_NUM_THREADS": str(cpus_per_prover), "RUST_LOG": "error"}
            where = {"resources": {PROVE_RESOURCE: 1}} if slots else {"scheduling_strategy": "SPREAD"}
            actors = [actor_cls.options(runtime_env={"env_vars": env}, **where).remote(blobs) for _ in range(n)]
            del blobs  # the actors hold their own copies on disk; let the object store drop the pk
        _drive(ray, run, list(chunks), actors, on_chunk, folder, placed)
    finally:
        for ref in (folder.pending() if folder else []):  # a failed run leaves no aggregation running
            try:
                ray.cancel(ref, force=True)
            except Exception:
                pass
        for a in actors:
            try:
                ray.get(a.close.remote(), timeout=30)
            except Exception:
                pass
            ray.kill(a)
        if started:
            ray.shutdown()


def _drive(ray, run, todo: list[int], actors: list, on_chunk, folder=None, placed: dict | None = None) -> None:
    """Keep every actor busy with one chunk; write each proof as it comes back, and hand the
    folder every chance to start a node whose inputs now exist."""
    run.proof(0).parent.mkdir(parents=True, exist_ok=True)
    running = {}
    free = list(actors)
    while True:
        while todo and free:
            a, c = free.pop(), todo.pop(0)
            running[a.prove.remote(c, run.witness(c).read_bytes())] = a
        if folder:
            folder.submit_ready()
        pending = list(running) + (folder.pending() if folder else [])
        if not pending:
            return
        done, _ = ray.wait(pending, num_returns=1)
        if done[0] not in running:
            folder.collect(done[0])
            continue
        a = running.pop(done[0])
        c, proof, seconds, node = _result(ray, done[0], "prover")
        if placed is not None:
            placed[("chunk", c)] = node
        with atomic_path(run.proof(c)) as tmp:
            tmp.write_bytes(proof)
        free.append(a)
        on_chunk(c, seconds)


def _result(ray, ref, who: str):
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = e.cause if isinstance(getattr(e, "cause", None), Exception) else e
        raise CircuitError(f"a Ray {who} failed: {str(cause).strip().splitlines()[0]}") from None
    except ray.exceptions.RayError as e:  # actor died, out of memory, node lost: finished proofs are kept
        raise CircuitError(f"a Ray {who} failed ({type(e).__name__}); run again to resume") from None


class Folder:
    """The fold tree's nodes as Ray tasks: each submitted once its inputs exist, its proof and vk
    written into RUN/public/fold/ under the names `zkpot fold` uses, which then finds them made."""

    def __init__(self, ray, run, levels: list, fan_in: int, on_node, placed: dict):
        self.ray, self.run, self.levels, self.fan_in, self.on_node = ray, run, levels, fan_in, on_node
        self.placed = placed
        self.out = lambda d, i: run.public / node_path(d, i)
        self.vk = lambda d, i: run.public / vk_name(d, len(levels[d - 1][i]))
        self.task = ray.remote(num_cpus=0, resources={FOLD_RESOURCE: 1}, max_calls=1)(_fold)
        self.srs = ray.put(run.srs.read_bytes())  # shipped once, whatever the number of nodes
        self.running = {}

    def have(self, d: int, i: int) -> bool:
        return self.run.proof(i).exists() if d == 0 else node_made(self.run.public, d, i, len(self.levels[d - 1][i]))

    def input(self, d: int, j: int) -> Path:
        return self.run.proof(j) if d == 0 else self.out(d, j)

    def submit_ready(self) -> None:
        for d, i in ready(self.levels, self.have):
            if (d, i) not in self.running.values():
                children = [self.input(d - 1, j).read_bytes() for j in self.levels[d - 1][i]]
                self.running[self.task.remote(children, self.srs, d == len(self.levels), self.fan_in)] = (d, i)

    def pending(self) -> list:
        return list(self.running)

    def collect(self, ref) -> None:
        d, i = self.running.pop(ref)
        proof, vk, seconds, self.placed[("fold", d, i)] = _result(self.ray, ref, "fold worker")
        self.out(d, i).parent.mkdir(parents=True, exist_ok=True)
        for path, data in ((self.vk(d, i), vk), (self.out(d, i), proof)):  # vk first: a node counts once both exist
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
        self.on_node(d, i, seconds)
