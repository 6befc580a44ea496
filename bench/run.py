"""zkpot's proving benchmark: a ladder of models and batch sizes, one table, one run.

    python bench/run.py [--rounds 2] [--batches 8,32] [--models logreg,mlp-1k,mlp-10k] [--max-logrows 18]

Each configuration goes through zkpot's own phases (prover.train.prepare / fixed_point_run,
prover.keys.setup, circuits.pipeline.prove / verify), each phase in a fresh process so its peak
RSS is its own. Proofs of all configurations are interleaved round by round, so background load
hits them alike. Circuits come from circuits.pipeline.run_args as it stands (the tuned settings).
Results: bench/results/ladder.json and ladder.md.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import WorkerError, bench_env, machine, machine_md, median, now, save, worker  # noqa: E402

# name: (RunConfig overrides, parameter count with 30 features and 1 output)
MODELS = {
    "logreg": ({"model": "logreg"}, 31),
    "mlp-1k": ({"model": "mlp", "hidden": [32]}, 30 * 32 + 32 + 32 + 1),
    "mlp-10k": ({"model": "mlp", "hidden": [256, 8]}, 30 * 256 + 256 + 256 * 8 + 8 + 8 + 1),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2, help="proofs per configuration (interleaved)")
    ap.add_argument("--batches", default="8,32")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--configs", default=None, help="model:batch pairs instead of models x batches, e.g. mlp-1k:32,mlp-10k:8")
    ap.add_argument("--out", default="ladder", help="results name: bench/results/OUT.json and OUT.md")
    ap.add_argument("--steps", type=int, default=2, help="SGD steps trained per configuration (one proof each)")
    ap.add_argument("--max-logrows", type=int, default=18,
                    help="skip proving above this (peak RSS roughly doubles per logrow: ~0.7 GB at 15, ~4 GB at 18)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--shared", default="machine shared with other jobs during this run",
                    help="a note on background load for the results file ('' for none)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="zkpot-bench-"))
    env = bench_env(work)
    m = machine()
    confs = []
    pairs = ([(n, int(b)) for n, b in (x.split(":") for x in args.configs.split(","))] if args.configs else
             [(n, int(b)) for n in args.models.split(",") for b in args.batches.split(",")])
    for name, b in pairs:
        cfg = {**MODELS[name][0], "batch_size": b, "rows": b * args.steps, "epochs": 1}
        confs.append({"name": name, "params": MODELS[name][1], "batch": b,
                      "spec": {"run": str(work / f"{name}-b{b}"), "config": cfg}})
    try:
        for c in confs:
            print(f"[{now()}] {c['name']} batch {c['batch']}: train + compile", flush=True)
            try:
                c["prepare"] = worker("prepare", c["spec"], env)
                if c["prepare"]["logrows"] > args.max_logrows:
                    c["skipped"] = f"logrows {c['prepare']['logrows']} > --max-logrows {args.max_logrows}"
                    print(f"  skipped: {c['skipped']}", flush=True)
                    continue
                print(f"[{now()}]   setup at logrows {c['prepare']['logrows']}", flush=True)
                c["setup"] = worker("setup", c["spec"], env)
            except WorkerError as e:
                c["error"] = str(e)
                print(f"  {e}", flush=True)
                continue
            c["prove"], c["verify"] = [], []
        live = [c for c in confs if "prove" in c]
        for r in range(args.rounds):
            for c in list(live):
                spec = {**c["spec"], "chunk": r % c["prepare"]["steps"]}
                try:
                    p = worker("prove", spec, env, timeout=4 * 3600)
                    v = worker("verify", spec, env)
                except WorkerError as e:  # (e.g. killed for memory: the row says so, the others go on)
                    c["error"] = str(e)
                    del c["prove"], c["verify"]
                    live.remove(c)
                    print(f"  {c['name']} batch {c['batch']}: {e}", flush=True)
                    continue
                if not v["ok"]:
                    raise SystemExit(f"{c['name']} batch {c['batch']}: proof did not verify")
                c["prove"].append(p)
                c["verify"].append(v)
                print(f"[{now()}] round {r + 1}/{args.rounds} {c['name']} b{c['batch']}: prove {p['seconds']:.1f} s, "
                      f"peak {p['peak_rss_mb']:.0f} MB", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    rows = []
    for c in confs:
        row = {"model": c["name"], "params": c["params"], "batch": c["batch"]}
        if "prepare" in c:
            pr = c["prepare"]
            row.update(logrows=pr["logrows"], num_rows=pr["num_rows"],
                       torch_s_per_step=pr["plain_torch_seconds_per_step"],
                       witness_s_per_step=pr["witness_seconds_per_chunk"], train_peak_rss_mb=pr["peak_rss_mb"])
        if "prove" in c:
            prove_s = median([p["seconds"] for p in c["prove"]])
            row.update(prove_s_per_step=prove_s, prove_s_samples=[p["seconds"] for p in c["prove"]],
                       verify_s=median([v["seconds"] for v in c["verify"]]),
                       proof_bytes=c["prove"][0]["proof_bytes"], pk_mb=c["setup"]["pk_mb"],
                       setup_s=c["setup"]["seconds"],
                       prove_peak_rss_mb=max(p["peak_rss_mb"] for p in c["prove"]),
                       setup_peak_rss_mb=c["setup"]["peak_rss_mb"],
                       prove_over_torch=prove_s / pr["plain_torch_seconds_per_step"])
        for k in ("skipped", "error"):
            if k in c:
                row[k] = c[k]
        rows.append(row)

    data = {"when": now(), "machine": m, "shared": args.shared or None, "rounds": args.rounds,
            "steps_per_config": args.steps, "results": rows, "raw": confs}
    md = ["# zkpot proving benchmark\n",
          f"Run {data['when']}; one SGD step per proof; {args.rounds} interleaved proofs per row (median). "
          "Seconds per SGD step; peak RSS of the proving process; dev SRS.\n",
          machine_md(m, args.shared),
          "| model | params | batch | logrows | rows | torch s/step | witness s/step | prove s/step | verify s | "
          "proof KB | pk MB | setup s | peak RSS prove MB | prove / torch |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        head = f"| {r['model']} | {r['params']} | {r['batch']} | {r.get('logrows', '-')} | {r.get('num_rows', '-')} | "
        if "prove_s_per_step" in r:
            md.append(head + f"{r['torch_s_per_step'] * 1e3:.2f} ms | {r['witness_s_per_step']:.2f} | "
                      f"{r['prove_s_per_step']:.1f} | {r['verify_s']:.2f} | {r['proof_bytes'] / 1024:.0f} | "
                      f"{r['pk_mb']:.0f} | {r['setup_s']:.0f} | {r['prove_peak_rss_mb']:.0f} | "
                      f"{r['prove_over_torch']:,.0f}x |")
        else:
            why = r.get("skipped") or r.get("error", "")
            md.append(head + f"{r.get('torch_s_per_step', float('nan')) * 1e3:.2f} ms | "
                      f"{r.get('witness_s_per_step', float('nan')):.2f} | not proved: {why[:90]} | | | | | | |")
    text = "\n".join(md) + "\n"
    save(args.out, data, text)


if __name__ == "__main__":
    main()
