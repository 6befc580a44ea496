"""zkpot: prove that a released model came from a claimed private training run.

Phases, each a command reading and writing explicit files (so each can be another party's):

- **train**: fixed-point training that the circuit reproduces exactly (RUN/private, RUN/public/step.onnx)
- **circuit**: the circuit and vk from the claims alone, before any data (pre-registration)
- **setup**: SRS and keys for the chunk circuit (RUN/public/vk.key, RUN/private/pk.key)
- **prove**: one proof per chunk of SGD steps, and the manifest (RUN/public/)
- **fold**: fold the chunk proofs into one run proof (RUN/public/fold/)
- **verify**: check a public bundle with public files alone (the circuit and keys derived from its claims)
- **check-model**: is a model file the run's final state (given its opening) or its base model?
- **infer**: prove the final model's prediction on new inputs, weights hidden (`verify --inference` checks it)
- **inspect**: show what a bundle claims
- **publish** / **sign**: a signed verification-key package (PKG/); **keys**: BLS key pairs
- **srs**: check an SRS file with py_ecc (import), or make an insecure dev one (dev)
- **owner commit**: a data owner commits to and signs its own batches (`train --owner-data`, `verify --owner`)
- **demo**: train, set up, prove and verify on the built-in dataset
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import sys
import warnings
from enum import Enum
from pathlib import Path
from typing import Optional

os.environ.setdefault("RUST_LOG", "error")

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from zkpot.spec.protocol import LOSSES

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False,
                  rich_markup_mode="markdown", context_settings={"help_option_names": ["-h", "--help"]})


def _version(show: bool) -> None:
    if show:
        from importlib.metadata import version

        from zkpot.spec.protocol import FORMAT

        print(f"zkpot {version('zkpot')} (bundle format {FORMAT}; ezkl {version('ezkl')})")
        raise typer.Exit(0)


@app.callback()
def _main(_: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True, help="Print the version and exit.")):
    """zkpot: prove that a released model came from a claimed private training run."""


# choices `--help` lists (spec/protocol.py holds what a bundle may claim)
Loss = Enum("Loss", {name: name for name in LOSSES}, type=str)
Executor = Enum("Executor", {"local": "local", "ray": "ray"}, type=str)
out = Console()
err = Console(stderr=True, soft_wrap=True)  # one message, one line: progress and errors never wrap


def run_lock(run: Path, command: str):
    """One prover per run directory (prover/lock.py): a second one is refused with one line."""
    from zkpot.prover.lock import run_lock as lock

    return lock(run, command)


def _clean_errors(fn):
    """User-facing failures become one line and a non-zero exit, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            err.print("[yellow]interrupted: finished steps are kept; run the same command again to resume[/]")
            raise typer.Exit(130)
        except typer.Exit:
            raise
        except Exception as e:  # (a library's own I/O error type too: safetensors on a full disk)
            code = _exit_code(e)
            if code == 1:  # an input artifact (SRS, package) failed a check: invalid, not bad usage
                err.print(f"[bold red]rejected:[/] {e}", highlight=False, soft_wrap=True)
            elif code == 2:
                err.print(f"[bold red]error:[/] {_disk_full(e)}{escape(_one_line(e))}", highlight=False, soft_wrap=True)
            else:
                if os.environ.get("ZKPOT_DEBUG"):
                    raise
                err.print(f"[bold red]internal error:[/] {escape(_one_line(e))} ({e.__class__.__name__}; "
                          "ZKPOT_DEBUG=1 shows the traceback)", highlight=False, soft_wrap=True)
            raise typer.Exit(code)

    return wrapper


# the failures a user can cause (one line, exit 2), by module: a module never imported raised none of
# them, so `verify` need not import torch (models.*) to catch them
USER_ERRORS = {"zkpot.spec.artifacts": "ArtifactError", "zkpot.circuits.pipeline": "CircuitError",
               "zkpot.models.data": "DataError", "zkpot.models.losses": "LabelError", "zkpot.models.zoo": "ModelError",
               "zkpot.prover.train": "TrainError", "zkpot.models.backbone": "BackboneError"}


def _exit_code(e: BaseException) -> int:
    """The exit code of a failure (_clean_errors, and verify --json's verdict): 1 a rejected artifact,
    2 bad input (a user's error, or a full disk), 3 internal."""
    from zkpot.spec.errors import Rejected

    if isinstance(e, Rejected):
        return 1
    if isinstance(e, (*_loaded(USER_ERRORS), ValueError, OSError)) or _disk_full(e):
        return 2
    return 3


@contextlib.contextmanager
def _json_failure(enabled: bool):
    """With --json, a verification that ends in an error still prints one JSON object on stdout
    ({format, verdict, exit_code, error}); the error line goes to stderr as always."""
    try:
        yield
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as e:
        if enabled:
            from zkpot.spec import protocol as P

            verdict = {code: v for v, code in P.EXIT.items()}[_exit_code(e)]
            print(json.dumps({"format": P.REPORT_FORMAT, "verdict": verdict, "exit_code": P.EXIT[verdict],
                              "error": _one_line(e)}))
        raise


def _loaded(errors: dict) -> tuple:
    return tuple(getattr(sys.modules[module], name) for module, name in errors.items() if module in sys.modules)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text or e.__class__.__name__


def _disk_full(e: BaseException) -> str:
    """A full disk reaches us as OSError(ENOSPC) or inside a library's message ("os error 28")."""
    import errno

    full = getattr(e, "errno", None) == errno.ENOSPC or "No space left on device" in str(e)
    return "disk full: " if full else ""


def _invoke(command, *args, **kwargs):
    """Run another command's body from Python, its unnamed options at their CLI defaults
    (called directly, a typer function would see OptionInfo objects as values)."""
    import inspect

    sig = inspect.signature(command.__wrapped__)
    bound = sig.bind_partial(*args, **kwargs)
    for name, param in sig.parameters.items():
        bound.arguments.setdefault(name, getattr(param.default, "default", param.default))
    return command.__wrapped__(*bound.args, **bound.kwargs)


@contextlib.contextmanager
def _progress():
    p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                 console=err, transient=False)
    with p:
        try:
            yield p
        except BaseException:
            p.live.transient = True  # a failure prints its one line, not a half-drawn bar above it
            raise


@contextlib.contextmanager
def _stages(title: str):
    """A long command's progress: its current stage and the time elapsed on a live line, each stage also
    printed above it as `_say` prints; yields the `progress` callback to hand the library."""
    with _progress() as p:
        task = p.add_task(title, total=None)

        def say(msg: str) -> None:
            p.console.print(f"[dim]·[/] {msg}", highlight=False)
            p.update(task, description=f"{title}: {msg[:50]}")

        yield say


def _say(msg: str) -> None:
    err.print(f"[dim]·[/] {msg}", highlight=False)


# The circuit's claims: options shared by `train` and `circuit` (a run and its pre-registration must agree).
MODEL = typer.Option("logreg", help="logreg, mlp, your pretrained model as an ONNX file (model.onnx: its graph and "
                                    "weights, exported by torch.onnx.export or any exporter; docs/onnx-ops.md), or your "
                                    "own module as path/to/file.py:ClassName (not bound: `zkpot export` makes it ONNX).")
HIDDEN = typer.Option(None, help="--model mlp: hidden layer widths, comma separated (default 8).")
LOSS = typer.Option("bce", help="bce (binary labels), ce (class labels, softmax), mse (real targets).", case_sensitive=False)
LR = typer.Option(0.5, help="SGD learning rate (a constant of the circuit).")
MOMENTUM = typer.Option(0.0, help="SGD momentum (adds a velocity buffer to the committed state).")
WEIGHT_DECAY = typer.Option(0.0, help="L2 weight decay added to the gradient.")
BATCH_SIZE = typer.Option(16, help="Rows per batch (a constant of the circuit).")
STEPS_PER_PROOF = typer.Option("1", help="SGD steps unrolled into one circuit (must divide epochs x batches): fewer, larger proofs; "
                                      "`auto` (train): the most that --memory-gb proves.")
SCALE = typer.Option(8, help="Fixed-point scale: values are integers times 2^-scale.")
FEATURE_BOUND = typer.Option(4.0, help="Declared bound: standardised features are clipped to +-this, by train and again in every proved step.")
TRAIN = typer.Option(None, "--train", help="Which parameters train (comma-separated globs over names, e.g. `'net.2.*'` "
                                           "for an MLP's head); the rest stay frozen at the base model's values. "
                                           "Default: all (`'*'`), or the adapters (`'*.lora_*'`) with --lora.")
LORA = typer.Option(0, "--lora", help="Low-rank adapters of this rank beside Linear layers, or an ONNX model's Gemm and MatMul weights (their weights frozen).")
LORA_LAYERS = typer.Option("", "--lora-layers", help="Layers that get an adapter, comma separated (default: all; an ONNX model's MatMul weight W is layer W_T: docs/fine-tuning.md).")
WEIGHT_BOUND = typer.Option(2.0, help="Declared bound on every weight of every state (public): every proved step clips to it, and train refuses a run that would need to.")


def _tuning(trains: str | None, lora: int, lora_layers: str) -> dict:
    """What trains: --train, and the adapters of --lora (on --lora-layers, default every Linear layer)."""
    layers = [x.strip() for x in lora_layers.split(",") if x.strip()]
    if layers and not lora:
        raise ValueError("--lora-layers needs --lora RANK")
    return {"train": trains if trains is not None else ("*.lora_*" if lora else "*"), "lora_rank": lora,
            "lora_layers": layers}


def _claims_config(model, hidden, loss, lr, momentum, weight_decay, batch_size, steps_per_proof, scale,
                   feature_bound, weight_bound, **rest):
    from zkpot.prover.config import RunConfig, resolve_model
    from zkpot.prover.sizing import AUTO

    if steps_per_proof.strip().lower() == "auto":
        steps = AUTO
    elif steps_per_proof.strip().isdigit() and int(steps_per_proof) >= 1:
        steps = int(steps_per_proof)
    else:
        raise ValueError(f"--steps-per-proof must be a positive integer or auto, got {steps_per_proof!r}")
    if hidden is not None and model != "mlp":
        raise ValueError(f"--hidden sets the widths of --model mlp; model {model!r} has none to set")
    hidden = "8" if hidden is None else hidden
    try:
        widths = [int(h) for h in hidden.split(",") if h.strip()]
    except ValueError:
        raise ValueError(f"--hidden takes layer widths separated by commas (e.g. 16,8), got {hidden!r}") from None
    if any(w < 1 for w in widths):
        raise ValueError(f"--hidden widths must be at least 1, got {hidden!r}")
    return RunConfig(model=resolve_model(model), hidden=widths, loss=getattr(loss, "value", loss), lr=lr,
                     momentum=momentum, weight_decay=weight_decay, batch_size=batch_size,
                     steps_per_proof=steps, scale=scale, feature_bound=feature_bound,
                     weight_bound=weight_bound, **rest)


@app.command()
@_clean_errors
def train(
    ctx: typer.Context,
    run: Path = typer.Argument(..., help="Run directory to create or resume (private/ and public/ go inside)."),
    data: Optional[Path] = typer.Option(None, help="Training data: .csv (header, label column) or .npz (arrays X, y). Default: built-in breast-cancer data."),
    label: Optional[str] = typer.Option(None, help="CSV label column name (default: the last column)."),
    model: str = MODEL,
    hidden: Optional[str] = HIDDEN,
    loss: Loss = LOSS,
    lr: float = LR,
    momentum: float = MOMENTUM,
    weight_decay: float = WEIGHT_DECAY,
    batch_size: int = BATCH_SIZE,
    epochs: int = typer.Option(2, help="Passes over the committed batches."),
    steps_per_proof: str = STEPS_PER_PROOF,
    rows: Optional[int] = typer.Option(None, help="Train on this many rows of the data (default: all)."),
    features: Optional[int] = typer.Option(None, help="Keep only the first N feature columns."),
    base: Optional[Path] = typer.Option(None, help="Base model weights (.safetensors or torch state dict). Default: seeded init."),
    seed: int = typer.Option(0, help="Public seed of the initial weights when there is no --base (nothing else: rows and batches are drawn from private randomness)."),
    schedule_seed: int = typer.Option(0, help="Public seed of the per-epoch batch order."),
    scale: int = SCALE,
    feature_bound: float = FEATURE_BOUND,
    weight_bound: float = WEIGHT_BOUND,
    trains: Optional[str] = TRAIN,
    lora: int = LORA,
    lora_layers: str = LORA_LAYERS,
    backbone: Optional[Path] = typer.Option(None, help="A frozen ONNX graph run on each row before training, outside the "
                                            "circuit: its features are the committed data (reported as not proved)."),
    memory_gb: Optional[float] = typer.Option(None, help="Proving memory budget for --steps-per-proof auto (default: 80% of this machine's RAM)."),
    classes: Optional[int] = typer.Option(None, "--classes", help="ce: the number of classes (labels 0..N-1); default: 1 + the largest label present, so a subset missing the top class gives a smaller model."),
    owner_data: Optional[list[Path]] = typer.Option(None, "--owner-data", help="A data owner's handoff (OWNER_DIR/private/handoff.json from `zkpot owner commit`) instead of --data; repeat for every owner, in the run's batch order."),
    dp_clip: Optional[float] = typer.Option(None, help="DP-SGD: clip each example's gradient to this L2 norm C (proved); needs --dp-noise and a beacon round."),
    dp_noise: Optional[float] = typer.Option(None, help="DP-SGD: noise multiplier SIGMA: Gaussian noise of std SIGMA x C on each step's clipped sum (proved)."),
    dp_delta: Optional[float] = typer.Option(None, help="DP-SGD: the delta at which verifiers derive epsilon (default 1e-5)."),
    beacon_chain: Optional[Path] = typer.Option(None, help="DP-SGD: the drand chain's info (JSON of its GET /info)."),
    beacon_round: Optional[Path] = typer.Option(None, help="DP-SGD: the drand round (JSON of GET /public/N) right after the one your witnesses saw when they attested RUN/noise_root.json: with the noise commitments it gives every step's challenge."),
    attestation: Optional[list[Path]] = typer.Option(None, "--attestation", help="DP-SGD: a witness's attestation (`zkpot dp attest`) that RUN/noise_root.json existed before the round; repeat for each."),
):
    """Train in fixed point, exactly as the circuit computes; compare with a float run."""
    from zkpot.prover import train as tr
    from zkpot.prover.run import RunDir

    rd = RunDir(run)
    beacon = (beacon_chain, beacon_round, attestation or [])   # (evidence for a DP run's challenges, not options)
    given = [p for p in ctx.params if p not in ("run", "memory_gb", "beacon_chain", "beacon_round", "attestation")
             and ctx.get_parameter_source(p).name == "COMMANDLINE"]
    cfg = None
    if given or not rd.config.exists():  # the options, checked before anything is written
        cfg = _claims_config(model, hidden, loss, lr, momentum, weight_decay, batch_size, steps_per_proof, scale,
                             feature_bound, weight_bound, epochs=epochs, data=str(data) if data else None,
                             label=label, features=features, rows=rows, base=str(base) if base else None,
                             seed=seed, schedule_seed=schedule_seed, backbone=str(backbone) if backbone else None,
                             owners=[str(p) for p in owner_data or []], classes=classes,
                             **_tuning(trains, lora, lora_layers), **_dp_options(dp_clip, dp_noise, dp_delta))
        cfg.validate()
    if rd.config.exists():
        _same_options(rd, cfg, given)
        cfg = None
    fresh = not Path(run).exists()
    try:
        with run_lock(run, "train"):
            if cfg is None:
                _say(f"resuming {run} with its saved options")
            else:
                tr.prepare(rd, cfg, progress=_say, memory_gb=memory_gb)
    except Exception:
        if fresh:  # (bad data found while preparing: no half-made run directory is left behind)
            shutil.rmtree(run, ignore_errors=True)
        raise
    with run_lock(run, "train"):
        if not _dp_beacon(rd, *beacon):
            return
        _train_steps(rd)


def _dp_beacon(rd, chain, round_, attestations) -> bool:
    """A DP run's beacon: recorded when given (checked first), and needed before any step. False: the run waits
    for it (what to do next said)."""
    from zkpot.prover import train as tr
    from zkpot.prover.config import RunConfig
    from zkpot.spec.artifacts import read_json

    if (chain is None) != (round_ is None) or (attestations and round_ is None):
        raise ValueError("--beacon-chain and --beacon-round go together (with any --attestation)")
    if not RunConfig.load(rd.config).dp:
        if chain is not None:
            raise ValueError("--beacon-chain, --beacon-round and --attestation are for a DP-SGD run (--dp-clip)")
        return True
    if chain is not None:
        tr.record_beacon(rd, read_json(chain), read_json(round_), [read_json(a) for a in attestations])
        _say(f"beacon round recorded with {len(attestations)} attestation(s)")
    if rd.beacon.exists():
        return True
    out.print(f"DP-SGD: the noise of every step is committed in {rd.noise_root}. Next: have it attested by a witness "
              f"(`zkpot dp attest {rd.noise_root} --key KEY --chain chain.json --latest latest.json --out attest.json`), "
              f"then, with the round right after the witness's latest: `zkpot train {rd.root} --beacon-chain chain.json "
              "--beacon-round round.json --attestation attest.json` (README, docs/dp.md).")
    return False


def _dp_options(clip, noise, delta) -> dict:
    """train's DP-SGD options as RunConfig fields (delta defaults once DP is asked for)."""
    from zkpot.spec.dp import DEFAULT_DELTA

    asked = any(v is not None for v in (clip, noise, delta))
    return {"dp_clip": clip, "dp_noise": noise, "dp_delta": DEFAULT_DELTA if asked and delta is None else delta}


# train's options that set another RunConfig field than their own name
OPTION_FIELDS = {"trains": ("train",), "lora": ("lora_rank", "train"), "owner_data": ("owners",)}


def _same_options(rd, cfg, given: list[str]) -> None:
    """Resuming a run: an option given again must be the one it was made with (never silently ignored)."""
    from dataclasses import asdict

    from zkpot.prover.config import RunConfig
    from zkpot.prover.sizing import AUTO

    saved, new = asdict(RunConfig.load(rd.config)), asdict(cfg) if cfg is not None else {}
    differ = []
    for option in given:
        for f in OPTION_FIELDS.get(option, (option,)):
            if f in saved and saved[f] != new.get(f) and not (f == "steps_per_proof" and new[f] == AUTO):
                differ.append(f"--{option.replace('_', '-')} (was {saved[f]!r}, now {new.get(f)!r})")
                break
    if differ:
        raise ValueError(f"{rd.root} was made with other options: {', '.join(differ)}; resume it with the same options "
                         "(or none), or train into a new directory")


def _train_steps(rd):
    from zkpot.prover import train as tr

    with _progress() as p:
        task = p.add_task("training (fixed-point witnesses)", total=None)
        report = tr.fixed_point_run(rd, on_step=lambda t, n: p.update(task, completed=t, total=n))
    metric = report["metric"]
    t = Table(title="fixed point (the circuit's run) vs float torch, same schedule")
    t.add_column("steps"); t.add_column(f"base {metric}"); t.add_column(f"fixed-point {metric}")
    t.add_column(f"float {metric}"); t.add_column("max |w_fixed - w_float|"); t.add_column("loss: base -> fixed")
    t.add_row(str(report["steps"]), f"{report[f'base_{metric}']:.4f}", f"{report[f'fixed_point_{metric}']:.4f}",
              f"{report[f'float_{metric}']:.4f}", f"{report['max_abs_weight_diff']:.5f}",
              f"{report['base_loss']:.4f} -> {report['fixed_point_loss']:.4f}")
    out.print(t)


@app.command("export")
@_clean_errors
def export_model(
    model: str = typer.Argument(..., help="Your module: path/to/file.py:ClassName (built with in_features, out_features)."),
    out_file: Path = typer.Argument(..., help="The ONNX file to write (then: zkpot train RUN --model OUT_FILE)."),
    features: int = typer.Option(..., help="Values per example (the data's feature columns)."),
    outputs: int = typer.Option(1, help="Model outputs: 1 for bce, classes for ce, targets for mse."),
    shape: Optional[str] = typer.Option(None, help="One example's input shape, comma separated (e.g. 1,8,8 for 8x8 "
                                                   "images; default: FEATURES): a CSV row is reshaped to it."),
    base: Optional[Path] = typer.Option(None, help="Pretrained weights (.safetensors or a torch state dict); default: seeded init."),
    seed: int = typer.Option(0, help="Seed of the initial weights when there is no --base."),
):
    """Turn your own torch module into an ONNX model (architecture and weights in one public file) that a
    verifier can trace: a run of it can then earn VALID, which a `file.py:Class` run cannot."""
    from zkpot.models import zoo

    dims = tuple(int(d) for d in shape.split(",")) if shape else (features,)
    digest = zoo.export_onnx({"name": model, "kwargs": {"in_features": features, "out_features": outputs}}, out_file,
                             dims, base, seed)
    out.print(f"{out_file}: ONNX graph sha256 {digest[:16]}… (train it with `zkpot train RUN --model {out_file}`)",
              highlight=False)


@app.command()
@_clean_errors
def circuit(
    out_dir: Path = typer.Argument(..., help="Directory for claims.json, step.onnx, settings.json, kzg.srs and vk.key."),
    features: int = typer.Option(..., help="Feature columns of the data the run will use."),
    outputs: int = typer.Option(1, help="Model outputs (label width): 1 for bce, classes for ce, targets for mse."),
    model: str = MODEL,
    hidden: Optional[str] = HIDDEN,
    loss: Loss = LOSS,
    lr: float = LR,
    momentum: float = MOMENTUM,
    weight_decay: float = WEIGHT_DECAY,
    batch_size: int = BATCH_SIZE,
    steps_per_proof: str = STEPS_PER_PROOF,
    scale: int = SCALE,
    feature_bound: float = FEATURE_BOUND,
    weight_bound: float = WEIGHT_BOUND,
    trains: Optional[str] = TRAIN,
    lora: int = LORA,
    lora_layers: str = LORA_LAYERS,
    base: Optional[Path] = typer.Option(None, help="Base model weights (frozen parameters are constants of the circuit)."),
    seed: int = typer.Option(0, help="Public seed of the initial weights when there is no --base."),
    srs: Optional[Path] = typer.Option(None, help="KZG SRS file. Default: an INSECURE dev SRS."),
):
    """Pre-register: the circuit and its vk from the claims alone, before any data exists.

    A later `zkpot train` with the same options (and data of this width) produces exactly these
    step.onnx, settings.json and, with the same SRS, vk.key: publish them before training.
    """
    import time

    from zkpot.prover.preregister import preregister

    cfg = _claims_config(model, hidden, loss, lr, momentum, weight_decay, batch_size, steps_per_proof, scale,
                         feature_bound, weight_bound, base=str(base) if base else None, seed=seed,
                         **_tuning(trains, lora, lora_layers))
    start = time.perf_counter()
    ident = preregister(cfg, features, outputs, out_dir, srs, progress=_say)
    from zkpot.spec.artifacts import sha256_file

    out.print(f"{out_dir}: vk.key sha256 {sha256_file(out_dir / 'vk.key')[:16]}…, SRS logrows {ident['logrows']} "
              f"({ident['origin']}), from the claims alone in {time.perf_counter() - start:.1f} s", highlight=False)


@app.command()
@_clean_errors
def setup(
    run: Path = typer.Argument(..., help="Run directory made by `zkpot train`."),
    srs: Optional[Path] = typer.Option(None, help="KZG SRS file (e.g. a public ceremony file). Default: generate an INSECURE dev SRS."),
    fold_fan_in: int = typer.Option(0, help="Plan to fold with this fan-in: the dev SRS is made at the aggregation's logrows (one tau for all proofs)."),
):
    """Make the verification key (public) and proving key (private) for the step circuit."""
    from zkpot.prover.keys import setup as do_setup
    from zkpot.prover.run import RunDir

    with run_lock(run, "setup"), _stages("setup") as say:
        ident = do_setup(RunDir(run), srs, progress=say, fold_fan_in=fold_fan_in)
    style = "green" if ident["origin"] == "ceremony" else "bold red"
    out.print(f"SRS logrows {ident['logrows']}, sha256 {ident['sha256'][:16]}…, origin [{style}]{ident['origin']}[/]")


@app.command()
@_clean_errors
def prove(
    run: Path = typer.Argument(..., help="Run directory after `zkpot train` and `zkpot setup`."),
    fold_: bool = typer.Option(False, "--fold/--no-fold", help="Also fold the chunk proofs into one run proof (needs ~19 GB per proof folded)."),
    fan_in: int = typer.Option(1, help="Proofs folded per aggregation when folding."),
    keep_keys: bool = typer.Option(True, "--keep-keys/--no-keep-keys", help="When folding: keep the aggregation proving keys in the cache (--no-keep-keys deletes each level's once it is folded)."),
    jobs: int = typer.Option(1, "--jobs", min=1, help="Chunks proved in parallel processes (each holds its own proving key in memory); with --executor ray, at most this many Ray provers."),
    executor: Executor = typer.Option("local", "--executor", case_sensitive=False, help="local (this machine) or ray (a Ray cluster, see --address; pip install 'zkpot[ray]')."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address for --executor ray (e.g. ray://head:10001, auto, local); default: auto-detect or start a local instance. With --fold, nodes offering the resource zkpot_fold fold as proofs arrive; 'local' starts an instance that does."),
):
    """Prove every chunk of training steps (resumable) and write the public bundle's manifest."""
    from zkpot.prover.prove import check_fold_plan, prove_all
    from zkpot.prover.run import RunDir

    executor = getattr(executor, "value", executor)
    pipelined = fold_ and executor == "ray"  # fold nodes start on the cluster as their proofs arrive
    rd = RunDir(run)
    if fold_:  # a fold that cannot happen is refused before hours of chunk proofs
        check_fold_plan(rd, fan_in, pipelined, keep_keys)
    with run_lock(run, "prove"):
        with _progress() as p:
            task = p.add_task("proving chunks", total=None)
            folding = p.add_task("folding on the cluster", total=None, visible=pipelined)
            prove_all(rd, on_chunk=lambda c, n, s: p.update(task, completed=c, total=n), jobs=jobs,
                      executor=executor, address=address, fold_fan_in=fan_in if pipelined else 0,
                      on_node=lambda d, i, s: p.update(folding, advance=1, description=f"folded level {d} node {i}"))
        if fold_:  # (records the tree; nodes already folded on the cluster are kept)
            _invoke(fold, rd.public, fan_in=fan_in, keep_keys=keep_keys)
    out.print(f"public bundle: {rd.public} (hand this directory to verifiers; keep {rd.private} to yourself)")


SRS_FILE = typer.Option(None, "--srs", help="The full SRS file the bundle names (a ceremony file, or the prover's dev SRS): needed once per machine to derive keys; remembered by its sha256 (as `zkpot srs import` does). A bundle carries only its 516-byte verifier part.")


@app.command()
@_clean_errors
def fold(
    public: Path = typer.Argument(..., help="A public bundle with chunk proofs (from `zkpot prove`); needs no private file."),
    fan_in: int = typer.Option(1, help="Proofs folded per aggregation: 1 fits 24 GB (logrows 21), 2 needs logrows 22 and ~40 GB with swap."),
    keep_keys: bool = typer.Option(True, "--keep-keys/--no-keep-keys", help="Keep the aggregation proving keys in the cache for the next fold of this circuit; --no-keep-keys deletes each level's once it is folded (disk for one key at a time: 17.7 GB at logrows 22)."),
    srs: Optional[Path] = SRS_FILE,
):
    """Fold a bundle's chunk proofs into one run proof (ezkl aggregation), resumable."""
    from zkpot.prover.fold import fold as do_fold

    with _progress() as p:  # (no total: the bar pulses and the clock runs through each minutes-long phase)
        task = p.add_task("folding", total=None)
        tree = do_fold(public, fan_in, keep_keys=keep_keys, srs=srs,
                       say=lambda msg: p.update(task, description=msg),
                       on_node=lambda lv, i, n, s: p.console.print(f"[dim]·[/] level {lv} node {i}/{n} folded in {s:.0f} s",
                                                                   highlight=False))
    out.print(f"run proof: {public / tree['levels'][-1][0]['proof']} ({len(tree['levels'])} level(s), fan-in {fan_in})")


@app.command()
@_clean_errors
def verify(
    public: Path = typer.Argument(..., help="A public bundle directory (contains manifest.json)."),
    allow_insecure_dev_srs: bool = typer.Option(False, "--allow-insecure-dev-srs", help="Check a bundle made with a dev SRS anyway (its maker could forge proofs)."),
    package: Optional[Path] = typer.Option(None, "--package", help="A published key package (zkpot publish): the bundle must use its circuit, SRS and base model."),
    publisher: Optional[list[str]] = typer.Option(None, "--publisher", help="Public key (hex, or a file from `zkpot keys show`) of a publisher you trust; repeat for every co-signer."),
    trust_bundle_keys: bool = typer.Option(False, "--trust-bundle-keys", help="Skip deriving the vk(s) from the claims and use the bundle's own: faster on a first verification, but the verdict is then at best UNBOUND (exit 5), never VALID."),
    deep: bool = typer.Option(False, "--deep", help="For a folded bundle, also verify every chunk proof (default: the run proof alone)."),
    srs: Optional[Path] = SRS_FILE,
    inference: Optional[Path] = typer.Option(None, "--inference", help="An inference proof (`zkpot infer` OUT): its prediction must be the run's final model's."),
    input_opening: Optional[Path] = typer.Option(None, "--input-opening", help="With --inference of hidden inputs: their opening (OUT/private/input_opening.json), held by the inputs' owner."),
    owner: Optional[list[str]] = typer.Option(None, "--owner", help="Public key (hex, or a file from `zkpot keys show`) of a data owner you expect; repeat for every owner: the run must use exactly their signed data."),
    json_: bool = typer.Option(False, "--json", help="Print the report as one JSON object on stdout (schema: docs/verify-json.md): every check, its result, detail and time, the verdict, versions."),
    beacon: Optional[list[str]] = typer.Option(None, "--beacon", help="DP-SGD: the hash of a drand chain you trust besides drand's mainnet chains (default, quicknet); repeat for each."),
    witness: Optional[list[str]] = typer.Option(None, "--witness", help="DP-SGD: public key (hex, or a file from `zkpot keys show`) of a witness you trust to have attested the noise before the beacon round; repeat for each."),
):
    """Check a bundle with public files only: the circuit and keys are derived from its claims.

    Exit codes: 0 VALID (every claim shown is bound), 1 INVALID, 2 bad input, 3 internal error,
    4 cannot check here (memory or a tool; says nothing of the bundle), 5 proofs verify but some claims
    are not bound (--trust-bundle-keys, or a custom model's description), 6 VALID ON AN INSECURE DEV SRS
    (every claim bound, but the SRS's maker could forge any proof).
    """
    from zkpot.spec.protocol import EXIT
    from zkpot.spec.signature import read_publisher
    from zkpot.verifier.verify import verify_bundle

    with _json_failure(json_), _progress() as p:
        named = _named_publishers(publisher or [], package)
        owners = _named_owners(owner or [])
        task = p.add_task("verifying proofs", total=None)
        if input_opening is not None and inference is None:
            raise ValueError("--input-opening goes with --inference")
        report = verify_bundle(public, allow_insecure_dev_srs, deep=deep, bind=not trust_bundle_keys,
                               package=package, publishers=named, srs=srs, inference=inference,
                               input_opening=input_opening, say=_say, owners=owners, beacons=_chain_hashes(beacon),
                               witnesses=[read_publisher(w, "--witness") for w in witness or []],
                               on_proof=lambda t, n: p.update(task, completed=t, total=n))
    if json_:
        print(json.dumps(report.to_json(), indent=1))
    else:
        _print_report(report)
    raise typer.Exit(EXIT[report.verdict])


def _chain_hashes(given: list[str] | None) -> list[str]:
    """--beacon values: drand chain hashes (64 lowercase hex digits)."""
    from zkpot.spec.beacon import HASH_HEX

    for h in given or []:
        if not HASH_HEX.match(h):
            raise ValueError(f"--beacon takes a drand chain hash (64 lowercase hex digits, its /info's hash), got {h!r}")
    return list(given or [])


@app.command()
@_clean_errors
def infer(
    run: Path = typer.Argument(..., help="A proved run directory (its private final state is the model)."),
    inputs: Path = typer.Argument(..., help="Input rows in the model's feature space (standardised, within the run's "
                                          "feature bound): .csv (a header line is skipped), .npy, or .npz (array X)."),
    out_dir: Path = typer.Option(..., "--out", help="New directory: public/ (inference.json, proof.json) and, with --hide-input, private/input_opening.json."),
    hide_input: bool = typer.Option(False, "--hide-input", help="Publish only a salted commitment to the inputs; their opening goes to OUT/private/ for the inputs' owner."),
    raw: bool = typer.Option(False, "--raw", help="INPUTS are raw rows like the training data's (its feature columns, no label): "
                                                  "standardised and clipped as the training rows were (the run's private scaling)."),
):
    """Prove the run's final model's prediction on INPUTS (one proof for every row), its weights hidden:
    the proof's weight commitment is the run's final commitment. Check it with `zkpot verify BUNDLE --inference OUT`."""
    from zkpot.prover.infer import from_raw, prove_inference, read_inputs
    from zkpot.prover.run import RunDir
    from zkpot.spec.bundle import load_manifest

    rd = RunDir(run)
    if not rd.manifest.is_file():  # (before the lock: it would make the directory)
        raise ValueError(f"{run} is not a proved run (no public/manifest.json): run `zkpot prove` first")
    x = read_inputs(inputs)
    if raw:
        x = from_raw(rd, x)
    with run_lock(run, "infer"), _stages("infer") as say:
        doc = prove_inference(rd, x, out_dir, hidden=hide_input, progress=say)
    _print_prediction(doc["prediction"], f"prediction of {run}'s final model, proved ({out_dir / 'public'})",
                      load_manifest(rd.public)["run"]["loss"])


def _print_prediction(prediction: list[list[float]], title: str, loss: str) -> None:
    """The proved outputs, and what they mean under the run's loss: a label and its probability (bce: the
    sigmoid of the logit; ce: the softmax of the logits, the label its argmax); mse: the values."""
    import numpy as np

    out.print(f"[bold]{escape(title)}[/]", soft_wrap=True)
    z = np.asarray(prediction, dtype=np.float64)
    t = Table()
    t.add_column("row")
    for j in range(z.shape[1]):
        t.add_column(("logit" if loss != "mse" else "output") + (f" {j}" if z.shape[1] > 1 else ""))
    if loss == "bce":
        p = 1 / (1 + np.exp(-z[:, 0]))
        extra = [(f"{int(q > 0.5)}", f"{q:.4f}") for q in p]
    elif loss == "ce":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        extra = [(f"{int(r.argmax())}", f"{r.max():.4f}") for r in p]
    else:
        extra = [() for _ in z]
    if loss in ("bce", "ce"):
        t.add_column("label")
        t.add_column("P(label 1)" if loss == "bce" else "P(label)")
    for i, (row, more) in enumerate(zip(z, extra)):
        t.add_row(str(i), *(f"{v:.4f}" for v in row), *more)
    out.print(t)


@app.command("check-model")
@_clean_errors
def check_model(
    public: Path = typer.Argument(..., help="The run's public bundle."),
    model: Path = typer.Argument(..., help="A model file (.safetensors) to check against the run."),
    opening: Optional[Path] = typer.Option(None, "--opening", help="The final opening the model's owner handed over (RUN/private/final_opening.json). Without it, MODEL is checked as the run's base model."),
    allow_insecure_dev_srs: bool = typer.Option(False, "--allow-insecure-dev-srs", help="Check a bundle made with a dev SRS anyway (its maker could forge proofs)."),
    srs: Optional[Path] = SRS_FILE,
):
    """Is MODEL the state the run proved? Verifies the bundle, then the model against its commitment.

    With --opening: the run's final model (its weights and the opening hash to the final commitment);
    without: the run's base model (its weights and the published salt hash to the base commitment).
    Exit codes as for `zkpot verify`.
    """
    from zkpot.spec.protocol import EXIT
    from zkpot.verifier.verify import verify_bundle

    with _progress() as p:
        task = p.add_task("verifying proofs", total=None)
        report = verify_bundle(public, allow_insecure_dev_srs, model=model, opening=opening, srs=srs, say=_say,
                               on_proof=lambda t, n: p.update(task, completed=t, total=n))
    _print_report(report)
    raise typer.Exit(EXIT[report.verdict])


def _print_report(report) -> None:
    from zkpot.spec import protocol as P

    t = Table(title="zkpot verify", show_lines=False)
    t.add_column("check"); t.add_column("result"); t.add_column("detail")
    for name, detail in report.passed:
        t.add_row(name, "[green]pass[/]", escape(detail))
    for f in report.failures:
        t.add_row(f.check, "[bold red]FAIL[/]", escape((f"chunk {f.chunk}: " if f.chunk is not None else "") + str(f.args[0])))
    for u in report.unbound:
        t.add_row("unbound", "[yellow]not derived[/]", escape(u))
    out.print(t)
    if report.prediction is not None and not report.failures:
        _print_prediction(report.prediction, "the prediction the inference proof proves", report.manifest["run"]["loss"])
    if report.privacy is not None and not report.failures:
        pv = report.privacy
        out.print(f"[bold]differential privacy[/] (derived from the claims): epsilon [bold]{pv['epsilon']:.4g}[/] at delta "
                  f"{pv['delta']:g}, clip C {pv['clip']}, noise multiplier SIGMA {pv['noise']}, {pv['epochs']} epoch(s); "
                  f"{escape(pv['accountant'])}")
    for w in report.warnings:
        out.print(f"[bold red on yellow] WARNING [/] [bold]{w}[/]")
    verdict = report.verdict
    if verdict == P.VALID:
        out.print(f"[bold green]VALID[/] in {report.seconds:.2f} s: every step of the claimed run is proved, "
                  "and every claim above is derived, not read.")
    elif verdict == P.DEV_SRS_VALID:
        out.print(f"[bold yellow]{verdict}[/] in {report.seconds:.2f} s (exit {P.EXIT[verdict]}): every step is proved "
                  "and every claim derived, but on a dev SRS whose maker could forge any proof: for testing only.")
    elif verdict == P.UNBOUND:
        out.print(f"[bold yellow]{verdict}[/]: {len(report.unbound)} claim(s) above are the prover's word, not derived.")
    elif verdict == P.CANNOT_CHECK:
        out.print(f"[bold yellow]{verdict}[/]: {escape(report.cannot_check or 'no manifest')} (this says nothing about the bundle)")
    else:
        out.print(f"[bold red]INVALID[/]: {len(report.failures)} check(s) failed")


@app.command()
@_clean_errors
def inspect(public: Path = typer.Argument(..., help="A public bundle directory.")):
    """Show what a bundle claims (run, commitments, SRS), without verifying it."""
    from zkpot.spec.bundle import load_manifest

    m = load_manifest(public)
    r = m["run"]
    t = Table(title=f"bundle {public}", show_header=False)
    t.add_row("model", f"{r['model']['name']} {r['model'].get('kwargs', {})}")
    fr = r.get("frozen") or {}
    t.add_row("trains", ", ".join(r["layout"]["names"]) + (f" (frozen: {', '.join(fr['names'])}, sha256 "
                                                          f"{fr['sha256'][:16]}…)" if fr.get("names") else " (all)"))
    t.add_row("loss / optimizer", f"{r['loss']} / {r['optimizer']}")
    t.add_row("schedule", f"{r['epochs']} epochs x {r['num_batches']} batches of {r['batch_size']}, seed {r['schedule_seed']}")
    t.add_row("declared bounds", f"|x| <= {r['bounds']['features']}, |w| <= {r['bounds']['weights']}, scale {r['scale']}")
    t.add_row("proofs", f"{len(m['chunks'])} of {r['steps_per_proof']} step(s) each")
    t.add_row("base commitment", m["base"]["commitment"])
    t.add_row("final commitment", m["final"]["commitment"])
    t.add_row("dataset root", m["dataset"]["root"])
    for o in m["dataset"].get("owners") or []:  # (their signatures: `zkpot verify --owner`)
        st = o["statement"]
        t.add_row("data owner", f"{st['name']}: {st['num_batches']} batch(es), key {o['public_key'][:16]}… (not verified here)")
    if "dp" in r:  # (epsilon is derived by `zkpot verify`, never claimed)
        b = m["beacon"]
        t.add_row("DP-SGD", f"clip C {r['dp']['clip']}, noise multiplier SIGMA {r['dp']['noise']}, delta {r['dp']['delta']}; "
                            f"challenges from drand round {b['round'].get('round')} of chain {str(b['chain'].get('hash'))[:16]}…, "
                            f"{len(b['attestations'])} attestation(s) (not verified here)")
    if "fold" in m:
        top = m["fold"]["levels"][-1][0]
        t.add_row("run proof", f"{top['proof']} ({len(m['fold']['levels'])} level(s), fan-in {m['fold']['fan_in']}, logrows {top['logrows']})")
    t.add_row("SRS", f"logrows {m['srs'].get('logrows')}, {m['srs'].get('origin')}, sha256 {str(m['srs'].get('sha256'))[:16]}…")
    t.add_row("versions", ", ".join(f"{k} {v}" for k, v in m["versions"].items()))
    out.print(t)


@app.command()
@_clean_errors
def demo(
    run: Path = typer.Argument(Path("runs/demo"), help="Where to put the demo run."),
    rows: int = typer.Option(64, help="Rows of the breast-cancer data to train on (64 = 4 batches of 16)."),
    epochs: int = typer.Option(2, help="Epochs."),
    finetune: bool = typer.Option(False, "--finetune", help="The fine-tuning example instead: a body pretrained on "
                                  "public digits, frozen; a new head fine-tuned on private rows (even vs odd)."),
):
    """Train, set up, prove and verify a logistic regression on the built-in breast-cancer data
    (--finetune: the head of a pretrained MLP on digits, its body frozen)."""
    from zkpot.prover import train as tr
    from zkpot.prover.config import RunConfig
    from zkpot.prover.keys import setup as do_setup
    from zkpot.prover.run import RunDir

    rd = RunDir(run)
    with run_lock(run, "demo"):
        if not rd.config.exists():
            if finetune:
                from zkpot.prover.finetune_example import prepare_inputs

                cfg = prepare_inputs(rd, say=_say)
            else:
                cfg = RunConfig(rows=rows, epochs=epochs)
            tr.prepare(rd, cfg, progress=_say)
        _train_steps(rd)
        do_setup(rd, None, progress=_say)
        _invoke(prove, run)
    if finetune:
        from zkpot.prover.finetune_example import held_out_accuracy

        acc = held_out_accuracy(rd, RunConfig.load(rd.config))
        t = Table(title=f"even vs odd digits, accuracy on {acc.pop('rows')} held-out rows (neither pretraining nor "
                        "fine-tuning saw them)", caption="the trainer's own evaluation on its own machine: NOT PROVED "
                        "(the proofs cover the training; a claimed accuracy is the trainer's word)")
        for name in acc:
            t.add_column(name)
        t.add_row(*(f"{v:.4f}" for v in acc.values()))
        out.print(t)
    from zkpot.spec import protocol as P

    try:
        _invoke(verify, rd.public, allow_insecure_dev_srs=True)  # the demo's SRS is a dev SRS
    except typer.Exit as e:  # ... so its success is that verdict (exit 6 from `verify`), and the demo's exit 0
        if e.exit_code != P.EXIT[P.DEV_SRS_VALID]:
            raise


def _named_publishers(args: list[str], package: Optional[Path]) -> list[bytes]:
    """--publisher values as public keys, checked before any verification work."""
    from zkpot.spec.artifacts import ArtifactError

    if args and package is None:
        raise ArtifactError("--publisher needs --package PKG (the signatures are in the package)")
    if not args:
        return []
    from zkpot.spec.signature import read_publisher  # py_ecc's BLS module takes ~0.5 s to import

    return [read_publisher(a) for a in args]


@app.command()
@_clean_errors
def publish(
    run: Path = typer.Argument(..., help="A proved run directory (or its public/ bundle)."),
    out_dir: Path = typer.Option(..., "--out", help="The package directory to create."),
    sign: Optional[list[Path]] = typer.Option(None, "--sign", help="Secret key file (zkpot keys new) to sign with; repeat for co-signers: one aggregate signature."),
    evm: bool = typer.Option(False, "--evm", help="Also render the Solidity verifier: of the run proof for a folded run (one level), else of EVM-transcript proofs of the step circuit."),
):
    """Write a verification-key package: circuit, vk, SRS identity, base commitment; signed if --sign."""
    from zkpot.prover.publish import publish as do_publish

    meta = do_publish(run, out_dir, sign or [], evm, say=_say)
    t = Table(title=f"package {out_dir}", show_header=False)
    t.add_row("files", ", ".join(meta["files"]))
    style = "green" if meta["srs"]["origin"] == "ceremony" else "bold red"
    t.add_row("SRS", f"logrows {meta['srs']['logrows']}, sha256 {meta['srs']['sha256'][:16]}…, [{style}]{meta['srs']['origin']}[/]")
    t.add_row("base commitment", meta["base"]["commitment"])
    t.add_row("signed", f"{len(sign)} key(s), one aggregate signature" if sign else "[yellow]no[/] (add signatures with `zkpot sign`)")
    out.print(t)


@app.command("sign")
@_clean_errors
def sign_package(
    package: Path = typer.Argument(..., help="A package directory made by `zkpot publish`."),
    keyfile: Path = typer.Argument(..., help="Your secret key file (zkpot keys new)."),
):
    """Co-sign a package: add your signature to its aggregate (check it with `zkpot verify --package` first)."""
    from zkpot.prover.publish import cosign

    signers = cosign(package, keyfile)
    out.print(f"signed; the package now carries one aggregate signature of {len(signers)} key(s): {', '.join(signers)}")


keys_app = typer.Typer(no_args_is_help=True, help="Publisher key pairs (BLS12-381, py_ecc proof-of-possession scheme).")
app.add_typer(keys_app, name="keys")


@keys_app.command("new")
@_clean_errors
def keys_new(keyfile: Path = typer.Argument(..., help="Secret key file to create (mode 0600; never inside public/ or a package).")):
    """Create a key pair; prints the public key to hand to verifiers."""
    from zkpot.prover.signing import new_key

    pk = new_key(keyfile)
    print(pk.hex())
    _say(f"secret key in {keyfile} (mode 0600, keep it private); the line above is your public key")


@keys_app.command("show")
@_clean_errors
def keys_show(keyfile: Path = typer.Argument(..., help="A secret key file made by `zkpot keys new`.")):
    """Print the public key of a secret key file (e.g. `zkpot keys show k.key > me.pub`)."""
    from zkpot.prover.signing import public_key

    print(public_key(keyfile).hex())


srs_app = typer.Typer(no_args_is_help=True, help="KZG SRS files: check one with py_ecc, hand a verifier the one a bundle "
                                                 "names, or make an insecure dev one.")
app.add_typer(srs_app, name="srs")


@srs_app.command("import")
@_clean_errors
def srs_import(
    file: Path = typer.Argument(..., help="An ezkl/halo2 KZG SRS file (e.g. a ceremony file, or the dev SRS a prover used)."),
    samples: int = typer.Option(256, help="Random pairs/points per pairing check (the sum checks always cover all)."),
    record: Optional[Path] = typer.Option(None, help="Where to write the check record (default: the zkpot cache)."),
):
    """Check that an SRS is the powers of one secret (py_ecc pairings), record its sha256 and origin, and
    remember the file (verify and fold then find it by the sha256 a bundle names)."""
    from zkpot.circuits.srs import CEREMONY
    from zkpot.verifier.srs_check import import_srs

    _say("checking the SRS with py_ecc (pure Python: seconds for k=15 at the default samples)")
    res, record = import_srs(file, samples, record)
    t = Table(title=f"SRS {file}", show_header=False)
    for line in res["checks"]:
        name, _, detail = line.partition(": ")
        t.add_row(name, "[green]pass[/]", detail)
    out.print(t)
    style = "green" if res["origin"] == CEREMONY else "bold red"
    out.print(f"logrows {res['logrows']}, sha256 {res['sha256']}, origin [{style}]{res['origin']}[/] "
              f"({'a public ceremony file' if res['origin'] == CEREMONY else 'not a listed ceremony file: whoever made it may know s'}); "
              f"{res['seconds']} s; record: {record}", highlight=False)


@srs_app.command("export")
@_clean_errors
def srs_export(
    public: Path = typer.Argument(..., help="A public bundle directory: its manifest names its SRS by sha256."),
    out_file: Path = typer.Option(..., "--out", help="Where to write the full SRS file (a verifier passes it once as --srs)."),
):
    """Write the full SRS a bundle names, as this machine has it (re-hashed): what a verifier of the bundle needs
    once. A dev SRS exists only on the machine that made it; a ceremony file can also be downloaded."""
    from zkpot.circuits.srs import export_srs
    from zkpot.spec.bundle import load_manifest

    ident = export_srs(load_manifest(public)["srs"].get("sha256"), out_file)
    style = "green" if ident["origin"] == "ceremony" else "bold red"
    out.print(f"{out_file}: logrows {ident['logrows']}, sha256 {ident['sha256']}, origin [{style}]{ident['origin']}[/]; "
              f"the verifier passes it once: zkpot verify {public} --srs {out_file}", highlight=False)


@srs_app.command("dev")
@_clean_errors
def srs_dev(
    logrows: int = typer.Option(..., "--logrows", help="k: the SRS holds 2^k powers (the circuit's logrows)."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Copy it here (default: only the zkpot cache)."),
):
    """Make an INSECURE dev SRS (its trapdoor was on this machine): for development only."""
    from zkpot.circuits.srs import export_dev_srs

    path, ident = export_dev_srs(logrows, out_file)
    out.print(f"{path}: logrows {ident['logrows']}, sha256 {ident['sha256']}, origin [bold red]{ident['origin']}[/] "
              "(INSECURE: whoever keeps its trapdoor can forge proofs)", highlight=False)


# --- data owners (a clean room: several owners' data, one run) ---------------------------------

owner_app = typer.Typer(no_args_is_help=True, help="Data owners: commit to your own data and sign it, on your own machine, "
                                                   "before handing it to a trainer (`zkpot train --owner-data`).")
app.add_typer(owner_app, name="owner")


@owner_app.command("commit")
@_clean_errors
def owner_commit(
    data: Path = typer.Argument(..., help="Your data: .csv (header, label column) or .npz (arrays X, y)."),
    owner_dir: Path = typer.Argument(..., help="Your directory: public/owner.json (publish it) and private/ (master key; handoff.json for the trainer)."),
    key: Path = typer.Option(..., "--key", help="Your secret key file (zkpot keys new): signs the statement."),
    name: str = typer.Option(..., "--name", help="Your name as the run lists it (part of what you sign: say which dataset it is)."),
    batch_size: int = BATCH_SIZE,
    loss: Loss = LOSS,
    outputs: int = typer.Option(1, "--outputs", help="Label width: 1 for bce, the number of classes for ce, targets for mse (the same for every owner)."),
    scale: int = SCALE,
    feature_bound: float = FEATURE_BOUND,
    features: Optional[int] = typer.Option(None, help="Keep only the first N feature columns."),
    rows: Optional[int] = typer.Option(None, help="Commit to this many of your rows, drawn privately (default: all)."),
    label: Optional[str] = typer.Option(None, help="CSV label column name (default: the last column)."),
):
    """Commit to your data in the run's public batch format and sign the statement (root, batches, layout)."""
    from zkpot.prover.owner import commit

    doc = commit(data, owner_dir, key, name, batch_size=batch_size, loss=loss.value, label_width=outputs, scale=scale,
                 feature_bound=feature_bound, features=features, rows=rows, label=label, progress=_say)
    s = doc["statement"]
    out.print(f"{s['name']}: {s['num_batches']} batch(es) of {s['batch_size']} rows x {s['features']} features, root "
              f"{s['root'][:16]}…, signed by {doc['public_key'][:16]}…", highlight=False)
    _say(f"publish {owner_dir / 'public' / 'owner.json'}; hand {owner_dir / 'private' / 'handoff.json'} (your data) "
         "to the trainer only")


def _named_owners(args: list[str]) -> list[bytes] | None:
    """--owner values as public keys, checked before any verification work (None: none named)."""
    if not args:
        return None
    from zkpot.spec.signature import read_publisher

    return [read_publisher(a, "--owner") for a in args]


dp_app = typer.Typer(no_args_is_help=True, help="DP-SGD runs: a witness attests that a run's noise was committed "
                                                 "before the beacon round its challenges come from.")
app.add_typer(dp_app, name="dp")


@dp_app.command("attest")
@_clean_errors
def dp_attest(
    noise_root: Path = typer.Argument(..., help="The run's noise_root.json the trainer shows you (RUN/noise_root.json)."),
    key: Path = typer.Option(..., help="Your secret key file (`zkpot keys new`); verifiers name its public key with --witness."),
    chain: Path = typer.Option(..., help="The drand chain's info (JSON of its GET /info)."),
    latest: Path = typer.Option(..., help="The latest round of that chain, fetched now (JSON of drand's GET /public/latest; its signature is checked): the run's challenges must come from the next one."),
    out_file: Path = typer.Option(..., "--out", help="The attestation to write (JSON): give it to the trainer."),
):
    """Attest that a DP run's noise commitments exist before the round after LATEST is published (sign them now)."""
    from zkpot.prover.dp import attest
    from zkpot.spec.artifacts import atomic_path, read_json

    doc = attest(read_json(noise_root), read_json(chain), read_json(latest), key)
    with atomic_path(out_file) as tmp:
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
    after = doc["statement"]["after_round"]
    out.print(f"attested: noise root {doc['statement']['noise_root'][:16]}… exists before round {after + 1} "
              f"(witness {doc['public_key'][:16]}…) -> {out_file}")


# --- this machine's cache ----------------------------------------------------------------------------

cache_app = typer.Typer(no_args_is_help=True, help="This machine's cache ($ZKPOT_CACHE, default ~/.cache/zkpot): what it "
                                                   "holds, and pruning what other versions of zkpot or its tools made.")
app.add_typer(cache_app, name="cache")


def _cache_table(rows: list[dict], title: str) -> Table:
    gb = lambda n: f"{n / 2**30:.2f} GB"
    t = Table(title=title)
    for col in ("namespace", "entries", "size", "of other versions", "their size", "unmarked"):
        t.add_column(col, justify="left" if col == "namespace" else "right")
    for r in rows:
        t.add_row(r["namespace"], str(r["entries"]), gb(r["bytes"]), str(len(r["stale"])), gb(r["stale_bytes"]),
                  str(r["unmarked"]))
    return t


@cache_app.command("info")
@_clean_errors
def cache_info():
    """What the cache holds per namespace, and how much of it other versions made (what `prune` deletes)."""
    from zkpot.spec import cache

    rows = cache.survey()
    out.print(_cache_table(rows, f"cache {cache.root()}"))
    out.print("unmarked: made before zkpot marked its entries, by versions it cannot tell; kept by prune "
              "(a dev SRS or an SRS's record may be today's)", highlight=False)


@cache_app.command("prune")
@_clean_errors
def cache_prune(dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be deleted; delete nothing.")):
    """Delete the entries made by other versions of zkpot's code or tools than this one's (keys of older
    circuits: up to 9 GB each). Safe: whatever needs an entry derives it again; another installed zkpot
    sharing this cache would."""
    from zkpot.spec import cache

    rows = cache.survey()
    out.print(_cache_table(rows, f"cache {cache.root()}"))
    if dry_run:
        n, size = cache.stale_total(rows)
        out.print(f"would delete {n} entries of other versions, {size / 2**30:.2f} GB", highlight=False)
        return
    n, freed = cache.prune(rows)
    out.print(f"deleted {n} entries of other versions, {freed / 2**30:.2f} GB freed", highlight=False)


def main():
    """The CLI, with click's usage errors (an unknown option, a value not among the choices) as one line."""
    warnings.simplefilter("ignore", FutureWarning)  # libraries' deprecation notes are not the user's to act on
    try:
        from typer._click import exceptions as click  # typer >= 0.29 carries its own click
    except ImportError:
        from click import exceptions as click

    try:
        code = app(standalone_mode=False)
    except click.NoArgsIsHelpError as e:
        out.print(e.ctx.get_help(), highlight=False, markup=False)
        code = 0
    except click.UsageError as e:
        err.print(f"[bold red]error:[/] {escape(_one_line(e.format_message()))} (see --help)", highlight=False)
        code = 2
    except typer.Abort:
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
