"""What folding costs: runs of N chunk proofs folded into one run proof, one table, one run.

    python bench/fold.py [--chunks 2,4] [--fan-in 2] [--steps-per-proof 2] [--no-keep-keys] [--out fold]

For each N: a logistic-regression run (8 features, 8 rows, batch 4: 2 SGD steps per epoch) of N
epochs, one chunk proof per epoch, set up on one dev SRS at the fold's logrows; then
`prover.fold.fold` (setup_aggregate and aggregate timed apart, per tree node), and verification of
the folded bundle from the run proof alone next to verifying every chunk proof; then a third party's first
verification (an empty cache, the run proof alone: every level's vk derived from its own samples). Each phase runs in
a fresh process, so its peak RSS is its own. Aggregation keys are cached by hash in zkpot's cache
(~/.cache/zkpot/aggregation, or $ZKPOT_CACHE), as `zkpot fold` does: a setup shows as cached when it
did not run. Needs RAM + swap for the fold's logrows (fan-in 2: logrows 22, ~24 GB RAM + 16 GB swap)
and disk for its proving key (17.7 GB at 22). Results: bench/results/fold.json and fold.md (or --out NAME).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import WorkerError, bench_env, machine, machine_md, now, save, worker  # noqa: E402

RUN = dict(model="logreg", rows=8, features=8, batch_size=4, lr=0.5)  # the test suite's small run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", default="2,4", help="chunk proofs per run (one per epoch)")
    ap.add_argument("--fan-in", type=int, default=2)
    ap.add_argument("--steps-per-proof", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--no-keep-keys", action="store_true",
                    help="delete each level's aggregation proving key once the level is folded (8 chunks: 3 keys, 53 GB otherwise)")
    ap.add_argument("--shared", default="", help="a note on background load for the results file")
    ap.add_argument("--out", default="fold", help="results name: bench/results/OUT.json and OUT.md")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="zkpot-bench-fold-"))
    env, m, rows = bench_env(None), machine(), []
    try:
        for n in (int(x) for x in args.chunks.split(",")):
            spec = {"run": str(work / f"chunks{n}"), "fan_in": args.fan_in, "keep_keys": not args.no_keep_keys,
                    "config": {**RUN, "epochs": n, "steps_per_proof": args.steps_per_proof}}
            row = {"chunks": n, "fan_in": args.fan_in, "steps": n * 2}
            rows.append(row)
            try:
                print(f"[{now()}] {n} chunks: train, setup, prove", flush=True)
                worker("prepare", spec, env)
                row["setup"] = worker("fold_setup", spec, env)
                row["prove"] = worker("prove_all", spec, env)
                print(f"[{now()}] {n} chunks: fold", flush=True)
                row["fold"] = worker("fold", spec, env, timeout=4 * 3600)
                for node in row["fold"]["nodes"]:
                    print(f"  level {node['level']} node {node['i']}: logrows {node['logrows']}, setup "
                          f"{format(node['setup_s'], '.0f') + ' s' if node['setup_s'] is not None else 'cached'}, aggregate "
                          f"{node['aggregate_s']:.0f} s", flush=True)
                row["verify"] = worker("verify_folded", spec, env)
                print(f"[{now()}] {n} chunks: run proof {row['verify']['run_proof_s']:.2f} s, every chunk "
                      f"proof {row['verify']['chunk_proofs_s']:.2f} s", flush=True)
                print(f"[{now()}] {n} chunks: a third party's first verification (empty cache, run proof alone)", flush=True)
                row["fresh"] = worker("verify_fresh", spec, env, timeout=4 * 3600)
                print(f"  {row['fresh']['verdict']} in {row['fresh']['seconds']:.0f} s, peak RSS "
                      f"{row['fresh']['peak_rss_mb'] / 1024:.1f} GB", flush=True)
            except WorkerError as e:
                row["error"] = str(e)
                print(f"  {e}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    data = {"when": now(), "machine": m, "shared": args.shared or None, "results": rows}
    md = ["# zkpot folding benchmark\n",
          f"Run {data['when']}; logistic regression (8 features, batch 4), {args.steps_per_proof} SGD steps "
          f"per chunk proof, fan-in {args.fan_in}; dev SRS; seconds are wall time of one process each.\n",
          machine_md(m, args.shared),
          "| chunks | SGD steps | chunk logrows | prove all chunks s | tree | setup_aggregate s (per key) | "
          "aggregate s (per node) | fold peak RSS GB | run proof KB | verify run proof s | "
          "verify every chunk proof s | first verification, empty cache: s / peak RSS GB |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "verify" not in r:
            md.append(f"| {r['chunks']} | {r['steps']} | | | not folded: {r.get('error', '')[:120]} | | | | | | | |")
            continue
        nodes = r["fold"]["nodes"]
        tree = " / ".join(f"L{lv}: {sum(1 for x in nodes if x['level'] == lv)}x k{max(x['logrows'] for x in nodes if x['level'] == lv)}"
                          for lv in sorted({x["level"] for x in nodes}))
        setups = ", ".join(f"{x['setup_s']:.0f}" if x["setup_s"] is not None else "cached" for x in nodes)
        aggs = ", ".join(f"{x['aggregate_s']:.0f}" for x in nodes)
        md.append(f"| {r['chunks']} | {r['steps']} | {r['setup']['logrows']} | {r['prove']['seconds']:.0f} | {tree} | "
                  f"{setups} | {aggs} | {r['fold']['peak_rss_mb'] / 1024:.1f} | {r['fold']['run_proof_bytes'] / 1024:.1f} | "
                  f"{r['verify']['run_proof_s']:.2f} | {r['verify']['chunk_proofs_s']:.2f} | "
                  + (f"{r['fresh']['seconds']:.0f} / {r['fresh']['peak_rss_mb'] / 1024:.1f} |" if "fresh" in r else "not run |"))
    text = "\n".join(md) + "\n"
    save(args.out, data, text)


if __name__ == "__main__":
    main()
