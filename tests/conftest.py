"""Real runs, proved once per session: a small logistic regression (8 features, batches of 4,
2 batches, 2 epochs = 4 step proofs), and a second run of the same circuit for splicing attacks."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from zkpot.prover import train as tr
from zkpot.prover.config import RunConfig
from zkpot.prover.keys import setup
from zkpot.prover.prove import prove_all
from zkpot.prover.run import RunDir
from zkpot.spec import protocol as P

# CLI subprocesses see CI's width (no tty: rich assumes 80 columns unless told), whatever this terminal is.
os.environ["COLUMNS"] = "80"

SMALL = dict(rows=8, features=8, batch_size=4, epochs=2, lr=0.5)


def expected_exit(line: str) -> int:
    """A README line's exit code: the one its comment names (`# exit 4`), else 6 for a verification on the
    examples' dev SRS (VALID ON AN INSECURE DEV SRS), else 0."""
    said = re.search(r"#.*\bexit (\d)\b", line)
    if said:
        return int(said.group(1))
    return P.EXIT[P.DEV_SRS_VALID] if "zkpot verify" in line and "--allow-insecure-dev-srs" in line else 0


def make_run(root: Path, **overrides) -> RunDir:
    rd = RunDir(root)
    tr.prepare(rd, RunConfig(**{**SMALL, **overrides}), progress=lambda *_: None)
    tr.fixed_point_run(rd)
    setup(rd, None, progress=lambda *_: None)
    prove_all(rd)
    return rd


@pytest.fixture(scope="session")
def run_a(tmp_path_factory) -> RunDir:
    return make_run(tmp_path_factory.mktemp("run_a"))


@pytest.fixture(scope="session")
def run_b(tmp_path_factory) -> RunDir:
    """Same config, data and circuit; its own master key, so its own salts and commitments."""
    return make_run(tmp_path_factory.mktemp("run_b"))


HEAD_ONLY = dict(model="mlp", hidden=[4], train="net.2.*")  # fine-tuning: the MLP's body frozen


@pytest.fixture(scope="session")
def run_ft(tmp_path_factory) -> RunDir:
    """A small MLP whose head trains on a frozen body (its first layer: constants of the circuit)."""
    return make_run(tmp_path_factory.mktemp("run_ft"), **HEAD_ONLY)


ADAPTERS = dict(model="mlp", hidden=[4], lora_rank=1, lora_layers=["net.0"], train="*.lora_*")


@pytest.fixture(scope="session")
def run_lora(tmp_path_factory) -> RunDir:
    """The same MLP with a rank-1 adapter beside its first layer: only the adapter trains."""
    return make_run(tmp_path_factory.mktemp("run_lora"), **ADAPTERS)


@pytest.fixture
def bundle(run_a, tmp_path) -> Path:
    """A fresh copy of run A's public bundle, for one test to attack."""
    dst = tmp_path / "public"
    shutil.copytree(run_a.public, dst)
    return dst


def rehash(public: Path) -> None:
    """Re-seal the manifest after tampering, as a cheating prover would: the file hashes then
    say nothing, and the deeper checks must catch the change."""
    from zkpot.spec.artifacts import sha256_file

    m = json.loads((public / "manifest.json").read_text())
    m["files"] = {name: sha256_file(public / name) for name in m["files"] if (public / name).exists()}
    for chunk in m["chunks"]:
        m["files"].setdefault(chunk["proof"], sha256_file(public / chunk["proof"]))
    (public / "manifest.json").write_text(json.dumps(m))


def edit_manifest(public: Path, fn) -> None:
    m = json.loads((public / "manifest.json").read_text())
    fn(m)
    (public / "manifest.json").write_text(json.dumps(m))


@pytest.fixture(scope="session")
def readme_onnx_run(tmp_path_factory):
    """The README's "Your own model" block run verbatim, once: (the run, the last line's output)."""
    from tests.test_readme import REPO, bash_block, run

    work = tmp_path_factory.mktemp("readme_onnx")
    for line in bash_block(REPO / "README.md", "## Your own model"):
        r = run(line, work)
    return RunDir(work / "runs" / "mine"), r
