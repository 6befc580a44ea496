"""What verification costs as a run grows: one table, one run.

    python bench/verify.py [--chunks 1,2,4,8] [--out verify]

For each N: a logistic-regression run (8 features, batch 4, one SGD step per proof) of N chunk
proofs, proved once, then side by side, each in a fresh process:
  - `zkpot verify` of the bundle (CLI wall time: imports included), first (deriving the circuit and
    vk; cached after) and second verification, and the library's own seconds for the second;
  - ezkl.verify of every chunk proof alone (no other check), the floor of a flat bundle;
  - the decider on the N-1 accumulators a fan-in-2 fold of N chunks carries: all in one pairing-
    product equation (what `zkpot verify` does) next to one equation each (what it did before).
Folded bundles are measured by bench/fold.py. Results: bench/results/verify.json and verify.md
(or --out NAME).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, bench_env, machine, machine_md, now, save, worker  # noqa: E402

RUN = dict(model="logreg", rows=8, features=8, batch_size=4, lr=0.5, steps_per_proof=1)


def cli_verify(public: Path, env: dict) -> dict:
    """`zkpot verify` in a fresh process: wall seconds, and the library's own from the report line."""
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "zkpot.cli", "verify", str(public), "--allow-insecure-dev-srs"], cwd=ROOT,
                       env={**env, "COLUMNS": "200"}, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    last = [line for line in p.stdout.splitlines() if " in " in line and line.split()[0] in ("VALID", "INVALID")]
    library = float(last[-1].split(" in ")[1].split(" s")[0]) if last else None
    if p.returncode != 6:  # VALID ON AN INSECURE DEV SRS
        raise SystemExit(f"zkpot verify {public} exited {p.returncode}: {(p.stdout + p.stderr).strip().splitlines()[-1:]}")
    return {"wall_s": wall, "library_s": library}


def decider_seconds(n: int, reps: int = 1) -> tuple[float, float]:
    """(all n in one equation, one equation each) on n valid accumulators of a known-s test SRS."""
    from py_ecc import optimized_bn128 as bn

    from zkpot.verifier import decider

    s = 0x1234567890ABCDEF
    g2, s_g2 = bn.G2, bn.multiply(bn.G2, s)

    accs = [decider.limbs(bn.multiply(bn.G1, (k + 2) * s)) + decider.limbs(bn.multiply(bn.G1, k + 2)) for k in range(n)]
    t0 = time.perf_counter()
    for _ in range(reps):
        assert decider.decide_all(accs, g2, s_g2) is None
    batched = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    for _ in range(reps):
        assert all(decider.decide_all([a], g2, s_g2) is None for a in accs)
    return batched, (time.perf_counter() - t0) / reps


def chunk_proofs_seconds(public: Path) -> float:
    from zkpot.circuits import pipeline

    proofs = sorted((public / "proofs").glob("chunk_*.json"))
    t0 = time.perf_counter()
    assert all(pipeline.verify(p, public / "settings.json", public / "vk.key", public / "kzg.srs") for p in proofs)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", default="1,2,4,8", help="chunk proofs per run")
    ap.add_argument("--shared", default="", help="a note on background load for the results file")
    ap.add_argument("--out", default="verify", help="results name: bench/results/OUT.json and OUT.md")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="zkpot-bench-verify-"))
    env, m, rows = bench_env(work), machine(), []
    try:
        for n in (int(x) for x in args.chunks.split(",")):
            run = work / f"chunks{n}"
            # n proofs of one step: 2 batches of 4 rows per epoch, n/2 epochs (1 chunk: one batch, one epoch)
            cfg = {**RUN, "rows": 8 if n > 1 else 4, "epochs": max(n // 2, 1)}
            spec = {"run": str(run), "config": cfg}
            print(f"[{now()}] {n} chunk proof(s): train, setup, prove", flush=True)
            worker("prepare", spec, env)
            worker("setup", spec, env)
            worker("prove_all", spec, env)
            public = run / "public"
            chunks = len(list((public / "proofs").glob("chunk_*.json")))
            first, second = cli_verify(public, env), cli_verify(public, env)
            batched, separate = decider_seconds(max(n - 1, 1))
            row = {"chunks": chunks, "bundle_kb": sum(f.stat().st_size for f in public.rglob("*") if f.is_file()) / 1024,
                   "first": first, "second": second, "chunk_proofs_s": chunk_proofs_seconds(public),
                   "accumulators": max(n - 1, 1), "decider_batched_s": batched, "decider_separate_s": separate}
            rows.append(row)
            print(f"  verify: first {first['wall_s']:.2f} s, second {second['wall_s']:.2f} s (library "
                  f"{second['library_s']} s); every chunk proof {row['chunk_proofs_s']:.2f} s; decider on "
                  f"{row['accumulators']}: {batched:.2f} s in one equation, {separate:.2f} s one each", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    data = {"when": now(), "machine": m, "shared": args.shared or None, "results": rows}
    md = ["# zkpot verification benchmark\n",
          f"Run {data['when']}; logistic regression (8 features, batch 4), one SGD step per chunk proof; dev SRS. "
          "`zkpot verify` is the CLI's wall time in a fresh process (imports included); the first verification of the "
          "1-chunk run derives the circuit and vk (the larger runs make the same claims, so theirs is cached), the "
          "second reads the derived files. The decider columns time the pairing check of the N−1 "
          "accumulators a fan-in-2 fold of N chunk proofs carries (test accumulators, same arithmetic).\n",
          machine_md(m, args.shared),
          "| chunk proofs | bundle KB | verify, first s | verify, second s | (library s) | ezkl.verify of every chunk proof s | "
          "accumulators | decider, one equation s | decider, one per accumulator s |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        md.append(f"| {r['chunks']} | {r['bundle_kb']:.0f} | {r['first']['wall_s']:.2f} | {r['second']['wall_s']:.2f} | "
                  f"{r['second']['library_s']} | {r['chunk_proofs_s']:.2f} | {r['accumulators']} | "
                  f"{r['decider_batched_s']:.2f} | {r['decider_separate_s']:.2f} |")
    save(args.out, data, "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
