"""What each ONNX op costs in a proved training step: rows per element, measured side by side in one run.

    python bench/ops.py [--batch 4] [--width 8] [--out ops]

Each op sits in a small model exported by torch.onnx.export at its defaults: Linear(W, W) -> OP ->
Linear(out, 1) on rows of W features (the images: Conv2d / pooling on 1x8x8, then Linear), trained one
SGD step per proof at batch --batch with BCE, everything training. The op's cost is the step circuit's
rows minus those of its baseline: the same model with the op replaced by a free one of the same output
shape (identity, a slice, a copy), so the layers around it cost the same; divided by the elements the op
outputs per step (batch x its output size): forward, backward and update together, as ezkl lays them out
(lookups and range checks included). Rows are the main region's (settings total_assignments: the ops;
the Poseidon hashing of inputs and outputs sits in columns of its own, bench/rows.py); the step's
height (num_rows) and logrows are shown beside. Results: bench/results/ops.json and ops.md.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_env, machine, machine_md, now, save, worker  # noqa: E402


def cases(W: int):
    """{name: (its baseline, "" for a baseline; module factory; the op's output elements per row)}."""
    import torch
    from torch import nn

    class Row(nn.Module):
        """Linear(W, W) -> op -> Linear(out, 1): the op between two trained layers."""

        def __init__(self, op, out=W):
            super().__init__()
            self.a, self.op, self.b = nn.Linear(W, W), op, nn.Linear(out, 1)

        def forward(self, x):
            return self.b(self.op(self.a(x)))

    class Fn(nn.Module):
        def __init__(self, fn):
            super().__init__()
            self.fn = fn

        def forward(self, x):
            return self.fn(x)

    class Image(nn.Module):
        """x (B, 64) viewed as 1x8x8 -> op -> flatten -> Linear(out, 1)."""

        def __init__(self, op, out):
            super().__init__()
            self.op, self.b = op, nn.Linear(out, 1)

        def forward(self, x):
            return self.b(torch.flatten(self.op(x.reshape(-1, 1, 8, 8)), 1))

    half = W // 2
    return {  # name: (the baseline it is compared with, "" for a baseline; module factory; output elements per row)
        "row: Linear -> Linear": ("", lambda: Row(nn.Identity()), 0),
        "row: Linear -> first column -> Linear(1, 1)": ("", lambda: Row(Fn(lambda h: h[:, :1]), out=1), 0),
        "row: Linear -> first 4 columns -> Linear(4, 1)": ("", lambda: Row(Fn(lambda h: h[:, :4]), out=4), 0),
        "image: 2 copies -> Linear(128, 1)": ("", lambda: Image(Fn(lambda x: torch.cat([x, x], 1)), 128), 0),
        "image: every 2nd pixel -> Linear(16, 1)": ("", lambda: Image(Fn(lambda x: x[:, :, ::2, ::2]), 16), 0),
        "Relu": ("row: Linear -> Linear", lambda: Row(nn.ReLU()), W),
        "Sigmoid": ("row: Linear -> Linear", lambda: Row(nn.Sigmoid()), W),
        "Tanh": ("row: Linear -> Linear", lambda: Row(nn.Tanh()), W),
        "Gelu (erf form)": ("row: Linear -> Linear", lambda: Row(nn.GELU()), W),
        "Softmax over a row": ("row: Linear -> Linear", lambda: Row(nn.Softmax(dim=-1)), W),
        "LayerNormalization": ("row: Linear -> Linear", lambda: Row(nn.LayerNorm(W)), W),
        "BatchNormalization (eval)": ("row: Linear -> Linear", lambda: Row(nn.BatchNorm1d(W).eval()), W),
        "Add (residual)": ("row: Linear -> Linear", lambda: Row(Fn(lambda h: h + torch.relu(h))), W),
        "Mul of activations": ("row: Linear -> Linear", lambda: Row(Fn(lambda h: h * h)), W),
        "Div by a constant": ("row: Linear -> Linear", lambda: Row(Fn(lambda h: h / 3.0)), W),
        "Exp (of h / 4)": ("row: Linear -> Linear", lambda: Row(Fn(lambda h: torch.exp(h / 4.0))), W),
        "Reshape + Transpose": ("row: Linear -> Linear",
                                lambda: Row(Fn(lambda h: h.reshape(-1, 2, half).transpose(1, 2).reshape(-1, W))), W),
        "ReduceMean": ("row: Linear -> first column -> Linear(1, 1)",
                       lambda: Row(Fn(lambda h: h.mean(dim=-1, keepdim=True)), out=1), 1),
        "MatMul of activations (attention scores)":
            ("row: Linear -> first 4 columns -> Linear(4, 1)",
             lambda: Row(Fn(lambda h: (h.reshape(-1, 2, half) @ h.reshape(-1, 2, half).transpose(1, 2)).reshape(-1, 4)),
                         out=4), 4),
        "Conv 3x3, 2 channels, pad 1": ("image: 2 copies -> Linear(128, 1)",
                                        lambda: Image(nn.Conv2d(1, 2, 3, padding=1), 128), 128),
        "MaxPool 2x2": ("image: every 2nd pixel -> Linear(16, 1)", lambda: Image(nn.MaxPool2d(2), 16), 16),
        "AveragePool 2x2": ("image: every 2nd pixel -> Linear(16, 1)", lambda: Image(nn.AvgPool2d(2), 16), 16),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--only", default="", help="comma-separated case names (default: all)")
    ap.add_argument("--out", default="ops")
    args = ap.parse_args()
    import numpy as np
    import torch

    work = Path(tempfile.mkdtemp(prefix="zkpot-bench-ops-"))
    env, m, rows = bench_env(work), machine(), {}
    os.environ["ZKPOT_CACHE"] = env["ZKPOT_CACHE"]   # the graphs registered here are the workers'
    from zkpot.prover.config import resolve_model

    B = args.batch
    try:
        for name, (baseline, make, elements) in cases(args.width).items():
            if args.only and name not in args.only.split(","):
                continue
            image = name.startswith("image") or baseline.startswith("image")
            width = 64 if image else args.width
            torch.manual_seed(0)
            onnx_file = work / f"case{len(rows)}.onnx"
            row = rows[name] = {"baseline": baseline, "elements_per_row": elements}
            print(f"[{now()}] {name}", flush=True)
            try:
                torch.onnx.export(make().eval(), (torch.zeros(1, width),), str(onnx_file))
                digest = resolve_model(str(onnx_file)).removeprefix("onnx:")
                X = np.random.default_rng(0).normal(size=(B, width))
                csv = work / f"case{len(rows)}.csv"
                np.savetxt(csv, np.c_[X, X[:, 0] > 0], delimiter=",", comments="",
                           header=",".join([f"x{i}" for i in range(width)] + ["label"]))
                config = {"model": f"onnx:{digest}", "data": str(csv), "loss": "bce", "batch_size": B, "epochs": 1,
                          "lr": 0.1}
                p = worker("prepare", {"run": str(work / f"run{len(rows)}"), "config": config}, env)
                row.update(num_rows=p["num_rows"], main=p["total_assignments"], logrows=p["logrows"])
            except Exception as e:  # (a refused op, WorkerError, is a result too)
                row["error"] = " ".join(str(e).split())[:200]
                print(f"  {row['error']}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    md = ["# Rows per element: each ONNX op in a proved training step\n",
          f"Run {now()}; each op between two trained layers (or on an 8x8 image before one), exported by "
          f"`torch.onnx.export` at its defaults, one SGD step of batch {B} per proof, BCE, scale 8. Rows: ezkl's "
          "main region for the whole step (forward, backward, update); per element: its rows minus the baseline's, "
          "over the elements the op outputs in the step (batch x output size).\n", machine_md(m, None),
          "| op | step rows | main region | logrows | main-region rows vs baseline | elements | rows per element |",
          "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in rows.items():
        if "error" in r:
            md.append(f"| {name} | not measured: {r['error'][:120]} | | | | | |")
            continue
        if not r["baseline"]:
            md.append(f"| {name} | {r['num_rows']:,} | {r['main']:,} | {r['logrows']} | | | |")
            continue
        extra, n = r["main"] - rows[r["baseline"]].get("main", 0), B * r["elements_per_row"]
        md.append(f"| {name} | {r['num_rows']:,} | {r['main']:,} | {r['logrows']} | {extra:,} | {n} | **{extra / n:,.0f}** |")
    md.append("\nReproduce: `python bench/ops.py`.")
    save(args.out, {"when": now(), "machine": m, "batch": B, "width": args.width, "results": rows}, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
