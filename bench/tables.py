"""Lookup tables from the claims (spec/lookups.py) against the sampled tables before them, side by side in one run.

    python bench/tables.py [--before REV] [--cases ci,ci-S4,reference,...] [--out tables]

"before" is zkpot at REV (default: the commit before spec/lookups.py), checked out in a temporary git
worktree and imported in place of this tree's zkpot by the bench's own workers (bench/worker.py), so both
sides run the same measurement code on the same machine, interleaved case by case, each with an empty key
cache. Per case and side: the step circuit's rows, logrows and lookup range, the seconds of one chunk proof
per SGD step (prove peak RSS beside), and the sha256 of the fixed-point model the run ends with (both sides train with
one master key: the same rows, partition and salts): the clamps change no value a lookup returns, so the two
must be identical (a run the sampled table could not hold fails
"before" instead).
Results: bench/results/tables.json and tables.md (or --out NAME).
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, WorkerError, bench_env, machine, machine_md, now, save, worker  # noqa: E402

SMALL = dict(rows=8, features=8, batch_size=4, epochs=2)   # tests/conftest.py's run
CASES = {   # name: (RunConfig fields, or "finetune:<mode>" over the built-in fine-tuning example; what it is)
    "ci": ({**SMALL}, "the tests' run: logreg, 8 features, batch 4, 1 SGD step per proof"),
    "ci-S4": ({**SMALL, "steps_per_proof": 4}, "the tests' folded run: 4 SGD steps per proof"),
    "reference": ({"epochs": 1}, "the logreg reference: breast cancer, 30 features, batch 16, 1 SGD step"),
    "mlp": ({"model": "mlp", "hidden": [16], "epochs": 1}, "MLP 30-16-1, batch 16, 1 SGD step"),
    "ce": ({**SMALL, "loss": "ce", "classes": 3}, "the tests' run with softmax cross-entropy, 3 classes"),
    "finetune-full": ("finetune:full", "fine-tuning example (digits 64-16-1, batch 8): every parameter trains"),
    "finetune-head": ("finetune:head", "fine-tuning example: the head trains, the body is frozen"),
    "finetune-adapters": ("finetune:adapters", "fine-tuning example: rank-2 adapters and the head train"),
}
FINETUNE = {"full": {"train": "*"}, "head": {},
            "adapters": {"lora_rank": 2, "lora_layers": ["net.0"], "train": "*.lora_*,net.2.*"}}


def before_rev() -> str:
    added = subprocess.run(["git", "log", "--diff-filter=A", "--format=%H", "--", "spec/lookups.py"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    return f"{added[-1]}^" if added else "HEAD"


def before_env(work: Path, rev: str) -> tuple[dict, Path]:
    """Workers' environment importing zkpot from a worktree at `rev` (a `zkpot` link ahead on PYTHONPATH)."""
    tree = work / "before-tree"
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), rev], cwd=ROOT, check=True)
    shim = work / "before-shim"
    shim.mkdir()
    (shim / "zkpot").symlink_to(tree)
    env = bench_env(work / "before")
    env["PYTHONPATH"] = str(shim) + os.pathsep + env["PYTHONPATH"]
    return env, tree


@functools.cache
def finetune_base(work: Path):
    """The built-in fine-tuning example's inputs (pretrained once) and its run's configuration."""
    from zkpot.prover.finetune_example import prepare_inputs
    from zkpot.prover.run import RunDir

    return prepare_inputs(RunDir(work / "finetune-inputs"), say=lambda *_: None)


def config(case: str, work: Path) -> dict:
    from zkpot.prover.config import RunConfig

    fields, _ = CASES[case]
    if isinstance(fields, str):
        return dataclasses.asdict(dataclasses.replace(finetune_base(work), **FINETUNE[fields.split(":")[1]]))
    return dataclasses.asdict(RunConfig(**fields))


def measure(spec: dict, env: dict, master: bytes) -> dict:
    """One side of a case; both sides train with the same private master key (so the same rows, partition and
    salts), which is what lets their final fixed-point models be compared byte for byte."""
    private = Path(spec["run"]) / "private"
    private.mkdir(parents=True, mode=0o700)
    (private / "master.key").write_bytes(master)
    p = worker("prepare", spec, env)
    worker("setup", spec, env)
    proof = worker("prove", spec, env)
    final = Path(spec["run"]) / "private" / "final_model.safetensors"
    return {"rows": p["num_rows"], "logrows": p["logrows"], "lookup_range": p["lookup_range"],
            "steps_per_proof": p["steps_per_proof"], "s_per_step": proof["seconds"] / p["steps_per_proof"],
            "prove_rss_gb": proof["peak_rss_mb"] / 1024, "final_sha256": hashlib.sha256(final.read_bytes()).hexdigest()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default=None, help="the revision measured as 'before' (default: before spec/lookups.py)")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--shared", default="", help="a note on background load for the results file")
    ap.add_argument("--out", default="tables")
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # (killed: the finally below still removes the worktree)
    rev = args.before or before_rev()
    work = Path(tempfile.mkdtemp(prefix="zkpot-bench-tables-"))
    m, results = machine(), []
    try:
        envs = {"before": before_env(work, rev)[0], "after": bench_env(work / "after")}
        for case in args.cases.split(","):
            cfg = config(case, work)
            row = {"case": case}
            for side, env in envs.items():
                spec = {"run": str(work / side / "runs" / case), "config": cfg}
                try:
                    row[side] = measure(spec, env, hashlib.sha256(f"bench/tables {case}".encode()).digest())
                except WorkerError as e:
                    row[side] = {"error": str(e)}
                print(f"[{now()}] {case} {side}: {row[side]}", flush=True)
            results.append(row)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(work / "before-tree")], cwd=ROOT,
                       capture_output=True)
        shutil.rmtree(work, ignore_errors=True)

    data = {"when": now(), "machine": m, "before": rev, "shared": args.shared or None, "results": results}
    md = ["# Lookup tables from the claims vs sampled (`python bench/tables.py`)\n",
          f"Run {data['when']}; before = zkpot at `{rev}` (tables sized from 8 public samples, margin 2), after = "
          "this tree (every lookup input clamped where its function saturates; the table is the clamps' "
          "interval). One chunk proof per case and side, dev SRS, empty caches.\n",
          machine_md(m, args.shared),
          "| case | rows before / after | logrows before / after | lookup range before / after | "
          "s per SGD step before / after | ratio | prove peak RSS GB before / after | fixed-point model identical |",
          "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        b, a = r["before"], r["after"]
        if "error" in b or "error" in a:
            md.append(f"| {r['case']} | {b.get('error', '')[:100]} | {a.get('error', '')[:100]} | | | | | |")
            continue
        md.append(f"| {r['case']} | {b['rows']:,} / {a['rows']:,} | {b['logrows']} / {a['logrows']} | "
                  f"{b['lookup_range']} / {a['lookup_range']} | {b['s_per_step']:.2f} / **{a['s_per_step']:.2f}** | "
                  f"{b['s_per_step'] / a['s_per_step']:.2f}x | {b['prove_rss_gb']:.2f} / {a['prove_rss_gb']:.2f} | "
                  f"{'yes' if b['final_sha256'] == a['final_sha256'] else '**no**'} |")
    md.append("")
    md += [f"- {name}: {what}" for name, (_, what) in CASES.items() if name in args.cases.split(",")]
    md.append("\nReproduce: `python bench/tables.py`.")
    save(args.out, data, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
