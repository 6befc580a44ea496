"""Circuit tuning for the logistic-regression reference, measured side by side in one run.

    python bench/tune.py [--rounds 3] [--only NAME,NAME] [--baseline NAME] [--out NAME] [--keep]

Reference: `zkpot train` defaults (breast-cancer data, 30 features, batch 16, 2 epochs = 70 SGD
steps, lr 0.5, scale 8). Every candidate trains the full run in zkpot's own fixed point (so its
final accuracy is the real one), then proves a few of its chunks. Proofs of all candidates are
interleaved round by round, so background load hits them alike; the speed-up is the ratio of
median proving seconds per SGD step against the baseline (ezkl's default run args and calibration).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import WorkerError, bench_env, machine, machine_md, median, now, save, worker  # noqa: E402

REFERENCE = {}  # RunConfig defaults are the reference

CI = {"features": 8, "batch_size": 4, "rows": 8}  # the tests' run (tests/conftest.py: SMALL): 4 SGD steps
# name: (RunConfig overrides, run_args overrides, calibration, what it tests)
DEFAULT = ({}, {"base": "ezkl-default"}, {"base": "ezkl-default"},
           "baseline: ezkl 22.3.0's PyRunArgs defaults (2 inner cols, decomp 16384^2) with zkpot's visibilities, "
           "calibrated by ezkl's calibrate_settings defaults (target resources: it picks the scale, here 11)")
CANDIDATES = {
    "ezkl-default": DEFAULT,
    "zkpot": ({}, {}, {}, "zkpot as shipped: circuits.pipeline.run_args (1 inner column), scale 8, 1 step per proof"),
    "zkpot-scale9": ({"scale": 9}, {}, {}, "zkpot's run_args at scale 9 (the lowest scale whose accuracy equals ezkl's default)"),
    "zkpot-scale9-S2": ({"scale": 9, "steps_per_proof": 2}, {}, {}, "scale 9, 2 SGD steps per proof (same logrows as 1 step)"),
    "zkpot-scale9-S5": ({"scale": 9, "steps_per_proof": 5}, {}, {}, "scale 9, 5 SGD steps per proof (logrows 17)"),
    "zkpot-scale9-cols2": ({"scale": 9}, {"num_inner_cols": 2}, {}, "scale 9 with ezkl's 2 inner columns: what 1 column buys"),
    "zkpot-decomp32": ({}, {"decomp_base": 32, "decomp_legs": 5}, {}, "scale 8, range checks in 5 legs of 32 (32^5 = 2^25)"),
    "ci-decomp16384x2": (CI, {"decomp_base": 16384, "decomp_legs": 2}, {},
                         "the tests' run (8 rows, 8 features, batch 4) with range checks in 2 legs of 16384 (zkpot before "
                         "the decomposition was chosen by logrows)"),
    "ci-derived": (CI, {}, {}, "the tests' run as derived now: the decomposition chosen by logrows (4096 x 3 legs)"),
}
DEFAULT_SET = ["ezkl-default", "zkpot", "zkpot-scale9", "zkpot-scale9-S2", "zkpot-scale9-S5", "zkpot-scale9-cols2"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="proofs per candidate (interleaved)")
    ap.add_argument("--only", default="", help=f"comma-separated candidate names (default: {','.join(DEFAULT_SET)}; all: {','.join(CANDIDATES)})")
    ap.add_argument("--max-logrows", type=int, default=18,
                    help="skip proving above this (peak RSS roughly doubles per logrow; ezkl's default needs 18)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--baseline", default="ezkl-default", help="the candidate speed-ups are measured against")
    ap.add_argument("--out", default="tune", help="results name under bench/results/")
    ap.add_argument("--shared", default="machine shared with other jobs during this run",
                    help="a note on background load for the results file ('' for none)")
    args = ap.parse_args()
    names = [n for n in CANDIDATES if n in (args.only.split(",") if args.only else DEFAULT_SET)]
    if args.baseline not in CANDIDATES:
        raise SystemExit(f"unknown baseline {args.baseline!r}")
    if args.baseline not in names:
        names.insert(0, args.baseline)

    work = Path(tempfile.mkdtemp(prefix="zkpot-tune-"))
    env = bench_env(work)
    m = machine()
    res: dict[str, dict] = {}
    try:
        for n in names:
            cfg, ra, cal, what = CANDIDATES[n]
            spec = {"run": str(work / n), "config": {**REFERENCE, **cfg}, "run_args": ra, "calibrate": cal}
            print(f"[{now()}] {n}: train (fixed point, full run) + compile", flush=True)
            try:
                prep = worker("prepare", spec, env)
                if prep["logrows"] > args.max_logrows:
                    raise WorkerError(f"skipped: logrows {prep['logrows']} > --max-logrows {args.max_logrows}")
                print(f"[{now()}] {n}: setup at logrows {prep['logrows']}", flush=True)
                st = worker("setup", spec, env)
            except WorkerError as e:
                res[n] = {"what": what, "error": str(e)}
                print(f"  {n}: {e}", flush=True)
                continue
            res[n] = {"what": what, "spec": spec, "prepare": prep, "setup": st, "prove": [], "verify": []}
        live = [n for n in names if "error" not in res[n]]
        for r in range(args.rounds):
            for n in live:
                S = res[n]["spec"]["config"].get("steps_per_proof", 1)
                chunks = res[n]["prepare"]["steps"] // S
                spec = {**res[n]["spec"], "chunk": (r * 7) % chunks}  # a different chunk each round
                p = worker("prove", spec, env)
                v = worker("verify", spec, env)
                if not v["ok"]:
                    raise SystemExit(f"{n}: proof of chunk {spec['chunk']} did not verify")
                res[n]["prove"].append(p)
                res[n]["verify"].append(v)
                print(f"[{now()}] round {r + 1}/{args.rounds} {n}: prove {p['seconds']:.1f} s "
                      f"({p['seconds'] / S:.1f} s/step), peak {p['peak_rss_mb']:.0f} MB", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    base = res[args.baseline]
    base_step = median([p["seconds"] for p in base.get("prove", [])]) / base["spec"]["config"].get("steps_per_proof", 1)
    rows = []
    for n in names:
        x = res[n]
        if "error" in x:
            rows.append({"name": n, "what": x["what"], "error": x["error"]})
            continue
        S = x["spec"]["config"].get("steps_per_proof", 1)
        step_s = median([p["seconds"] for p in x["prove"]]) / S
        rep = x["prepare"]["report"]
        ra = x["prepare"]["run_args"]
        rows.append({
            "name": n, "what": x["what"], "steps_per_proof": S, "scale": ra["input_scale"],
            "num_inner_cols": ra["num_inner_cols"], "decomp": f"{ra['decomp_base']}^{ra['decomp_legs']}",
            "logrows": x["prepare"]["logrows"], "num_rows": x["prepare"]["num_rows"],
            "prove_s_per_step": step_s, "prove_s_samples": [p["seconds"] for p in x["prove"]],
            "speedup_vs_default": base_step / step_s if step_s else None,
            "prove_peak_rss_mb": max(p["peak_rss_mb"] for p in x["prove"]),
            "verify_s_per_proof": median([v["seconds"] for v in x["verify"]]),
            "proof_bytes": x["prove"][0]["proof_bytes"], "pk_mb": x["setup"]["pk_mb"],
            "fixed_point_accuracy": rep.get("fixed_point_accuracy"), "float_accuracy": rep.get("float_accuracy"),
            "max_abs_weight_diff": rep.get("max_abs_weight_diff"),
        })
    data = {"when": now(), "machine": m, "shared": args.shared or None, "rounds": args.rounds,
            "reference": "zkpot train defaults: breast cancer, logreg 30 features, batch 16, 2 epochs (70 steps), lr 0.5",
            "results": rows, "raw": res}
    md = [f"# Circuit tuning, side by side (`python bench/tune.py{' --only ' + args.only if args.only else ''}"
          f"{' --baseline ' + args.baseline if args.baseline != 'ezkl-default' else ''}`)\n",
          "Data: breast cancer, 2 epochs, lr 0.5; the reference is 30 features, batch 16 (70 SGD steps).\n",
          f"Run {data['when']}, {args.rounds} interleaved proofs per candidate; speed-up = baseline median "
          "proving s/step / candidate's.\n", machine_md(m, args.shared),
          "| candidate | S | scale | cols | decomp | logrows | rows | prove s/step | speed-up | peak MB | proof KB | acc fixed | acc float | max dw |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "error" in r:
            md.append(f"| {r['name']} | failed: {r['error'][:80]} |" + " |" * 12)
            continue
        md.append(f"| {r['name']} | {r['steps_per_proof']} | {r['scale']} | {r['num_inner_cols']} | {r['decomp']} | "
                  f"{r['logrows']} | {r['num_rows']} | {r['prove_s_per_step']:.2f} | {r['speedup_vs_default']:.2f}x | "
                  f"{r['prove_peak_rss_mb']:.0f} | {r['proof_bytes'] / 1024:.0f} | {r['fixed_point_accuracy']:.4f} | "
                  f"{r['float_accuracy']:.4f} | {r['max_abs_weight_diff']:.4f} |")
    md.append("")
    md += [f"- {r['name']}: {r['what']}" for r in rows]
    data["summary"] = summary(rows, args.baseline)
    md += ["", data["summary"]]
    text = "\n".join(md) + "\n"
    save(args.out, data, text)


def summary(rows: list[dict], baseline: str) -> str:
    """The fastest candidate whose fixed-point accuracy is at least the baseline's, and its speed-up."""
    ok = [r for r in rows if "error" not in r]
    base = next((r for r in ok if r["name"] == baseline), None)
    if base is None:
        return "no baseline measurement"
    fair = [r for r in ok if r["name"] != baseline and r["fixed_point_accuracy"] >= base["fixed_point_accuracy"]]
    if not fair:
        return "no candidate reached the baseline's accuracy"
    lines = []
    for r in sorted(fair, key=lambda r: -r["speedup_vs_default"]):
        rounds = [b / (x / r["steps_per_proof"]) for b, x in zip(base["prove_s_samples"], r["prove_s_samples"])]
        lines.append(f"- {r['name']}: **{r['speedup_vs_default']:.1f}x** ({r['prove_s_per_step']:.2f} vs "
                     f"{base['prove_s_per_step']:.2f} s/step; per round {min(rounds):.1f}x to {max(rounds):.1f}x; "
                     f"fixed-point accuracy {r['fixed_point_accuracy']:.4f} vs {base['fixed_point_accuracy']:.4f})")
    return (f"Speed-up over {baseline} at equal or better final accuracy (median, and each interleaved round):\n\n"
            + "\n".join(lines))


if __name__ == "__main__":
    main()
