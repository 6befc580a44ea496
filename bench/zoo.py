"""Your model, measured: three small architectures a practitioner would recognise, each pretrained in float
on public rows, exported with torch.onnx.export at its defaults, fine-tuned privately by zkpot (the head alone,
and every weight), proved, verified VALID, side by side in one run.

    python bench/zoo.py [--archs cnn,tabular,attention] [--modes head,full] [--batch 8] [--steps 2] [--out zoo]

  cnn        8x8 digits (scikit-learn), 10 classes: Conv2d(1,2,3) ReLU MaxPool2 Linear(32,10); head fc
  tabular    breast cancer (30 features), binary: Linear(30,8) LayerNorm GELU residual Linear(8,1); head fc2
  attention  8x8 digits as 8 tokens of 8, even vs odd: one-head self-attention, mean, Linear(8,1); head out
Public rows pretrain (Adam, float), private rows fine-tune (--steps SGD steps of --batch rows, one step per
proof), the rest is held out. Each zkpot phase runs in a fresh process (its peak RSS is its own). Held-out accuracy of the
base model, of the fine-tuned model in fixed point (the proved run's) and in float (the same schedule in
torch). Results: bench/results/zoo.json and zoo.md.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import WorkerError, bench_env, machine, machine_md, now, save, worker  # noqa: E402



def models():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(1, 2, 3, padding=1), nn.Linear(32, 10)

        def forward(self, x):
            return self.fc(torch.flatten(F.max_pool2d(F.relu(self.conv(x)), 2), 1))

    class Tabular(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.ln, self.fc2 = nn.Linear(30, 8), nn.LayerNorm(8), nn.Linear(8, 1)

        def forward(self, x):
            h = self.fc1(x)
            return self.fc2(h + F.gelu(self.ln(h)))

    class Attention(nn.Module):
        def __init__(self, d=8):
            super().__init__()
            self.q, self.k, self.v, self.out = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, 1)

        def forward(self, x):
            a = torch.softmax(self.q(x) @ self.k(x).transpose(-1, -2) / math.sqrt(8), dim=-1)
            return self.out((a @ self.v(x)).mean(dim=1))

    return {"cnn": (CNN, (1, 8, 8), "ce", "fc.*"), "tabular": (Tabular, (30,), "bce", "fc2.*"),
            "attention": (Attention, (8, 8), "bce", "out.*")}


def data(arch: str, n: int):
    import numpy as np
    from sklearn.datasets import load_breast_cancer, load_digits

    if arch == "tabular":
        X, y = load_breast_cancer(return_X_y=True)
    else:
        X, y = load_digits(return_X_y=True)
        y = y if arch == "cnn" else y % 2
    order = np.random.default_rng(0).permutation(len(X))
    X, y = X[order].astype(np.float64), y[order]
    half = len(X) // 2
    mu, sd = X[:half].mean(0), X[:half].std(0) + 1e-9   # the public rows' statistics
    X = np.clip((X - mu) / sd, -4, 4)
    return (X[:half], y[:half]), (X[half:half + n], y[half:half + n]), (X[half + n:], y[half + n:])


def pretrain(arch: str, public, out: Path):
    import torch

    ctor, shape, loss, _ = models()[arch]
    torch.manual_seed(0)
    m = ctor()
    X, y = torch.tensor(public[0], dtype=torch.float32).reshape(-1, *shape), torch.tensor(public[1])
    opt = torch.optim.Adam(m.parameters(), lr=0.02)
    for _ in range(150):
        opt.zero_grad()
        z = m(X)
        lossv = (torch.nn.functional.cross_entropy(z, y) if loss == "ce"
                 else torch.nn.functional.binary_cross_entropy_with_logits(z[:, 0], y.float()))
        lossv.backward()
        opt.step()
    torch.onnx.export(m.eval(), (torch.zeros(1, *shape),), str(out))


def accuracy(digest: str, weights: Path | None, rows, loss: str) -> float:
    """Held-out accuracy of the graph with these weights (None: its own), on rows standardised as zkpot did."""
    import numpy as np
    import torch
    from safetensors.torch import load_file

    from zkpot.models import onnx_graph

    module = onnx_graph.load_module(digest)
    if weights is not None:
        module.load_state_dict(load_file(str(weights)), strict=False)
    with torch.no_grad():
        z = module(torch.tensor(rows[0], dtype=torch.float32)).numpy()
    pred = z.argmax(1) if loss == "ce" else (z[:, 0] > 0).astype(int)
    return float(np.mean(pred == rows[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", default="cnn,tabular,attention")
    ap.add_argument("--modes", default="head,full")
    ap.add_argument("--batch", type=int, default=8, help="rows per SGD step")
    ap.add_argument("--steps", type=int, default=2, help="SGD steps (one per proof): --batch x --steps private rows")
    ap.add_argument("--shared", default="", help="a note on background load for the results file")
    ap.add_argument("--out", default="zoo")
    args = ap.parse_args()
    import numpy as np

    work = Path(tempfile.mkdtemp(prefix="zkpot-bench-zoo-"))
    env, m, rows = bench_env(work), machine(), []
    os.environ["ZKPOT_CACHE"] = env["ZKPOT_CACHE"]   # the graphs registered here are the workers'
    from zkpot.prover.config import resolve_model
    from zkpot.prover.run import RunDir

    try:
        for arch in args.archs.split(","):
            _, _, loss, head = models()[arch]
            public, private, held = data(arch, args.batch * args.steps)
            pretrain(arch, public, work / f"{arch}.onnx")
            digest = resolve_model(str(work / f"{arch}.onnx")).removeprefix("onnx:")
            # the declared weight bound a practitioner passes: room above the pretrained weights for the run
            import onnx
            from onnx import numpy_helper

            biggest = max(float(np.abs(numpy_helper.to_array(t)).max()) for t in
                          onnx.load(str(work / f"{arch}.onnx")).graph.initializer if t.data_type == 1)
            weight_bound = max(2.0, float(np.ceil(biggest * 1.5)))
            csv = work / f"{arch}.csv"
            np.savetxt(csv, np.c_[private[0], private[1]], delimiter=",", comments="",
                       header=",".join([f"x{i}" for i in range(private[0].shape[1])] + ["label"]))
            mu, sd = private[0].mean(0), private[0].std(0)   # zkpot standardises the private rows by their own
            held_z = (np.clip((held[0] - mu) / np.where(sd > 0, sd, 1), -4, 4), held[1])
            for mode in args.modes.split(","):
                run = work / f"{arch}-{mode}"
                config = {"model": f"onnx:{digest}", "data": str(csv), "loss": loss, "batch_size": args.batch, "epochs": 1,
                          "lr": 0.1, "train": head if mode == "head" else "*", "classes": 10 if loss == "ce" else None,
                          "weight_bound": weight_bound}
                spec, row = {"run": str(run), "config": config}, {"arch": arch, "mode": mode, "weight_bound": weight_bound}
                rows.append(row)
                try:
                    print(f"[{now()}] {arch} {mode}: train, setup, prove, verify", flush=True)
                    row["prepare"] = worker("prepare", spec, env)
                    row["setup"] = worker("setup", spec, env)
                    row["prove_all"] = worker("prove_all", spec, env)
                    row["verify"] = worker("verify_bundle", spec, env)
                    r = RunDir(run)
                    row["held_out"] = {"rows": len(held[1]), "base": accuracy(digest, None, held_z, loss),
                                       "fixed": accuracy(digest, r.final_model, held_z, loss),
                                       "float": accuracy(digest, r.private / "float_model.safetensors", held_z, loss)}
                except WorkerError as e:
                    row["error"] = str(e)
                    print(f"  {e}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    data_ = {"when": now(), "machine": m, "shared": args.shared or None, "results": rows}
    md = ["# Your model: three architectures exported to ONNX, fine-tuned, proved and verified\n",
          f"Run {data_['when']}; pretrained in float on public rows, exported by `torch.onnx.export` at its defaults, "
          f"fine-tuned by zkpot on {args.batch * args.steps} private rows ({args.steps} SGD step(s) of {args.batch}, one per proof, lr 0.1, "
          "scale 8, dev SRS, the declared weight bound max(2, ceil(1.5 x the largest pretrained weight))), verified from "
          "the bundle (VALID ON AN INSECURE DEV SRS: every claim bound).\n", machine_md(m, args.shared),
          "| model | trains | trained / frozen parameters | weight bound | rows | logrows | s per proved SGD step | "
          "prove peak RSS GB | verify s | held-out accuracy: base / fixed point / float |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        if "error" in row or "held_out" not in row:
            md.append(f"| {row['arch']} | {row['mode']} | | | | | not measured: {row.get('error', '')[:160]} | | | |")
            continue
        p, h = row["prepare"], row["held_out"]
        md.append(f"| {row['arch']} | {row['mode']} | {p['trained_params']:,} / {p['frozen_params']:,} | "
                  f"{row['weight_bound']:g} | "
                  f"{p['num_rows']:,} | {p['logrows']} | **{row['prove_all']['seconds'] / p['steps']:.1f}** | "
                  f"{row['prove_all']['peak_rss_mb'] / 1024:.2f} | {row['verify']['seconds']:.1f} | "
                  f"{h['base']:.4f} / {h['fixed']:.4f} / {h['float']:.4f} ({h['rows']} rows) |")
    md.append("\nReproduce: `python bench/zoo.py`.")
    save(args.out, data_, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
