"""What an inference proof costs: one input and a batch, on the reference model.

    python bench/infer.py [--rows 1,16] [--out infer]

The reference run (logistic regression on the built-in breast-cancer data: 30 features, batch 16,
scale 8; 16 rows, 1 epoch: one step proof) is trained and proved once; then, for each row count,
`zkpot infer`'s prover in a fresh process twice (the first derives the inference circuit and sets up
its keys, the second only proves), and the verifier in a fresh process: the bundle alone, then with
the inference proof, on a cached derivation (a second verification; the first derives and sets up).
Results: bench/results/infer.json and infer.md (or --out NAME).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_env, machine, machine_md, now, save, worker  # noqa: E402

REFERENCE = {"rows": 16, "batch_size": 16, "epochs": 1}  # the demo's model and data, one step proof


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="1,16", help="inference rows per proof, comma separated")
    ap.add_argument("--shared", default="", help="a note on background load for the results file")
    ap.add_argument("--out", default="infer")
    args = ap.parse_args()
    counts = [int(r) for r in args.rows.split(",")]
    m0, start = machine(), now()
    work = Path(tempfile.mkdtemp(prefix="zkpot-bench-infer-"))
    try:
        env = bench_env(work)
        run = work / "run"
        spec = {"run": str(run), "config": REFERENCE}
        print("training and proving the reference run (one step proof)", flush=True)
        worker("prepare", spec, env)
        worker("setup", spec, env)
        worker("prove_all", spec, env)
        rows = []
        for n in counts:
            out = lambda i: str(work / f"inf-{n}-{i}")  # noqa: E731
            first = worker("infer", {**spec, "rows": n, "out": out(0)}, env)
            second = worker("infer", {**spec, "rows": n, "out": out(1)}, env)
            worker("verify_infer", {**spec, "out": out(1)}, env)  # derives the inference circuit once
            ver = worker("verify_infer", {**spec, "out": out(1)}, env)
            rows.append({"rows": n, "first_prove": first, "prove": second, "verify": ver})
            print(f"{n} row(s): logrows {ver['logrows']}, prove {second['seconds']:.2f} s (witness and proof "
                  f"{second['witness_and_proof_seconds']:.2f} s; first, with setup: "
                  f"{first['seconds']:.2f} s), inference checks {ver['inference_seconds']:.2f} s, proof "
                  f"{second['proof_raw_bytes']} bytes", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    md = [f"# Inference proofs: the reference model on 1 and a batch of rows ({start})", "",
          machine_md(m0, args.shared), "",
          "| rows per proof | logrows | `infer` s (keys cached) | of which witness + proof | first `infer` s (derive + "
          "setup) | s per row | verify s: bundle + inference (cached) | of which inference | proof bytes (raw / JSON) "
          "| prove peak RSS |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        p, v = r["prove"], r["verify"]
        md.append(f"| {r['rows']} | {v['logrows']} | {p['seconds']:.2f} | {p['witness_and_proof_seconds']:.2f} | "
                  f"{r['first_prove']['seconds']:.2f} | "
                  f"{p['seconds'] / r['rows']:.3f} | {v['with_inference_seconds']:.2f} | {v['inference_seconds']:.2f} | "
                  f"{p['proof_raw_bytes']:,} / {p['proof_bytes']:,} | {p['peak_rss_mb'] / 1024:.2f} GB |")
    md += ["", "Reproduce: `python bench/infer.py`. Each figure is one fresh process; the verification figures are "
           "a second verification (the first derives the inference circuit and its vk once per circuit and machine)."]
    save(args.out, {"machine": m0, "start": start, "reference": REFERENCE, "rows": rows}, "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
