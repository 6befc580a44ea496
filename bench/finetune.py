"""What fine-tuning costs, by what trains: full, head only, adapters, side by side in one run.

    python bench/finetune.py [--rounds 2] [--modes full,head,adapters] [--out finetune]

The built-in fine-tuning example (models/digits.py: a 64-16 body pretrained on public digits, a new
head, 64 private rows, 16 SGD steps), trained and proved three ways from the same base and data:
  - full:      every parameter trains (1,057);
  - head:      the head trains (17), the body is frozen (constants of the circuit);
  - adapters:  a rank-2 adapter beside the body's layer and the head train (177), W and b frozen.
Each phase runs in a fresh process (its peak RSS is its own); proofs of the modes are interleaved
round by round, so background load hits them alike. Accuracy is on the 833 held-out rows.
Results: bench/results/finetune.json and finetune.md (or --out NAME).
"""
from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import WorkerError, bench_env, machine, machine_md, median, now, save, worker  # noqa: E402

MODES = {
    "full": {"train": "*"},
    "head": {},  # the example's own: --train net.2.*
    "adapters": {"lora_rank": 2, "lora_layers": ["net.0"], "train": "*.lora_*,net.2.*"},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2, help="proofs per mode (chunks 0, 1, ...)")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--shared", default="", help="a note on background load for the results file")
    ap.add_argument("--out", default="finetune")
    args = ap.parse_args()

    from zkpot.prover.finetune_example import held_out_accuracy, prepare_inputs
    from zkpot.prover.config import RunConfig
    from zkpot.prover.run import RunDir

    work = Path(tempfile.mkdtemp(prefix="zkpot-bench-finetune-"))
    env, m, rows = bench_env(work), machine(), {}
    try:
        base_cfg = prepare_inputs(RunDir(work / "inputs"), say=lambda *_: None)
        for name in args.modes.split(","):
            cfg = dataclasses.replace(base_cfg, **MODES[name])
            spec = {"run": str(work / name), "config": dataclasses.asdict(cfg)}
            row = rows[name] = {"mode": name, "spec": spec, "prove_s": []}
            try:
                print(f"[{now()}] {name}: train, setup", flush=True)
                row["prepare"] = worker("prepare", spec, env)
                row["setup"] = worker("setup", spec, env)
                shutil.copytree(work / "inputs" / "example", work / name / "example")
                row["held_out"] = held_out_accuracy(RunDir(work / name), RunConfig.load(RunDir(work / name).config))
            except WorkerError as e:
                row["error"] = str(e)
                print(f"  {e}", flush=True)
        for r in range(args.rounds):
            for name, row in rows.items():
                if "error" in row:
                    continue
                res = worker("prove", {**row["spec"], "chunk": r}, env)
                row["prove_s"].append(res["seconds"])
                row["prove_rss_mb"] = max(row.get("prove_rss_mb", 0), res["peak_rss_mb"])
                print(f"[{now()}] round {r}: {name} {res['seconds']:.1f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    data = {"when": now(), "machine": m, "shared": args.shared or None, "results": list(rows.values())}
    md = ["# zkpot fine-tuning: what trains, what it costs\n",
          f"Run {data['when']}; the built-in example (`zkpot demo --finetune`: a 64-16 body pretrained on public "
          "digits, even vs odd on 64 private rows, batch 8, 16 SGD steps, scale 8); one SGD step per proof; "
          f"median of {args.rounds} proofs per mode, interleaved; dev SRS.\n",
          machine_md(m, args.shared),
          "| mode | trained parameters | frozen (circuit constants) | rows | logrows | s per SGD step | vs head | "
          "prove peak RSS GB | held-out accuracy: base / fixed point / float |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    head = median(rows.get("head", {}).get("prove_s", []))
    for row in rows.values():
        if "error" in row or not row["prove_s"]:
            md.append(f"| {row['mode']} | | | | | not measured: {row.get('error', '')[:160]} | | | |")
            continue
        p, h, s = row["prepare"], row["held_out"], median(row["prove_s"])
        md.append(f"| {row['mode']} | {p['trained_params']:,} | {p['frozen_params']:,} | {p['num_rows']:,} | "
                  f"{p['logrows']} | **{s:.1f}** | {s / head:.1f}x | {row['prove_rss_mb'] / 1024:.2f} | "
                  f"{h['base']:.4f} / {h['fixed-point fine-tuned']:.4f} / {h['float fine-tuned']:.4f} |")
    md.append("\nReproduce: `python bench/finetune.py`.")
    save(args.out, data, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
