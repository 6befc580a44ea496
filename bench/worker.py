"""One benchmark measurement in its own process, so that its peak RSS is its own.

    python -m bench.worker PHASE SPEC_JSON

PHASE is one of:
  prepare  zkpot's own train phase (prover.train.prepare + fixed_point_run): ONNX export,
           calibration, compile, every chunk's witness; plus a plain torch SGD loop over the same
           batches for the "training in plain torch" baseline
  setup    prover.keys.setup (dev SRS at the circuit's logrows, vk, pk)
  prove    circuits.pipeline.prove of one chunk's stored witness
  verify   circuits.pipeline.verify of that proof
  fold_setup     prover.keys.setup with a dev SRS at the fold's logrows (spec "fan_in")
  prove_all      prover.prove.prove_all: every chunk proof and the manifest
  fold           prover.fold.fold, setup_aggregate and aggregate timed apart per tree node
  verify_folded  the folded bundle from its run proof alone, next to every chunk proof verified
  infer          prover.infer.prove_inference of the run's final model on spec "rows" random rows
  verify_infer   the bundle verified alone, then with that inference proof (the difference: the inference checks)

SPEC is a JSON object: {"run": dir, "config": RunConfig fields, "run_args": {attr: value}, "chunk": c}.
"run_args" overrides attributes of circuits.pipeline.run_args(scale) for this process only
(the ezkl knobs the tuning explores); {"base": "ezkl-default"} starts from ezkl's PyRunArgs
defaults instead of zkpot's, keeping zkpot's visibilities and scale.
"calibrate" is {"lookup_safety_margin": m} (zkpot's calibration, another margin) or
{"base": "ezkl-default"}: ezkl's own calibrate_settings defaults (it picks the scale itself;
the run is then re-prepared at that scale, so that train quantizes its inputs to it).
The worker prints one JSON line: {"seconds": ..., "peak_rss_mb": ..., ...}.
"""
from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _patch_run_args(spec: dict) -> None:
    """Apply the spec's ezkl knobs to every run_args() call in this process (gen_settings uses it)."""
    from zkpot.circuits import pipeline
    import ezkl

    over = dict(spec.get("run_args") or {})
    base = over.pop("base", "zkpot")
    orig = pipeline.run_args

    def run_args(scale: int, decomposition=None, outputs: str = "hashed"):
        if base == "ezkl-default":
            ra = ezkl.PyRunArgs()  # ezkl's defaults, with the visibilities and scale zkpot must keep
            ra.input_visibility, ra.output_visibility, ra.param_visibility = "hashed", outputs, "fixed"
            ra.input_scale = ra.param_scale = scale
        else:
            ra = orig(scale, *([decomposition] if decomposition else []), outputs=outputs)
        for k, v in over.items():
            setattr(ra, k, tuple(v) if isinstance(v, list) else v)
        return ra

    pipeline.run_args = run_args


class _ScalePicked(Exception):
    def __init__(self, scale: int):
        self.scale = scale


def _patch_calibrate(spec: dict, cfg_scale: int) -> None:
    """Apply the spec's calibration choice to circuits.pipeline.calibrate in this process."""
    from zkpot.circuits import pipeline
    import ezkl

    over = dict(spec.get("calibrate") or {})
    if not over:
        return
    if over.get("base") == "ezkl-default":
        def calibrate(samples, onnx, settings, scale, max_logrows=20, margin=2):
            pipeline.call("calibrate_settings", ezkl.calibrate_settings, str(samples), str(onnx), str(settings),
                          "resources")  # ezkl's defaults: scale search, margin, rebase multipliers, no max logrows
            s = pipeline.read_json(settings)
            picked = s["run_args"]["input_scale"]
            if picked != cfg_scale:
                raise _ScalePicked(picked)
            if s["model_output_scales"][0] != picked or s["run_args"]["param_scale"] != picked:
                raise pipeline.CircuitError("ezkl's default calibration breaks the scale chain")
            return s
    else:
        orig = pipeline.calibrate
        margin = over["lookup_safety_margin"]

        def calibrate(samples, onnx, settings, scale, max_logrows=20, _margin=2):
            return orig(samples, onnx, settings, scale, max_logrows, margin)
    pipeline.calibrate = calibrate


def _plain_torch_seconds_per_step(run, cfg) -> float:
    """Ordinary torch training of the same model on the same batches: nn.Module, autograd, optim.SGD."""
    import numpy as np
    import torch

    from zkpot.spec.artifacts import read_json
    from zkpot.models.losses import LOSSES
    from zkpot.prover import train as tr
    from zkpot.spec.schedule import schedule

    d = np.load(run.data)
    X, Y = torch.tensor(d["X"]), torch.tensor(d["Y"])
    parts = read_json(run.partition)["batches"]
    order = schedule(len(parts), cfg.epochs, cfg.schedule_seed)
    module = tr.build_model(cfg, X.shape[1], Y.shape[1])
    opt = torch.optim.SGD(module.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    loss_fn = LOSSES[cfg.loss]
    torch.set_num_threads(1)
    reps = max(1, 200 // len(order))  # at least ~200 steps for a stable per-step time
    start = time.perf_counter()
    for _ in range(reps):
        for _, b in order:
            idx = torch.tensor(parts[b])
            opt.zero_grad()
            loss_fn(module(X[idx]), Y[idx]).backward()
            opt.step()
    return (time.perf_counter() - start) / (reps * len(order))


def prepare(spec: dict) -> dict:
    _patch_run_args(spec)
    from zkpot.spec.artifacts import read_json
    from zkpot.prover import train as tr
    from zkpot.prover.config import RunConfig
    from zkpot.prover.run import RunDir

    run, cfg = RunDir(Path(spec["run"])), RunConfig(**spec["config"])
    t0 = time.perf_counter()
    _patch_calibrate(spec, cfg.scale)
    try:
        tr.prepare(run, cfg, progress=lambda *_: None, memory_gb=spec.get("memory_gb"))
    except _ScalePicked as e:  # ezkl chose another scale: prepare again, quantizing at that scale
        import shutil

        shutil.rmtree(run.root)
        cfg.scale = e.scale
        _patch_calibrate(spec, cfg.scale)
        t0 = time.perf_counter()
        tr.prepare(run, cfg, progress=lambda *_: None, memory_gb=spec.get("memory_gb"))
    t1 = time.perf_counter()
    report = tr.fixed_point_run(run)
    t2 = time.perf_counter()
    # fixed_point_run also replays the float run for its report; time witness generation alone
    from zkpot.circuits import pipeline
    w0 = time.perf_counter()
    pipeline.gen_witness(run.chunk_input(0), run.compiled, run.root / "witness_timing.json")
    witness_s = time.perf_counter() - w0
    settings = read_json(run.settings)
    steps_per_proof = read_json(run.config)["steps_per_proof"]
    from zkpot.models.step import Layout
    from safetensors.numpy import load_file

    trained = Layout.from_dict(read_json(run.partition)["layout"]).n_params
    total = sum(v.size for v in load_file(str(run.base_model)).values())
    return {
        "trained_params": trained,
        "frozen_params": total - trained,
        "steps_per_proof": steps_per_proof,
        "chunks": report["steps"] // steps_per_proof,
        "prepare_seconds": t1 - t0,
        "train_seconds": t2 - t1,
        "witness_seconds_per_chunk": witness_s,
        "plain_torch_seconds_per_step": _plain_torch_seconds_per_step(run, cfg),
        "logrows": settings["run_args"]["logrows"],
        "num_rows": settings.get("num_rows"),
        "total_assignments": settings.get("total_assignments"),
        "lookup_range": settings["run_args"].get("lookup_range"),
        "run_args": settings["run_args"],
        "report": report,
        "steps": report["steps"],
    }


def setup(spec: dict) -> dict:
    from zkpot.prover.keys import setup as keys_setup
    from zkpot.prover.run import RunDir

    run = RunDir(Path(spec["run"]))
    t0 = time.perf_counter()
    keys_setup(run, None, progress=lambda *_: None)
    return {"seconds": time.perf_counter() - t0, "pk_mb": run.pk.stat().st_size / 2**20,
            "vk_kb": run.vk.stat().st_size / 1024}


def _proof_path(run, spec: dict) -> Path:
    return run.root / "bench_proofs" / f"chunk_{spec.get('chunk', 0):05d}.json"


def prove(spec: dict) -> dict:
    from zkpot.circuits import pipeline
    from zkpot.prover.run import RunDir

    run = RunDir(Path(spec["run"]))
    c = spec.get("chunk", 0)
    out = _proof_path(run, spec)
    out.parent.mkdir(exist_ok=True)
    out.unlink(missing_ok=True)
    t0 = time.perf_counter()
    pipeline.prove(run.witness(c), run.compiled, run.pk, out, run.srs)
    seconds = time.perf_counter() - t0
    proof = json.loads(out.read_text())
    return {"seconds": seconds, "proof_bytes": out.stat().st_size,
            "proof_raw_bytes": len(proof.get("proof", [])) if isinstance(proof.get("proof"), list) else None}


def verify(spec: dict) -> dict:
    from zkpot.circuits import pipeline
    from zkpot.prover.run import RunDir

    run = RunDir(Path(spec["run"]))
    t0 = time.perf_counter()
    ok = pipeline.verify(_proof_path(run, spec), run.settings, run.vk, run.srs)
    return {"seconds": time.perf_counter() - t0, "ok": ok}


def fold_setup(spec: dict) -> dict:
    from zkpot.spec.artifacts import read_json
    from zkpot.circuits.srs import logrows_of
    from zkpot.prover.keys import setup as keys_setup
    from zkpot.prover.run import RunDir

    run = RunDir(Path(spec["run"]))
    t0 = time.perf_counter()
    keys_setup(run, None, progress=lambda *_: None, fold_fan_in=spec["fan_in"])
    return {"seconds": time.perf_counter() - t0, "logrows": read_json(run.settings)["run_args"]["logrows"],
            "srs_logrows": logrows_of(run.srs), "pk_mb": run.pk.stat().st_size / 2**20}


def prove_all(spec: dict) -> dict:
    from zkpot.prover.prove import prove_all as prove_every_chunk
    from zkpot.prover.run import RunDir

    run = RunDir(Path(spec["run"]))
    t0 = time.perf_counter()
    prove_every_chunk(run)
    return {"seconds": time.perf_counter() - t0}


def fold(spec: dict) -> dict:
    """prover.fold.fold with its two ezkl calls timed: a node's setup is None when its key was cached."""
    from zkpot.circuits import pipeline
    from zkpot.prover.fold import fold as fold_run
    from zkpot.prover.run import RunDir

    run = RunDir(Path(spec["run"]))
    pending, nodes = {}, []

    def timed(name, fn):
        def call(*a, **k):
            t0 = time.perf_counter()
            fn(*a, **k)
            pending[name] = time.perf_counter() - t0
        return call

    pipeline.setup_aggregate = timed("setup", pipeline.setup_aggregate)
    pipeline.aggregate = timed("aggregate", pipeline.aggregate)

    def on_node(level, i, n, seconds):
        nodes.append({"level": level, "i": i, "of": n, "seconds": seconds,
                      "setup_s": pending.pop("setup", None), "aggregate_s": pending.pop("aggregate", 0.0)})

    t0 = time.perf_counter()
    tree = fold_run(run.public, spec["fan_in"], keep_keys=spec.get("keep_keys", True), on_node=on_node)
    for node, rec in zip((x for level in tree["levels"] for x in level), nodes):
        rec["logrows"] = node["logrows"]
    top = run.public / tree["levels"][-1][0]["proof"]
    return {"seconds": time.perf_counter() - t0, "nodes": nodes, "run_proof_bytes": top.stat().st_size,
            "run_proof_raw_bytes": len(json.loads(top.read_text())["proof"])}


def _verified(run) -> tuple[float, object]:
    """What `zkpot verify --allow-insecure-dev-srs` does, in this process, timed: anything but VALID ends the worker."""
    from zkpot.verifier.verify import verify_bundle as verify_public

    t0 = time.perf_counter()
    report = verify_public(run.public, allow_insecure_dev_srs=True)
    seconds = time.perf_counter() - t0
    if not report.ok:
        raise SystemExit(f"the bundle does not verify: {report.verdict} {[str(f) for f in report.failures]}")
    return seconds, report


def verify_folded(spec: dict) -> dict:
    from zkpot.circuits import pipeline
    from zkpot.prover.run import RunDir

    run = RunDir(Path(spec["run"]))
    run_proof_s, _ = _verified(run)
    proofs = sorted((run.public / "proofs").glob("chunk_*.json"))
    t0 = time.perf_counter()
    if not all(pipeline.verify(p, run.settings, run.vk, run.srs) for p in proofs):
        raise SystemExit("a chunk proof does not verify")
    return {"run_proof_s": run_proof_s, "chunk_proofs_s": time.perf_counter() - t0, "chunk_proofs": len(proofs)}


def verify_fresh(spec: dict) -> dict:
    """A third party's first verification of the folded bundle, from the run proof alone: a copy of the public
    bundle without its chunk proofs, an empty cache and a new cache secret (a machine that never saw the run),
    the full SRS given once. Every vk is derived here (the run proof's through sample proofs at every level)."""
    import os
    import shutil
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="zkpot-fresh-", dir=spec.get("tmp")))
    os.environ["ZKPOT_CACHE"], os.environ["XDG_CONFIG_HOME"] = str(work / "cache"), str(work / "config")
    from zkpot.prover.run import RunDir
    from zkpot.verifier.verify import verify_bundle as verify_public

    run = RunDir(Path(spec["run"]))
    public = work / "public"
    shutil.copytree(run.public, public, ignore=shutil.ignore_patterns("chunk_*.json"))
    said = []
    t0 = time.perf_counter()
    try:
        report = verify_public(public, srs=run.srs, allow_insecure_dev_srs=True,
                               say=lambda msg: said.append((round(time.perf_counter() - t0, 1), msg)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - t0
    if not report.ok:
        raise SystemExit(f"the bundle does not verify: {report.verdict} {[str(f) for f in report.failures]}")
    return {"seconds": seconds, "verdict": report.verdict, "passed": report.passed, "said": said}


def verify_bundle(spec: dict) -> dict:
    """The bundle verified (VALID), timed; whether the run proof or the chunk proofs were checked."""
    from zkpot.prover.run import RunDir

    seconds, report = _verified(RunDir(Path(spec["run"])))
    names = {name for name, _ in report.passed}
    folded = "pairing" in names
    return {"seconds": seconds, "checked": "run proof" if folded else "every chunk proof", "passed": sorted(names)}


def infer(spec: dict) -> dict:
    """prover.infer.prove_inference on spec["rows"] rows drawn within the feature bound: the first call
    of a row count derives the circuit and sets up its keys, a later one only proves."""
    import numpy as np

    from zkpot.spec.artifacts import read_json
    from zkpot.prover.infer import prove_inference
    from zkpot.prover.run import RunDir

    run, out = RunDir(Path(spec["run"])), Path(spec["out"])
    m = read_json(run.manifest)
    x = np.random.default_rng(spec["rows"]).uniform(-1, 1, (spec["rows"], m["run"]["layout"]["features"]))
    marks = {}  # when each phase began, from prove_inference's own progress messages
    t0 = time.perf_counter()
    prove_inference(run, x, out, hidden=spec.get("hidden", False),
                    progress=lambda msg: marks.setdefault(msg.split()[1], time.perf_counter()))
    end = time.perf_counter()
    proof = out / "public" / "proof.json"
    return {"seconds": end - t0, "witness_and_proof_seconds": end - marks["witness"],
            "proof_bytes": proof.stat().st_size, "proof_raw_bytes": len(json.loads(proof.read_text())["proof"])}


def verify_infer(spec: dict) -> dict:
    """verify_bundle with --inference: the run, then the inference proof; the inference stage timed apart."""
    from zkpot.prover.run import RunDir
    from zkpot.verifier.verify import verify_bundle as verify_public

    run = RunDir(Path(spec["run"]))
    verify_public(run.public, allow_insecure_dev_srs=True)  # warm: imports and first reads
    t0 = time.perf_counter()
    plain = verify_public(run.public, allow_insecure_dev_srs=True)
    t1 = time.perf_counter()
    report = verify_public(run.public, allow_insecure_dev_srs=True, inference=Path(spec["out"]))
    t2 = time.perf_counter()
    if not (plain.ok and report.ok):
        raise SystemExit(f"does not verify: {report.verdict} {[str(f) for f in report.failures]}")
    detail = dict(report.passed)["infer-circuit"]
    return {"run_seconds": t1 - t0, "with_inference_seconds": t2 - t1, "inference_seconds": (t2 - t1) - (t1 - t0),
            "logrows": int(detail.split("logrows ")[1].split(";")[0])}


PHASES = {"infer": infer, "verify_infer": verify_infer, "prepare": prepare, "setup": setup, "prove": prove, "verify": verify,
          "fold_setup": fold_setup, "prove_all": prove_all, "fold": fold, "verify_folded": verify_folded,
          "verify_bundle": verify_bundle, "verify_fresh": verify_fresh}


def main(argv: list[str]) -> None:
    phase, spec = argv[0], json.loads(argv[1])
    out = PHASES[phase](spec)
    out["peak_rss_mb"] = _peak_rss_mb()
    sys.stdout.write("BENCH_RESULT " + json.dumps(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
