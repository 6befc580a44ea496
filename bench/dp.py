"""DP-SGD, utility and cost side by side (issue 26, item 5): the same rows, model, initial weights, batches and
hyperparameters trained by opacus 1.6 in float and by zkpot in fixed point, at a few noise levels and without
noise; held-out accuracy, the verifier's epsilon, the rows and seconds of one proved step against non-private
zkpot, and a loss-threshold membership-inference audit of every model.

    python bench/dp.py [--models logreg,mlp] [--sigmas 0.5,1,2] [--epochs 3] [--seeds 3] [--prove one] [--quick]

Data: the built-in breast-cancer rows (scikit-learn's Wisconsin data, its first --features columns), shuffled
with a fixed seed (--split-seed) and cut into N training rows (a whole number of batches) and N held-out rows
of the same size. zkpot standardises the training rows by their own mean and std (and clips them to the feature
bound); the held-out rows are mapped by that same scaling.

For each model, noise level SIGMA (C = --clip, delta = --delta) and seed (the initial weights and the batch
order; the noise is every run's own):
  zkpot   `zkpot train --dp-clip C --dp-noise SIGMA --dp-delta D` in process: prepare (the noise committed), a
          witness's attestation while round 6 of a local drand beacon (tests/beacon_local.py) is the latest,
          round 7 recorded, then the fixed-point run (every step's ezkl witness); the released model is
          private/final_model.safetensors. Non-private: the same run without --dp-*.
  opacus  the same initial weights (the run's public base model), the same rows (the run's standardised ones),
          the same fixed partition into batches and the same per-epoch order (not Poisson sampling: the
          mechanism zkpot proves): GradSampleModule + DPOptimizer (noise SIGMA, max_grad_norm C, expected batch
          size B, mean loss), torch SGD at the same lr. Non-private: plain torch SGD on the same batches.
  epsilon the verifier's (verifier/dp.privacy on the run's claims: the circuit's exact noise, fixed partition,
          replace-one neighbours, no amplification), the same for both; beside it, labelled as such, what opacus's
          own RDP accountant says for SIGMA, q = B/N and the same steps (it assumes Poisson sampling and add/remove
          neighbours: another mechanism, not comparable), and the continuous Gaussian of the same std and
          sensitivity 2C over the same partition (dp-accounting RDP: what the circuit's noise approximates).
  cost    for seed 0 (--prove one: the non-private run and the first SIGMA; all: every SIGMA; none), keys set up
          and chunk 0 (one step) proved and verified, each in a fresh process (bench/worker.py: its peak RSS is
          its own); rows and logrows from the run's settings.json for every level.
  audit   Yeom et al.'s loss-threshold attack on every released model: "member" when an example's loss is at
          most the mean training loss; advantage = TPR - FPR on the N training rows against the N held-out rows.
          Also the best threshold's advantage (an optimistic upper figure on this few rows) and the AUC.

Results: bench/results/dp.json and dp.md (--out NAME for another name). --quick: a smoke run of a few seconds
of training and a small proof (8 features, 32 rows, batches of 8, one epoch, logreg, SIGMA 1, one seed).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import WorkerError, bench_env, machine, machine_md, now, save, worker  # noqa: E402

ROUND = 7   # the witness attests while round 6 is the latest (as tests/test_dp_run.py)


# --- data -----------------------------------------------------------------------------------------------------------

def split(features: int, batch: int, n_train: int | None, seed: int):
    """(train X, y), (held-out X, y): raw rows of the built-in data, N = n_train (default: as many whole batches as
    leave a held-out set of the same size)."""
    import numpy as np

    from zkpot.models.data import breast_cancer

    X, y = breast_cancer()
    X = X[:, :features]
    order = np.random.default_rng(seed).permutation(len(X))
    n = n_train or (len(X) // 2) // batch * batch
    if n % batch or 2 * n > len(X):
        raise SystemExit(f"--train-rows {n}: must be a multiple of --batch {batch} and at most half of {len(X)} rows")
    tr, ho = order[:n], order[n : 2 * n]
    return (X[tr], y[tr]), (X[ho], y[ho])


def write_csv(path: Path, X, y) -> None:
    import numpy as np

    np.savetxt(path, np.c_[X, y], delimiter=",", comments="",
               header=",".join([f"x{i}" for i in range(X.shape[1])] + ["label"]))


# --- the models, evaluated -----------------------------------------------------------------------------------------

def per_example(module, X, y) -> tuple[list[float], float]:
    """Each row's BCE loss and the accuracy of a binary model (one logit)."""
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        z = module(torch.tensor(X, dtype=torch.float32))[:, 0]
        t = torch.tensor(y, dtype=torch.float32).reshape(-1)
        loss = F.binary_cross_entropy_with_logits(z, t, reduction="none")
    return loss.tolist(), float(((z > 0).float() == t).float().mean())


def mia(train_loss: list[float], held_loss: list[float]) -> dict:
    """Loss-threshold membership inference (Yeom et al. 2018): member iff loss <= the mean training loss."""
    import numpy as np

    a, b = np.asarray(train_loss), np.asarray(held_loss)
    tau = float(a.mean())
    tpr, fpr = float((a <= tau).mean()), float((b <= tau).mean())
    cuts = np.unique(np.concatenate([a, b]))
    best = max(float((a <= c).mean() - (b <= c).mean()) for c in cuts)
    auc = float(((b[None, :] > a[:, None]).mean() + 0.5 * (b[None, :] == a[:, None]).mean()))
    return {"threshold": tau, "tpr": tpr, "fpr": fpr, "advantage": tpr - fpr, "best_advantage": best, "auc": auc}


def evaluate(module, train, held) -> dict:
    tl, tacc = per_example(module, *train)
    hl, hacc = per_example(module, *held)
    return {"train_accuracy": tacc, "held_out_accuracy": hacc, "train_loss": float(sum(tl) / len(tl)),
            "held_out_loss": float(sum(hl) / len(hl)), "mia": mia(tl, hl)}


def load_weights(cfg, path: Path, features: int):
    from safetensors.torch import load_file

    from zkpot.prover import train as tr

    module = tr.build_model(cfg, features, 1)
    module.load_state_dict(load_file(str(path)), strict=True)
    return module.eval()


def float_train(rd, cfg, sigma: float | None, clip: float, seed: int):
    """opacus (sigma given) or plain torch SGD (None) from the run's base weights, on the run's rows, partition and
    schedule: the same mechanism zkpot proves, in float."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from zkpot.spec.artifacts import read_json
    from zkpot.spec.schedule import schedule

    d = np.load(rd.data)
    X, Y = torch.tensor(d["X"]), torch.tensor(d["Y"])
    parts = read_json(rd.partition)["batches"]
    module = load_weights(cfg, rd.base_model, X.shape[1]).train()
    torch.manual_seed(seed)
    if sigma is None:
        model, opt = module, torch.optim.SGD(module.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                             weight_decay=cfg.weight_decay)
    else:
        from opacus import GradSampleModule
        from opacus.optimizers import DPOptimizer

        model = GradSampleModule(module, loss_reduction="mean")
        opt = DPOptimizer(torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                          weight_decay=cfg.weight_decay),
                          noise_multiplier=sigma, max_grad_norm=clip, expected_batch_size=cfg.batch_size,
                          loss_reduction="mean")
    t0 = time.perf_counter()
    order = schedule(len(parts), cfg.epochs, cfg.schedule_seed)
    for _, b in order:
        idx = torch.tensor(parts[b])
        opt.zero_grad()
        F.binary_cross_entropy_with_logits(model(X[idx]), Y[idx]).backward()
        opt.step()
    seconds = (time.perf_counter() - t0) / len(order)
    return (model._module if sigma is not None else model).eval(), seconds


# --- epsilon ---------------------------------------------------------------------------------------------------------

def run_section(rd) -> dict:
    """The manifest's run section (prover/prove.py writes it so): what the verifier derives epsilon from."""
    from zkpot.models.step import Layout
    from zkpot.prover import train as tr
    from zkpot.prover.config import RunConfig
    from zkpot.spec.artifacts import read_json

    cfg = RunConfig.load(rd.config)
    part = read_json(rd.partition)
    layout = Layout.from_dict(part["layout"])
    return cfg.run_claims(layout, len(part["batches"]), tr.frozen_claims(tr.base_module(rd, cfg, layout), layout))


def epsilons(run: dict, n_train: int) -> dict:
    """The verifier's epsilon, and beside it (labelled) opacus's RDP accountant and the continuous Gaussian."""
    from opacus.accountants import RDPAccountant

    from zkpot.spec import accountant
    from zkpot.verifier.dp import privacy

    dp, steps = run["dp"], run["epochs"] * run["num_batches"]
    t0 = time.perf_counter()
    p = privacy(run)
    seconds = time.perf_counter() - t0
    acc = RDPAccountant()
    acc.history = [(dp["noise"], run["batch_size"] / n_train, steps)]
    return {"verifier": p, "verifier_seconds": seconds,
            "opacus_rdp_poisson": acc.get_epsilon(dp["delta"]),
            "gaussian_fixed_partition": accountant.gaussian_epsilon(dp["noise"] / 2, run["epochs"], dp["delta"])}


# --- one run ----------------------------------------------------------------------------------------------------------

def zkpot_run(root: Path, cfg, beacon, witness_key: Path) -> dict:
    """prepare, the beacon round (DP), the fixed-point run: timed."""
    from zkpot.prover import dp as prover_dp
    from zkpot.prover import train as tr
    from zkpot.prover.run import RunDir

    rd = RunDir(root)
    t0 = time.perf_counter()
    tr.prepare(rd, cfg, progress=lambda *_: None)
    t1 = time.perf_counter()
    if cfg.dp:
        att = prover_dp.attest(json.loads(rd.noise_root.read_text()), beacon.info(), beacon.round(ROUND - 1),
                                  witness_key)
        tr.record_beacon(rd, beacon.info(), beacon.round(ROUND), [att])
    t2 = time.perf_counter()
    report = tr.fixed_point_run(rd)
    t3 = time.perf_counter()
    settings = json.loads(rd.settings.read_text())
    return {"rd": rd, "prepare_seconds": t1 - t0, "beacon_seconds": t2 - t1, "train_seconds": t3 - t2,
            "witness_seconds_per_step": (t3 - t2) / report["steps"], "report": report,
            "num_rows": settings.get("num_rows"), "logrows": settings["run_args"]["logrows"]}


def prove_one(rd, env) -> dict:
    """Keys, then chunk 0 (one step) proved and verified, each in a fresh process."""
    spec = {"run": str(rd.root), "chunk": 0}
    out = {"setup": worker("setup", spec, env), "prove": worker("prove", spec, env)}
    out["verify"] = worker("verify", spec, env)
    if not out["verify"]["ok"]:
        raise WorkerError("chunk 0's proof does not verify")
    return out


# --- the tables --------------------------------------------------------------------------------------------------------

def mean_std(xs: list[float], fmt: str = ".3f") -> str:
    if not xs:
        return ""
    if len(xs) == 1:
        return format(xs[0], fmt)
    return f"{statistics.mean(xs):{fmt}} ± {statistics.stdev(xs):{fmt}}"


def level_name(sigma) -> str:
    return "non-private" if sigma is None else f"SIGMA {sigma:g}"


def markdown(data: dict) -> str:
    a = data["args"]
    md = ["# DP-SGD: utility and cost, opacus in float beside zkpot in fixed point\n",
          f"Run {data['when']} ({data['wall_seconds'] / 60:.1f} min). Built-in breast-cancer rows, first {a['features']} "
          f"features: {data['n_train']} training rows and {data['n_train']} held-out rows (split seed {a['split_seed']}); "
          f"batches of {a['batch']} (a fixed partition, every example once per epoch), {a['epochs']} epoch(s), "
          f"{data['steps']} steps, SGD lr {a['lr']}, scale 8, weight bound {a['weight_bound']:g}; DP: C = {a['clip']:g}, "
          f"delta = {a['delta']:g}. {len(a['seed_list'])} seed(s) (initial weights and batch order; mean ± std). "
          "Proofs on a dev SRS, one step per proof.\n",
          machine_md(data["machine"], a.get("shared")),
          "## Utility and privacy\n",
          "ε (verifier) is what `zkpot verify` reports: the circuit's exact noise, this fixed partition, replace-one "
          "neighbours, no amplification by sampling; it applies to the opacus run too (the same mechanism in float). "
          "ε (opacus RDP) is opacus's own accountant for the same SIGMA, steps and q = B/N: it assumes Poisson "
          "sampling and add/remove neighbours, so it is *not* this mechanism's ε and is shown only as the number "
          "opacus users are used to. ε (Gaussian) is the continuous Gaussian of the same std and sensitivity 2C over "
          "the same partition (dp-accounting RDP): what the circuit's noise approximates.\n",
          "| model | noise | ε (verifier) | ε (opacus RDP, Poisson: not comparable) | ε (Gaussian) | "
          "held-out acc, opacus / torch float | held-out acc, zkpot fixed point | MIA advantage, float | "
          "MIA advantage, fixed point |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for g in data["levels"]:
        runs = [r for r in g["runs"] if "error" not in r]
        e = g.get("epsilon") or {}
        ver = "∞ (no noise)" if g["sigma"] is None else (f"**{e['verifier']['epsilon']:.2f}**" if e else "")
        opa = "" if g["sigma"] is None or not e else f"{e['opacus_rdp_poisson']:.2f}"
        gau = "" if g["sigma"] is None or not e else f"{e['gaussian_fixed_partition']:.2f}"
        err = "; ".join(r["error"][:120] for r in g["runs"] if "error" in r)
        col = lambda side, key: mean_std([r[side][key] for r in runs])   # noqa: E731
        adv = lambda side: mean_std([r[side]["mia"]["advantage"] for r in runs])   # noqa: E731
        md.append(f"| {g['model']} {g['arch']} | {level_name(g['sigma'])} | {ver} | {opa} | {gau} | "
                  f"{col('float', 'held_out_accuracy')} | {col('fixed', 'held_out_accuracy')} | {adv('float')} | "
                  f"{adv('fixed')}{' (failed: ' + err + ')' if err else ''} |")
    md += ["", "MIA advantage: Yeom et al.'s loss threshold at the mean training loss, TPR − FPR on the training rows "
           "against as many held-out rows (0: no membership signal). The best threshold's advantage and the AUC are "
           "in dp.json (`mia`).\n",
           "## Cost per proved step\n",
           "| model | noise | trained parameters | rows | logrows | rows × non-private | s per proved step | "
           "s × non-private | prove peak RSS GB | setup s | verify s | witness s per step (fixed-point run) |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    plain = {g["model"]: g for g in data["levels"] if g["sigma"] is None}
    for g in data["levels"]:
        runs = [r for r in g["runs"] if "error" not in r]
        if not runs:
            continue
        r0, base = runs[0], plain.get(g["model"])
        b0 = next((r for r in base["runs"] if "error" not in r), None) if base else None
        pr = g.get("proof")
        ps = pr["prove"]["seconds"] if pr and "prove" in pr else None
        bp = (base or {}).get("proof") or {}
        bs = bp["prove"]["seconds"] if "prove" in bp else None
        rows_x = f"{r0['num_rows'] / b0['num_rows']:.1f}" if b0 else ""
        sec_x = f"{ps / bs:.1f}" if ps and bs else ""
        if pr and "error" in pr:
            proof_cells = f"not measured: {pr['error'][:100]} | | | | |"
        elif pr:
            proof_cells = (f"**{ps:.1f}** | {sec_x} | {pr['prove']['peak_rss_mb'] / 1024:.2f} | "
                           f"{pr['setup']['seconds']:.1f} | {pr['verify']['seconds']:.1f} |")
        else:
            proof_cells = "(not proved: --prove) | | | | |"
        md.append(f"| {g['model']} {g['arch']} | {level_name(g['sigma'])} | {r0['trained_params']} | {r0['num_rows']:,} | "
                  f"{r0['logrows']} | {rows_x} | {proof_cells} {mean_std([r['witness_seconds_per_step'] for r in runs], '.2f')} |")
    md.append(f"\nReproduce: `{data['command']}`.")
    return "\n".join(md) + "\n"


# --- main -------------------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="logreg,mlp", help="logreg and/or mlp (bce, one logit)")
    ap.add_argument("--hidden", default="4", help="the mlp's hidden widths, comma-separated")
    ap.add_argument("--sigmas", default="0.5,1,2", help="noise multipliers (a non-private run is always added)")
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--delta", type=float, default=1e-5)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--features", type=int, default=10, help="the first N columns of the breast-cancer data")
    ap.add_argument("--train-rows", type=int, default=None, help="N training rows (and N held out); default: the most")
    ap.add_argument("--weight-bound", type=float, default=4.0)
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (initial weights, batch order)")
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--prove", choices=("one", "all", "none"), default="one",
                    help="one: the non-private run and the first SIGMA of each model; all: every level; none")
    ap.add_argument("--quick", action="store_true", help="a smoke run (see the module docstring)")
    ap.add_argument("--shared", default="", help="a note on background load for the results file")
    ap.add_argument("--out", default="dp")
    ap.add_argument("--results", default=None, help="another folder for NAME.json and NAME.md (default bench/results)")
    args = ap.parse_args(argv)
    if args.quick:
        args.models, args.sigmas, args.epochs, args.batch, args.features = "logreg", "1", 1, 8, 8
        args.train_rows, args.seeds = args.train_rows or 32, 1
        if args.out == "dp":
            args.out = "dp-quick"
    command = "python bench/dp.py " + " ".join(sys.argv[1:] if argv is None else argv)
    args.seed_list = list(range(args.seeds))
    sigmas = [None] + [float(s) for s in args.sigmas.split(",") if s]
    models = [m for m in args.models.split(",") if m]
    if set(models) - {"logreg", "mlp"}:
        raise SystemExit(f"--models: logreg and/or mlp, got {args.models}")
    hidden = [int(h) for h in args.hidden.split(",") if h]

    import warnings

    warnings.filterwarnings("ignore", message="Full backward hook is firing")   # opacus's hooks on a data-only input
    from tests.beacon_local import LocalBeacon
    from zkpot.prover.config import RunConfig
    from zkpot.prover.signing import new_key
    import numpy as np

    from zkpot.models.data import apply_scaling
    from zkpot.models.step import Layout

    start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="zkpot-bench-dp-"))
    env, m = bench_env(work), machine()
    os.environ["ZKPOT_CACHE"] = env["ZKPOT_CACHE"]   # this process's runs and the workers' share one cache
    beacon, key = LocalBeacon(), work / "witness.key"
    new_key(key)
    (Xt, yt), held_raw = split(args.features, args.batch, args.train_rows, args.split_seed)
    csv = work / "train.csv"
    write_csv(csv, Xt, yt)
    levels = []
    try:
        for model in models:
            for li, sigma in enumerate(sigmas):
                arch = "-".join(map(str, [args.features, *(hidden if model == "mlp" else []), 1]))
                g = {"model": model, "arch": arch, "hidden": hidden if model == "mlp" else None, "sigma": sigma,
                     "runs": []}
                levels.append(g)
                for seed in args.seed_list:
                    dp = {} if sigma is None else {"dp_clip": args.clip, "dp_noise": sigma, "dp_delta": args.delta}
                    cfg = RunConfig(model=model, hidden=hidden, loss="bce", lr=args.lr, batch_size=args.batch,
                                    epochs=args.epochs, steps_per_proof=1, data=str(csv), seed=seed,
                                    schedule_seed=seed, weight_bound=args.weight_bound, **dp)
                    row = {"seed": seed}
                    g["runs"].append(row)
                    name = f"{model}-{'plain' if sigma is None else f'dp{sigma:g}'}-seed{seed}"
                    print(f"[{now()}] {name}: zkpot fixed point, float, audit", flush=True)
                    try:
                        z = zkpot_run(work / name, cfg, beacon, key)
                        rd = z.pop("rd")
                        row.update(z)
                        scaling = json.loads(rd.scaling.read_text())
                        d = np.load(rd.data)
                        part = json.loads(rd.partition.read_text())
                        trained = sorted({i for b in part["batches"] for i in b})   # the rows the batches hold
                        train = (d["X"][trained], d["Y"][trained])
                        held = (apply_scaling(held_raw[0], scaling, cfg.feature_bound), held_raw[1])
                        saved = RunConfig.load(rd.config)
                        row["trained_params"] = Layout.from_dict(part["layout"]).n_params
                        row["fixed"] = evaluate(load_weights(saved, rd.final_model, args.features), train, held)
                        row["zkpot_float_reference"] = evaluate(load_weights(saved, rd.float_model, args.features),
                                                                train, held)
                        module, secs = float_train(rd, saved, sigma, args.clip, seed)
                        row["float"] = evaluate(module, train, held)
                        row["float_seconds_per_step"] = secs
                        if sigma is not None and "epsilon" not in g:
                            g["epsilon"] = epsilons(run_section(rd), len(train[0]))
                        if seed == 0 and (args.prove == "all" or (args.prove == "one" and li <= 1)):
                            print(f"[{now()}] {name}: setup, prove and verify chunk 0", flush=True)
                            try:
                                g["proof"] = prove_one(rd, env)
                            except WorkerError as e:
                                g["proof"] = {"error": str(e)}
                                print(f"  {e}", flush=True)
                        shutil.rmtree(rd.root / "private" / "witnesses", ignore_errors=True)   # (disk: the rest is small)
                    except Exception as e:   # a failed run is a row that says why; the others go on
                        at = traceback.extract_tb(e.__traceback__)[-1]
                        row["error"] = (f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
                                        f"({Path(at.filename).name}:{at.lineno})")
                        print(f"  {row['error']}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    first = next((r for g in levels for r in g["runs"] if "report" in r), None)
    data = {"when": now(), "machine": m, "command": command, "wall_seconds": time.perf_counter() - start,
            "args": {k: v for k, v in vars(args).items()}, "n_train": len(Xt),
            "steps": first["report"]["steps"] if first else None, "levels": levels}
    md = markdown(data)
    if args.results:
        import bench.common as common

        common.RESULTS = Path(args.results)
    save(args.out, data, md)


if __name__ == "__main__":
    main()
