"""A run of at least 64 SGD steps, proved and folded end to end: what one SGD step costs.

    python bench/endtoend.py [--steps 64] [--features 8] [--batch-size 4] [--memory-gb G] [--out endtoend]

One run's data and claims, proved three ways side by side (each phase a fresh process, so its peak
RSS is its own), against ordinary torch training of the same model on the same batches:
  - flat:     one SGD step per proof, no fold (a bundle of `steps` proofs);
  - auto:     `--steps-per-proof auto` (the largest chunk the memory budget proves), no fold;
  - folded:   the same chunks on an SRS at the fold's logrows, then folded into one run proof.
Cost per SGD step = (setup + prove [+ fold]) / steps; verification is timed first (circuit, vk and
aggregation vk derived) and second (cached). Every run starts from an empty zkpot cache (dev SRS
files shared), so the one-time costs (aggregation key, derivations) are in the figures. Results:
bench/results/endtoend.json and endtoend.md (or --out NAME).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import WorkerError, bench_env, machine, machine_md, now, save, worker  # noqa: E402


def _run(name: str, spec: dict, env: dict, fold_fan_in: int | None) -> dict:
    row = {"name": name}
    try:
        print(f"[{now()}] {name}: train", flush=True)
        row["prepare"] = worker("prepare", spec, env)
        if fold_fan_in:
            print(f"[{now()}] {name}: setup at the fold's logrows (fan-in {fold_fan_in}), prove", flush=True)
            row["setup"] = worker("fold_setup", {**spec, "fan_in": fold_fan_in}, env, timeout=4 * 3600)
        else:
            print(f"[{now()}] {name}: setup, prove", flush=True)
            row["setup"] = worker("setup", spec, env, timeout=4 * 3600)
        row["prove"] = worker("prove_all", spec, env, timeout=8 * 3600)
        if fold_fan_in:
            print(f"[{now()}] {name}: fold", flush=True)
            row["fold"] = worker("fold", {**spec, "fan_in": fold_fan_in}, env, timeout=8 * 3600)
        print(f"[{now()}] {name}: verify (first, then cached)", flush=True)
        row["verify_first"] = worker("verify_bundle", spec, env, timeout=4 * 3600)
        row["verify_second"] = worker("verify_bundle", spec, env)
    except WorkerError as e:
        row["error"] = str(e)
        print(f"  {e}", flush=True)
    return row


def _md_row(r: dict, steps: int, plain: float) -> str:
    if "error" in r:
        return f"| {r['name']} | | | | | | | | | | not measured: {r['error'][:160]} |"
    p = r["prepare"]
    fold = r.get("fold", {}).get("seconds", 0.0)
    total = r["setup"]["seconds"] + r["prove"]["seconds"] + fold
    per_step = total / steps
    rss = max(x["peak_rss_mb"] for k, x in r.items() if isinstance(x, dict) and "peak_rss_mb" in x) / 1024
    nodes = r.get("fold", {}).get("nodes", [])
    fold_cell = (f"{fold:.0f} ({len(nodes)} node{'s' * (len(nodes) != 1)}, k{max(n['logrows'] for n in nodes)})"
                 if nodes else "-")
    return (f"| {r['name']} | {p['steps_per_proof']} | {p['chunks']} | {p['logrows']} | {r['setup']['seconds']:.0f} | "
            f"{r['prove']['seconds']:.0f} | {fold_cell} | **{per_step:.2f}** | {per_step / plain:,.0f}x | {rss:.1f} | "
            f"{r['verify_first']['seconds']:.2f} / {r['verify_second']['seconds']:.2f} ({r['verify_second']['checked']}) |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=64, help="SGD steps of the run (2 batches per epoch)")
    ap.add_argument("--features", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--fan-in", type=int, default=1, help="fold fan-in (1: one node per chunk, logrows 21)")
    ap.add_argument("--memory-gb", type=float, default=None, help="the auto sizing's budget (default: 80%% of RAM)")
    ap.add_argument("--only", default="flat,auto,folded")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--shared", default="", help="a note on background load for the results file")
    ap.add_argument("--out", default="endtoend", help="results name: bench/results/OUT.json and OUT.md")
    args = ap.parse_args()
    if args.steps % 2:
        raise SystemExit("--steps must be even (2 batches per epoch)")

    run_cfg = dict(model="logreg", rows=2 * args.batch_size, features=args.features, batch_size=args.batch_size,
                   lr=0.5, epochs=args.steps // 2)
    variants = {"flat": (1, None), "auto": (0, None), "folded": (0, args.fan_in)}  # steps_per_proof 0 = auto
    work = Path(tempfile.mkdtemp(prefix="zkpot-bench-e2e-"))
    env, m, rows = bench_env(work), machine(), []  # a fresh cache (SRS files shared): first means first
    t0 = time.perf_counter()
    try:
        for name in args.only.split(","):
            S, fan_in = variants[name]
            spec = {"run": str(work / name), "memory_gb": args.memory_gb,
                    "config": {**run_cfg, "steps_per_proof": S}}
            rows.append(_run(name, spec, env, fan_in))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    plain = next((r["prepare"]["plain_torch_seconds_per_step"] for r in rows if "prepare" in r), float("nan"))
    data = {"when": now(), "machine": m, "shared": args.shared or None, "config": run_cfg, "steps": args.steps,
            "fan_in": args.fan_in, "memory_gb": args.memory_gb, "wall_s": time.perf_counter() - t0, "results": rows}
    md = ["# zkpot end to end: a run proved (and folded), cost per SGD step\n",
          f"Run {data['when']}; logistic regression ({args.features} features, batch {args.batch_size}), "
          f"{args.steps} SGD steps (2 batches x {args.steps // 2} epochs); dev SRS; fold fan-in {args.fan_in}; "
          f"`auto` sized for {args.memory_gb or 'the default'} GB. Plain torch: {plain * 1e3:.3f} ms per step.\n",
          machine_md(m, args.shared),
          "| variant | steps per proof | chunk proofs | chunk logrows | setup s | prove s (all chunks) | fold s | "
          "s per SGD step | vs plain torch | peak RSS GB | verify s, first / second (what) |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    md += [_md_row(r, args.steps, plain) for r in rows]
    md.append("\ns per SGD step = (setup + prove + fold) / steps; setup includes making the dev SRS when not cached "
              "and, for `folded`, the chunk key on the fold's SRS. Reproduce: `python bench/endtoend.py`.")
    save(args.out, data, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
