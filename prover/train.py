"""Private training in fixed point, reproduced exactly by the circuit.

The run's weights *are* the circuit's outputs: step t is ezkl's witness for
(state_t, batch, salt), and state_{t+1} is that witness's output field elements, fed to
step t+1 unchanged. So the commitments chain bit for bit, and proving later only has to
replay stored witnesses. A float torch run of the same schedule gives the comparison.
"""
from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import ezkl
import numpy as np
import torch
from safetensors.torch import save_file

from zkpot.circuits import derive, pipeline
from zkpot.models import onnx_graph, zoo
from zkpot.models.losses import LOSSES
from zkpot.models.step import Layout, Optimizer, flatten, frozen_of, layout_of, make_step, select, unflatten
from zkpot.prover import sizing
from zkpot.prover.commit import (
    batch_felts,
    batch_vector,
    commitment,
    load_or_create_master_key,
    partition,
    private_seed,
    salt_values,
    salt_words,
    to_felts,
)
from zkpot.prover.config import RunConfig
from zkpot.prover.dataset import load_dataset
from zkpot.prover.owner import load_handoffs
from zkpot.prover.run import RunDir
from zkpot.spec import protocol as P
from zkpot.spec.artifacts import atomic_path, read_json, write_json
from zkpot.spec.layout import batch_at, noise_at
from zkpot.spec.schedule import schedule
from zkpot.spec.weights import frozen_digest, merge_adapters


class TrainError(RuntimeError):
    """Training cannot go on; the message says why and what to change."""


def build_model(cfg: RunConfig, in_features: int, out_features: int) -> torch.nn.Module:
    module = zoo.build(cfg.model_spec(in_features, out_features), seed=cfg.seed)
    if cfg.base:
        zoo.load_base(module, cfg.base)
    return module.float()


def optimizer(cfg: RunConfig) -> Optimizer:
    return Optimizer(lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def frozen_claims(module: torch.nn.Module, layout: Layout) -> dict:
    """run.frozen: the parameters outside the layout, named, and their values by sha256."""
    frozen = frozen_of(module, layout)
    return {"names": list(frozen), "sha256": frozen_digest({n: t.numpy() for n, t in frozen.items()})}


def base_module(run: RunDir, cfg: RunConfig, layout: Layout) -> torch.nn.Module:
    """The model holding the run's published base weights (frozen ones included)."""
    from safetensors.torch import load_file

    register_graph(run, cfg)
    module = build_model(cfg, layout.features, layout.label_width)
    module.load_state_dict(load_file(str(run.base_model)), strict=True)
    return module


def register_graph(run: RunDir, cfg: RunConfig) -> None:
    """An ONNX model's graph, from the run's bundle, in this machine's cache (where zoo.build finds it)."""
    if cfg.graph is not None and onnx_graph.register(run.public / P.BASE_GRAPH) != cfg.graph:
        raise TrainError(f"{run.public / P.BASE_GRAPH} is not the graph the run's config names (sha256 {cfg.graph[:16]}…)")


def initial_state(layout: Layout, module: torch.nn.Module) -> torch.Tensor:
    w = flatten(module, layout)
    return torch.cat([w, torch.zeros_like(w)]) if layout.momentum else w


def float_run(step, state0, X, Y, parts, order, salt_len=P.SALT_WORDS, floats=lambda t: []):
    """The same schedule in float32 torch: the reference the fixed-point run is compared with. `floats(t)`:
    step t's other inputs (a DP step's noise and challenge)."""
    state, trace = torch.cat([state0, torch.zeros(salt_len)]), []
    for t, (_, b) in enumerate(order):
        batch = torch.tensor(batch_vector(X, Y, parts[b], [0.0] * salt_len), dtype=torch.float32)
        trace.append((state, batch))
        state = step(state, batch, *floats(t), torch.zeros(salt_len)).detach()
    return state, trace


def evaluate(module, layout: Layout, params: torch.Tensor, X: np.ndarray, Y: np.ndarray,
             loss: str) -> tuple[float, float]:
    """Flat parameters on the training rows, from one forward pass: accuracy (bce, ce) or mean squared
    error (mse), and the run's own loss (what its SGD descends)."""
    with torch.no_grad():
        out = torch.func.functional_call(module, unflatten(layout, params), (torch.tensor(X),))
        y = torch.tensor(Y)
        mean_loss = float(LOSSES[loss](out, y))
    if loss == "bce":
        return float(((out > 0).float() == y).float().mean()), mean_loss
    if loss == "ce":
        return float((out.argmax(-1) == y.argmax(-1)).float().mean()), mean_loss
    return float(((out - y) ** 2).mean()), mean_loss


def prepare(run: RunDir, cfg: RunConfig, progress=print, memory_gb: float | None = None) -> None:
    """Data, private partition, and the circuit, which is a function of the public claims alone.
    Steps per proof `sizing.AUTO`: the largest that a prover with `memory_gb` (default: 80% of
    this machine's RAM) proves."""
    cfg.validate()
    run.private.mkdir(mode=0o700, parents=True, exist_ok=True)
    master = load_or_create_master_key(run.master_key)
    said = []
    if cfg.owners:  # several owners' committed batches (prover/owner.py), checked before any work
        owned = load_handoffs([Path(p) for p in cfg.owners], cfg)
        X, Y, out, parts = owned.X, owned.Y, owned.label_width, owned.parts
    else:
        X, Y, out, scaling = load_dataset(cfg, private_seed(master, "rows"), progress=said.append)
        if not cfg.backbone:  # (raw rows of this source map to the model's features: `zkpot infer --raw`)
            write_json(run.scaling, scaling)
        parts = partition(len(X), cfg.batch_size, private_seed(master, "partition"))
        if len(X) % cfg.batch_size:
            said.append(f"{len(X) % cfg.batch_size} of the {len(X)} rows fill no batch of {cfg.batch_size}: left out "
                        "of training (which ones is private)")
    module = build_model(cfg, X.shape[1], out)
    for message in said:  # (what the data needed, said once the model is known to build: a bad option stays one line)
        progress(message)
    layout = layout_of(module, cfg.batch_size, X.shape[1], Y.shape[1], cfg.momentum > 0, select(module, cfg.train))
    sized = None
    if cfg.steps_per_proof == sizing.AUTO:
        sized = tempfile.TemporaryDirectory(prefix="zkpot-sizing-")
        cfg = _sized(cfg, module, layout, len(parts), Path(sized.name), memory_gb, progress)
    if (len(parts) * cfg.epochs) % cfg.steps_per_proof:
        raise ValueError(f"steps per proof ({cfg.steps_per_proof}) must divide the run's "
                         f"{len(parts) * cfg.epochs} steps ({cfg.epochs} epochs x {len(parts)} batches)")
    check_bound(cfg, "the base model", flatten(module, layout))

    run.public.mkdir(parents=True, exist_ok=True)
    if cfg.graph is not None:  # the model's forward graph and base weights, public: the verifier traces it
        with atomic_path(run.public / P.BASE_GRAPH) as tmp:
            tmp.write_bytes(onnx_graph.graph_bytes(cfg.graph))
    if cfg.backbone:  # the graph the features came from, published with the bundle (run.backbone names it)
        progress(f"the backbone {Path(cfg.backbone).name} runs outside the circuit: its features are the committed "
                 "data, and a verifier reports them as NOT PROVED (PROOFS VERIFY, CLAIMS NOT BOUND at best)")
        with atomic_path(run.public / P.BACKBONE) as tmp:
            shutil.copyfile(cfg.backbone, tmp)
        cfg = replace(cfg, backbone=str((run.public / P.BACKBONE).resolve()))
    np.savez(run.data, X=X, Y=Y)
    write_json(run.partition, {"batches": parts, "layout": layout.to_dict()})
    if cfg.owners:  # the owners' own batch vectors (their salts), and their public signed statements
        with atomic_path(run.owner_batches, mode=0o600) as tmp:
            tmp.write_text(json.dumps(owned.batches))
        write_json(run.owners, owned.owners)
    with atomic_path(run.base_model) as tmp:
        save_file({k: v.detach().contiguous() for k, v in module.named_parameters()}, str(tmp))

    if sized is not None:  # the chosen size's step graph and settings are already derived
        with sized:
            chosen = Path(sized.name) / str(cfg.steps_per_proof)
            for src, dst in ((chosen / "step.onnx", run.onnx), (chosen / "settings.json", run.settings)):
                with atomic_path(dst) as tmp:
                    shutil.copyfile(src, tmp)
    else:
        progress(f"exporting {cfg.steps_per_proof} SGD step(s) to ONNX (make_fx over torch.func.grad), "
                 "settings from the claims (public samples)")
        _derive_into(cfg, module, layout, len(parts), run.onnx, run.settings)
    progress("ezkl: compile")
    with _ezkl_compiling(cfg.model):
        pipeline.compile_circuit(run.onnx, run.settings, run.compiled)

    progress("committing to the batches")
    felts_of = batch_source(run, cfg, X, Y, parts, master)
    commitments = [commitment(felts_of(b)) for b in range(len(parts))]
    write_json(run.dataset, {"batch_commitments": commitments, "root": commitment(commitments)})
    if cfg.dp:  # every step's noise committed now, before any beacon round is chosen
        from zkpot.prover import dp

        root = dp.noise_root(master, len(parts) * cfg.epochs, layout.n_params, cfg.scale)
        write_json(run.noise_root, dp.noise_root_doc(root, len(parts) * cfg.epochs))
        progress(f"DP-SGD: clip {cfg.dp_clip}, noise multiplier {cfg.dp_noise}; the noise of all "
                 f"{len(parts) * cfg.epochs} steps committed (root {root.hex()[:16]}…, {run.noise_root})")
    cfg.save(run.config)  # last: config.json marks a finished prepare; a killed one is redone from scratch


def record_beacon(run: RunDir, chain: dict, round_: dict, attestations: list[dict]) -> None:
    """A DP run's beacon (drand chain info, the round its challenges come from) and its witnesses' attestations
    that the noise was committed before it, checked as a verifier will (signatures included) before any step:
    RUN/beacon.json, the manifest's beacon section."""
    from zkpot.spec import attestation, beacon
    from zkpot.spec.errors import Rejected

    root = read_json(run.noise_root)["noise_root"]
    recorded = {"chain": chain, "round": round_, "attestations": attestations}
    if run.beacon.exists():
        if read_json(run.beacon) != recorded:
            raise TrainError(f"{run.beacon}: this run's beacon round is recorded already (its steps may have used it): "
                             "another round or attestation cannot replace it")
        return
    try:
        chain_ = beacon.check_chain_info(chain)
        got = beacon.check_round(chain_, round_)
        for i, doc in enumerate(attestations):
            attestation.check_attestation(doc, f"attestation {i}", "order", root, chain_.hash, got.round)
    except Rejected as e:
        raise TrainError(f"beacon: {e.args[0]}") from None
    write_json(run.beacon, recorded)


def beacon_round(run: RunDir):
    """The run's beacon round, checked again (as every read is)."""
    from zkpot.spec import beacon

    if not run.beacon.exists():
        raise TrainError(f"{run.root}: a DP-SGD run's steps wait for their beacon round: give --beacon-chain and "
                         f"--beacon-round (a drand round after the one your witnesses saw when attesting "
                         f"{run.noise_root.name}), with their --attestation")
    docs = read_json(run.beacon)
    return beacon.check_round(beacon.check_chain_info(docs["chain"]), docs["round"])


def _derive_into(cfg: RunConfig, module, layout: Layout, num_batches: int, onnx: Path, settings: Path) -> None:
    """step.onnx and settings.json of cfg's circuit: the public claims' (samples within the bounds)."""
    claims = derive.circuit_claims(cfg.run_claims(layout, num_batches, frozen_claims(module, layout)))
    with _user_model(cfg.model):
        derive.trace(claims, module, onnx)
    with _ezkl_compiling(cfg.model):
        derive.settings_for(claims, onnx, settings)


def _sized(cfg: RunConfig, module, layout: Layout, num_batches: int, work: Path, memory_gb, progress) -> RunConfig:
    """cfg with the steps per proof sizing.choose picks, each candidate derived into work/<S>/."""
    budget = sizing.default_budget_gb() if memory_gb is None else memory_gb

    def derive_at(S: int) -> tuple[int, int]:
        d = work / str(S)
        if not (d / "settings.json").exists():
            d.mkdir(parents=True, exist_ok=True)
            _derive_into(replace(cfg, steps_per_proof=S), module, layout, num_batches, d / "step.onnx", d / "settings.json")
        s = read_json(d / "settings.json")
        return int(s["num_rows"]), int(s["run_args"]["logrows"])

    progress(f"sizing chunks to a {budget:.1f} GB proving budget (logrows <= {sizing.max_logrows(budget)})")
    S, k = sizing.choose(num_batches * cfg.epochs, derive_at, budget, progress)
    progress(f"steps per proof: {S} (logrows {k}, ~{sizing.prove_gb(k):.1f} GB to prove), "
             f"{num_batches * cfg.epochs // S} chunk proof(s)")
    return replace(cfg, steps_per_proof=S)


def check_bound(cfg: RunConfig, what: str, state: torch.Tensor, clipped: bool = False) -> None:
    """A state outside the declared weight bound is refused. `clipped`: a state a proved step returned, which
    the step clips to the bound (models/step.py), so reaching it (to within a quantum: the clip's constant is
    the bound in fixed point) means the update was cut: refused too, as the run would no longer be the SGD
    it claims."""
    worst = float(state.abs().max()) if state.numel() else 0.0
    if not (worst < cfg.weight_bound - 2.0 ** -cfg.scale if clipped else worst <= cfg.weight_bound):
        where = "outside" if worst > cfg.weight_bound else "at (every proved step clips there)"
        raise TrainError(f"{what} has a weight of magnitude {worst:.4g}, {where} the declared bound "
                         f"--weight-bound {cfg.weight_bound}: declare a larger bound or lower the learning rate")


def _root_cause(e: BaseException) -> str:
    """The innermost cause's first line: torch's exporter wraps the useful message in two layers."""
    while e.__cause__ is not None or (e.__context__ is not None and not e.__suppress_context__):
        e = e.__cause__ or e.__context__
    text = str(e).strip()
    return f"{e.__class__.__name__}: {text.splitlines()[0] if text else ''}"[:300]


@contextlib.contextmanager
def _user_model(name: str):
    """Tracing and exporting run the model's own code: its failures are a bad model, said in one line."""
    try:
        yield
    except (zoo.ModelError, TrainError):
        raise
    except Exception as e:
        raise zoo.ModelError(f"model {name}: its training step cannot be traced and exported to ONNX "
                             f"({_root_cause(e)})") from None


@contextlib.contextmanager
def _ezkl_compiling(name: str):
    """ezkl logs why it cannot compile a graph ("unsupported operation in graph") and then raises a
    generic error: keep the log line out of the terminal and put it into the one error line."""
    logged: list[str] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = lambda record: logged.append(record.getMessage())
    log = logging.getLogger("ezkl")
    log.addHandler(handler)
    propagate, log.propagate = log.propagate, False
    try:
        yield
    except pipeline.CircuitError as e:
        if not logged:
            raise
        raise zoo.ModelError(f"model {name}: ezkl cannot compile its training step "
                             f"({'; '.join(dict.fromkeys(logged))}): {e}") from None
    finally:
        log.removeHandler(handler)
        log.propagate = propagate


def batch_source(run: RunDir, cfg: RunConfig, X, Y, parts, master: bytes):
    """b -> batch b's field elements: the owners' own vectors (their salts) in a run on owners' data,
    else made here from the rows and this run's master key."""
    if cfg.owners:
        stored = read_json(run.owner_batches, max_bytes=1 << 34)
        return lambda b: stored[b]
    return lambda b: batch_felts(X, Y, parts, b, master, cfg.scale)


def base_state_felts(run: RunDir, cfg: RunConfig, layout: Layout, master: bytes) -> tuple[list[str], list[int]]:
    """The initial state as field elements, and its (public) salt words."""
    from safetensors.torch import load_file

    base = load_file(str(run.base_model))
    w = torch.cat([base[n].reshape(-1).float() for n in layout.names]).tolist()
    if layout.momentum:
        w += [0.0] * len(w)
    salt = salt_words(master, "state", 0)
    return to_felts(w + salt_values(salt, cfg.scale), cfg.scale), salt


def _check_lookups(t: int, steps: range, witness: dict, settings: dict, cfg: RunConfig) -> None:
    if why := pipeline.lookup_overflow(witness, settings):
        raise TrainError(f"chunk {t} (steps {steps.start}-{steps.stop - 1}): {why} (--feature-bound {cfg.feature_bound}, "
                         f"--weight-bound {cfg.weight_bound}): declare larger bounds or lower the learning rate")


def fixed_point_run(run: RunDir, on_step=lambda t, n: None) -> dict:
    """Every chunk of steps as an ezkl witness; resumes after the last finished chunk."""
    cfg = RunConfig.load(run.config)
    d = np.load(run.data)
    X, Y = d["X"], d["Y"]
    part = read_json(run.partition)
    parts, layout = part["batches"], Layout.from_dict(part["layout"])
    settings = read_json(run.settings)
    committed = read_json(run.dataset)["batch_commitments"]
    master = load_or_create_master_key(run.master_key)
    order = schedule(len(parts), cfg.epochs, cfg.schedule_seed)

    S = cfg.steps_per_proof
    chunks = [order[c * S : (c + 1) * S] for c in range(len(order) // S)]
    felts_of = batch_source(run, cfg, X, Y, parts, master)
    extra = dp_inputs(run, cfg, layout, master, len(order))
    state, _ = base_state_felts(run, cfg, layout, master)
    for c, steps in enumerate(chunks):
        if run.witness(c).exists():  # checked again: a kill can land between its rename and its checks
            w = read_json(run.witness(c), max_bytes=1 << 30)
        else:
            nsalt = to_felts(salt_values(salt_words(master, "state", c + 1), cfg.scale), cfg.scale)
            per_step = [[felts_of(b), *extra.at(c * S + i)] for i, (_, b) in enumerate(steps)]
            pipeline.write_input(run.chunk_input(c), state, *[x for inputs in per_step for x in inputs], nsalt)
            w = pipeline.gen_witness(run.chunk_input(c), run.compiled, run.witness(c))
        try:
            _check_lookups(c, range(c * S, (c + 1) * S), w, settings, cfg)
            if w["inputs"][0] != state:
                raise TrainError(f"chunk {c}: stored witness does not start from the previous chunk's state")
            hashes = w["processed_inputs"]["poseidon_hash"]
            for i, (_, b) in enumerate(steps):
                if hashes[batch_at(i, cfg.dp)] != committed[b]:
                    raise TrainError(f"chunk {c}: batch {b} does not hash to its commitment")
                if cfg.dp and hashes[noise_at(i)] != extra.commitments[c * S + i]:
                    raise TrainError(f"chunk {c}: step {c * S + i}'s noise does not hash to its commitment")
        except TrainError:
            run.witness(c).unlink()  # never leave a witness a resumed run would trust
            raise
        state = w["outputs"][0]
        values = torch.tensor([ezkl.felt_to_float(f, cfg.scale) for f in state[:-P.SALT_WORDS]])
        try:
            check_bound(cfg, f"the state after step {(c + 1) * S - 1} (chunk {c})", values, clipped=True)
        except TrainError:
            run.witness(c).unlink()
            raise
        on_step((c + 1) * S, len(order))
    return finish(run, cfg, layout, state, X, Y, parts, order, extra)


@dataclass(frozen=True)
class DPInputs:
    """Every step's noise commitment in step order, and `at(t)`: step t's DP inputs (noise, challenge) as field
    elements. Empty for plain SGD."""
    commitments: list = field(default_factory=list)
    at: Callable[[int], tuple] = lambda t: ()


def dp_inputs(run: RunDir, cfg: RunConfig, layout: Layout, master: bytes, steps: int) -> DPInputs:
    """The run's DP inputs, its noise commitments checked against the root the run committed to."""
    if not cfg.dp:
        return DPInputs()
    from zkpot.prover import dp
    from zkpot.spec.beacon import commitment_root

    round_ = beacon_round(run)
    commitments = dp.noise_commitments(master, steps, layout.n_params, cfg.scale)
    root = commitment_root(commitments)
    if root.hex() != read_json(run.noise_root)["noise_root"]:
        raise TrainError(f"{run.noise_root}: not the root of this run's noise commitments (a file of another run?)")

    def at(t: int) -> tuple[list[str], list[str]]:
        return (dp.noise_felts(master, t, layout.n_params, cfg.scale),
                dp.challenge_felts(round_, root, t, layout.n_params, cfg.scale))

    return DPInputs(commitments, at)


def finish(run, cfg, layout, state, X, Y, parts, order, extra: DPInputs = DPInputs()) -> dict:
    """Write the trained model (private) and compare it with the float run of the same schedule."""
    P = layout.n_params
    fixed = torch.tensor([ezkl.felt_to_float(f, cfg.scale) for f in state[:P]], dtype=torch.float32)
    module = base_module(run, cfg, layout)
    if cfg.dp:  # the same noise in float: each step's v and r as values on the grid
        from zkpot.models.dp import DP, make_dp_step
        from zkpot.prover.dp import as_values

        step = make_dp_step(module, cfg.loss, layout, optimizer(cfg), DP(cfg.dp_clip, cfg.dp_noise), cfg.scale)
        floats = lambda t: [torch.tensor(as_values(f, cfg.scale)) for f in extra.at(t)]  # noqa: E731
    else:
        step, floats = make_step(module, cfg.loss, layout, optimizer(cfg)), lambda t: []
    ref, _ = float_run(step, initial_state(layout, module), X, Y, parts, order, floats=floats)
    ref = ref[:P]
    with atomic_path(run.final_model, mode=0o600) as tmp:
        trained = unflatten(layout, fixed)  # the released model: the trained parameters and the frozen ones
        save_file({k: v.contiguous() for k, v in {**frozen_of(module, layout), **trained}.items()}, str(tmp))
    adapters = cfg.model_spec(layout.features, layout.label_width).get("adapters")
    if adapters:  # the release as one plain model: each adapter merged into its layer
        from safetensors.numpy import save_file as save_numpy

        full = {k: v.numpy() for k, v in {**frozen_of(module, layout), **trained}.items()}
        with atomic_path(run.final_merged, mode=0o600) as tmp:
            save_numpy(merge_adapters(full, adapters["layers"]), str(tmp))
    with atomic_path(run.float_model, mode=0o600) as tmp:
        save_file({k: v.contiguous() for k, v in {**frozen_of(module, layout), **unflatten(layout, ref)}.items()},
                  str(tmp))
    write_json(run.final_opening, {"state": state, "note": "field elements of the final state, salt last: opens the final commitment"})
    metric = "accuracy" if cfg.loss in ("bce", "ce") else "mse"
    report = {"steps": len(order), "max_abs_weight_diff": float((fixed - ref).abs().max()), "metric": metric}
    for name, params in (("fixed_point", fixed), ("float", ref), ("base", flatten(module, layout))):
        report[f"{name}_{metric}"], report[f"{name}_loss"] = evaluate(module, layout, params, X, Y, cfg.loss)
    write_json(run.report, report)
    return report
