"""zkpot: prove that a released model came from a claimed private training run.

Phases, each a command that reads and writes explicit files (so each can be another party's):
  train    fixed-point training whose every step the circuit reproduces   -> RUN/private, RUN/public/step.onnx
  setup    SRS and keys for the step circuit                               -> RUN/public/vk.key, RUN/private/pk.key
  prove    one proof per step and the manifest                             -> RUN/public/
  verify   check a public bundle with public files alone
  inspect  show what a bundle claims
  demo     all of the above on the built-in dataset
"""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Optional

os.environ.setdefault("RUST_LOG", "error")

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)
out = Console()
err = Console(stderr=True)


def _clean_errors(fn):
    """User-facing failures become one line and a non-zero exit, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from circuits.artifacts import ArtifactError
        from circuits.pipeline import CircuitError
        from models.data import DataError
        from models.losses import LabelError
        from models.zoo import ModelError
        from prover.train import TrainError

        try:
            return fn(*args, **kwargs)
        except (ArtifactError, CircuitError, DataError, LabelError, ModelError, TrainError, ValueError, OSError) as e:
            err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2)
        except KeyboardInterrupt:
            err.print("[yellow]interrupted: finished steps are kept; run the same command again to resume[/]")
            raise typer.Exit(130)

    return wrapper


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=False)


def _say(msg: str) -> None:
    err.print(f"[dim]·[/] {msg}", highlight=False)


@app.command()
@_clean_errors
def train(
    run: Path = typer.Argument(..., help="Run directory to create or resume (private/ and public/ go inside)."),
    data: Optional[Path] = typer.Option(None, help="Training data: .csv (header, label column) or .npz (arrays X, y). Default: built-in breast-cancer data."),
    label: Optional[str] = typer.Option(None, help="CSV label column name (default: the last column)."),
    model: str = typer.Option("logreg", help="logreg, mlp, or your own module as path/to/file.py:ClassName."),
    hidden: str = typer.Option("8", help="MLP hidden widths, comma separated."),
    loss: str = typer.Option("bce", help="bce (binary labels), ce (class labels, softmax), mse (real targets)."),
    lr: float = typer.Option(0.5, help="SGD learning rate (a constant of the circuit)."),
    momentum: float = typer.Option(0.0, help="SGD momentum (adds a velocity buffer to the committed state)."),
    weight_decay: float = typer.Option(0.0, help="L2 weight decay added to the gradient."),
    batch_size: int = typer.Option(16, help="Rows per batch (a constant of the circuit)."),
    epochs: int = typer.Option(2, help="Passes over the committed batches."),
    steps_per_proof: int = typer.Option(1, help="SGD steps unrolled into one circuit (must divide epochs x batches): fewer, larger proofs."),
    rows: Optional[int] = typer.Option(None, help="Train on this many rows of the data (default: all)."),
    features: Optional[int] = typer.Option(None, help="Keep only the first N feature columns."),
    base: Optional[Path] = typer.Option(None, help="Base model weights (.safetensors or torch state dict). Default: seeded init."),
    seed: int = typer.Option(0, help="Seed of the initial weights and of the private batch partition."),
    schedule_seed: int = typer.Option(0, help="Public seed of the per-epoch batch order."),
    scale: int = typer.Option(8, help="Fixed-point scale: values are integers times 2^-scale."),
):
    """Train in fixed point, exactly as the circuit computes; compare with a float run."""
    from prover import train as tr
    from prover.config import RunConfig
    from prover.run import RunDir

    rd = RunDir(run)
    if rd.config.exists():
        _say(f"resuming {run} with its saved config (options are ignored)")
    else:
        cfg = RunConfig(model=model, hidden=[int(h) for h in hidden.split(",") if h.strip()], loss=loss, lr=lr,
                        momentum=momentum, weight_decay=weight_decay, batch_size=batch_size, epochs=epochs,
                        steps_per_proof=steps_per_proof,
                        data=str(data) if data else None, label=label, features=features, rows=rows,
                        base=str(base) if base else None, seed=seed, schedule_seed=schedule_seed, scale=scale)
        tr.prepare(rd, cfg, progress=_say)
    _train_steps(rd)


def _train_steps(rd):
    from prover import train as tr

    with _progress() as p:
        task = p.add_task("training (fixed-point witnesses)", total=None)
        report = tr.fixed_point_run(rd, on_step=lambda t, n: p.update(task, completed=t, total=n))
    metric = report["metric"]
    t = Table(title="fixed point (the circuit's run) vs float torch, same schedule")
    t.add_column("steps"); t.add_column(f"base {metric}"); t.add_column(f"fixed-point {metric}")
    t.add_column(f"float {metric}"); t.add_column("max |w_fixed - w_float|")
    t.add_row(str(report["steps"]), f"{report[f'base_{metric}']:.4f}", f"{report[f'fixed_point_{metric}']:.4f}",
              f"{report[f'float_{metric}']:.4f}", f"{report['max_abs_weight_diff']:.5f}")
    out.print(t)


@app.command()
@_clean_errors
def setup(
    run: Path = typer.Argument(..., help="Run directory made by `zkpot train`."),
    srs: Optional[Path] = typer.Option(None, help="KZG SRS file (e.g. a public ceremony file). Default: generate an INSECURE dev SRS."),
):
    """Make the verification key (public) and proving key (private) for the step circuit."""
    from prover.keys import setup as do_setup
    from prover.run import RunDir

    ident = do_setup(RunDir(run), srs, progress=_say)
    style = "green" if ident["origin"] == "ceremony" else "bold red"
    out.print(f"SRS logrows {ident['logrows']}, sha256 {ident['sha256'][:16]}…, origin [{style}]{ident['origin']}[/]")


@app.command()
@_clean_errors
def prove(run: Path = typer.Argument(..., help="Run directory after `zkpot train` and `zkpot setup`.")):
    """Prove every training step (resumable) and write the public bundle's manifest."""
    from prover.prove import prove_all
    from prover.run import RunDir

    rd = RunDir(run)
    with _progress() as p:
        task = p.add_task("proving steps", total=None)
        prove_all(rd, on_chunk=lambda c, n, s: p.update(task, completed=c, total=n))
    out.print(f"public bundle: {rd.public} (hand this directory to verifiers; keep {rd.private} to yourself)")


@app.command()
@_clean_errors
def verify(
    public: Path = typer.Argument(..., help="A public bundle directory (contains manifest.json)."),
    allow_insecure_dev_srs: bool = typer.Option(False, "--allow-insecure-dev-srs", help="Check a bundle made with a dev SRS anyway (its maker could forge proofs)."),
):
    """Check a bundle with public files only; exit 0 only if every check holds."""
    from verifier.verify import verify_bundle

    with _progress() as p:
        task = p.add_task("verifying proofs", total=None)
        report = verify_bundle(public, allow_insecure_dev_srs,
                               on_proof=lambda t, n: p.update(task, completed=t, total=n))
    _print_report(report)
    if not report.ok:
        raise typer.Exit(1)


def _print_report(report) -> None:
    t = Table(title="zkpot verify", show_lines=False)
    t.add_column("check"); t.add_column("result"); t.add_column("detail")
    for name, detail in report.passed:
        t.add_row(name, "[green]pass[/]", detail)
    for f in report.failures:
        t.add_row(f.check, "[bold red]FAIL[/]", (f"chunk {f.chunk}: " if f.chunk is not None else "") + str(f.args[0]))
    out.print(t)
    for w in report.warnings:
        out.print(f"[bold red on yellow] WARNING [/] [bold]{w}[/]")
    if report.ok:
        out.print(f"[bold green]VALID[/] in {report.seconds:.2f} s: every step of the claimed run is proved.")
    else:
        out.print(f"[bold red]INVALID[/]: {len(report.failures)} check(s) failed")


@app.command()
@_clean_errors
def inspect(public: Path = typer.Argument(..., help="A public bundle directory.")):
    """Show what a bundle claims (run, commitments, SRS), without verifying it."""
    from verifier.bundle import load_manifest

    m = load_manifest(public)
    r = m["run"]
    t = Table(title=f"bundle {public}", show_header=False)
    t.add_row("model", f"{r['model']['name']} {r['model'].get('kwargs', {})}")
    t.add_row("loss / optimizer", f"{r['loss']} / {r['optimizer']}")
    t.add_row("schedule", f"{r['epochs']} epochs x {r['num_batches']} batches of {r['batch_size']}, seed {r['schedule_seed']}")
    t.add_row("proofs", f"{len(m['chunks'])} of {r['steps_per_proof']} step(s) each")
    t.add_row("base commitment", m["base"]["commitment"])
    t.add_row("final commitment", m["final"]["commitment"])
    t.add_row("dataset root", m["dataset"]["root"])
    t.add_row("SRS", f"logrows {m['srs'].get('logrows')}, {m['srs'].get('origin')}, sha256 {str(m['srs'].get('sha256'))[:16]}…")
    t.add_row("versions", ", ".join(f"{k} {v}" for k, v in m["versions"].items()))
    out.print(t)


@app.command()
@_clean_errors
def demo(
    run: Path = typer.Argument(Path("runs/demo"), help="Where to put the demo run."),
    rows: int = typer.Option(64, help="Rows of the breast-cancer data to train on (64 = 4 batches of 16)."),
    epochs: int = typer.Option(2, help="Epochs."),
):
    """Train, set up, prove and verify a logistic regression on the built-in breast-cancer data."""
    from prover import train as tr
    from prover.config import RunConfig
    from prover.keys import setup as do_setup
    from prover.run import RunDir

    rd = RunDir(run)
    if not rd.config.exists():
        tr.prepare(rd, RunConfig(rows=rows, epochs=epochs), progress=_say)
    _train_steps(rd)
    do_setup(rd, None, progress=_say)
    prove.__wrapped__(run)
    verify.__wrapped__(rd.public, allow_insecure_dev_srs=True)  # the demo's SRS is a dev SRS


def main():
    app()


if __name__ == "__main__":
    main()
