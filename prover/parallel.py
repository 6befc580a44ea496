"""Prove a run's chunks in parallel on local cores: one process per job, chunks handed out in order.

Chunk proofs are independent (each witness is stored by `zkpot train`), so any order gives the
same bundle: the same public instances per chunk, the same manifest (proof bytes differ run to
run anyway, halo2 blinds every proof with fresh randomness). Each worker process proves with
RAYON_NUM_THREADS = cores // jobs, so that jobs x threads never oversubscribes the machine, and
each proof still goes through circuits.pipeline.prove (atomic rename: resumable as before).

ezkl's Python binding reads the proving key from its file on every prove call (there is no
handle to keep a loaded key), so a worker re-reads it per chunk; the page cache keeps that cheap.
Memory: every job holds its own proving key and prover state, so peak RSS grows with jobs.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path


def _init_worker(threads: int) -> None:
    os.environ["RAYON_NUM_THREADS"] = str(threads)  # read when ezkl's thread pool first starts, in this process


def _prove_one(root: str, c: int) -> tuple[int, float]:
    from zkpot.circuits import pipeline
    from zkpot.prover.run import RunDir

    run = RunDir(Path(root))
    start = time.perf_counter()
    if not run.proof(c).exists():
        pipeline.prove(run.witness(c), run.compiled, run.pk, run.proof(c), run.srs)
    return c, time.perf_counter() - start


def prove_parallel(run, chunks: list[int], jobs: int, on_chunk=lambda c, seconds: None) -> None:
    """Prove the given chunks with `jobs` worker processes; on_chunk(c, seconds) as each finishes."""
    jobs = max(1, min(jobs, len(chunks)))
    threads = max(1, (os.cpu_count() or 1) // jobs)
    run.proof(0).parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                             initializer=_init_worker, initargs=(threads,)) as ex:
        pending = {ex.submit(_prove_one, str(run.root), c) for c in chunks}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                try:
                    c, seconds = f.result()  # a failed chunk raises its CircuitError here
                except BaseException:
                    for other in pending:
                        other.cancel()  # chunks not started yet; running ones finish (atomic files)
                    raise
                on_chunk(c, seconds)
