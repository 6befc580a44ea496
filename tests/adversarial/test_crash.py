"""Crash safety: `zkpot train`, `setup` and `prove` killed with SIGKILL and resumed end with the bundle
an uninterrupted run gives, and a second prover on the same run directory is refused.

The killed run is the CLI in a subprocess, on run A's configuration (tests/conftest.py SMALL: 8 rows,
batches of 4, 2 epochs = 4 chunk proofs) and run A's master key (RUN/private/master.key, from which
every salt is derived), so it must reach run A's public commitments exactly. Kill points, in order,
each followed by the same command again (the next kill point, or the resume):

  train-prepare      once public/step.onnx exists (ezkl settings, calibration and compile under way)
  train-witness-1    once 1 of 4 chunk witnesses is in private/witnesses
  train-witness-3    once 3 of 4 witnesses exist
  setup-keygen       once ezkl.setup's temporary pk/vk appear in the key cache (mid key generation)
  prove-random       at a random moment (1-4 s) of the first prove (seeded; the seed is in the test output)
  prove-proof-1      once 1 of 4 proofs is in public/proofs
  prove-temp         once a proof's temporary (.chunk_NNNNN.json.XXXXXXXX.tmp) is in public/proofs
  prove-manifest     once all 4 proofs exist (before or while the manifest is written)

After every kill, no file under its final name may be partial (every JSON parses; a proof verifies),
and after the resume no `.NAME.XXXXXXXX.tmp` is left anywhere in the run directory. The key cache is
a private directory (ZKPOT_CACHE) holding only a link to the cached dev SRS: the killed run's own
setup really runs, and its keys do not pile up in ~/.cache.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zkpot.circuits import pipeline
from zkpot.spec import cache as cache_mod
from tests.conftest import SMALL
from zkpot.verifier.verify import verify_bundle

ROOT = Path(__file__).resolve().parents[2]
TRAIN_ARGS = ["--rows", SMALL["rows"], "--features", SMALL["features"], "--batch-size", SMALL["batch_size"],
              "--epochs", SMALL["epochs"], "--lr", SMALL["lr"]]


def _env(cache: Path) -> dict:
    return {**os.environ, "ZKPOT_CACHE": str(cache), "RUST_BACKTRACE": "0"}


def zkpot(*args, cache: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "zkpot.cli", *map(str, args)], cwd=ROOT, env=_env(cache),
                       capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    return r


def temps(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob(".*.tmp"))


def count(directory: Path, pattern: str = "chunk_*.json") -> int:
    return len(list(directory.glob(pattern))) if directory.is_dir() else 0


def kill_when(args, ready, cache: Path, timeout: float = 300) -> dict:
    """Start `zkpot ARGS`, SIGKILL its process group as soon as ready() holds; fail if it ends first."""
    proc = subprocess.Popen([sys.executable, "-m", "zkpot.cli", *map(str, args)], cwd=ROOT, env=_env(cache),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    start = time.monotonic()
    try:
        while not ready(time.monotonic() - start):
            if proc.poll() is not None:
                pytest.fail(f"zkpot {args[0]} ended (exit {proc.returncode}) before its kill point: {proc.stderr.read()[-500:]}")
            if time.monotonic() - start > timeout:
                pytest.fail(f"zkpot {args[0]} never reached its kill point")
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return {"after_s": round(time.monotonic() - start, 2), "left": [p.name for p in temps(args[1])]}


def assert_no_partial_artifact(run: Path) -> None:
    """Every file under its final name is complete: JSON parses, each proof verifies."""
    for path in run.rglob("*.json"):
        if not path.name.startswith("."):
            json.loads(path.read_text())
    pub = run / "public"
    for proof in sorted((pub / "proofs").glob("chunk_*.json")) if (pub / "proofs").is_dir() else []:
        assert pipeline.verify(proof, pub / "settings.json", pub / "vk.key", pub / "kzg.srs"), f"{proof} is partial"


def public_commitments(public: Path) -> dict:
    m = json.loads((public / "manifest.json").read_text())
    return {
        "run": m["run"], "base": m["base"], "final": m["final"], "dataset": m["dataset"], "chunks": m["chunks"],
        "batch_commitments": json.loads((public / "dataset.json").read_text()),
        "instances": [json.loads((public / c["proof"]).read_text())["instances"] for c in m["chunks"]],
        "step.onnx": (public / "step.onnx").read_bytes(),
        "base_model": (public / "base_model.safetensors").read_bytes(),
    }


@pytest.fixture
def private_cache(tmp_path) -> Path:
    """A key cache that starts empty but for links to the cached dev SRS files (none is regenerated)."""
    cache = tmp_path / "cache"
    cache.mkdir(parents=True, mode=0o700)   # (owner-only whatever the umask: spec/cache.py refuses others' caches)
    (cache_mod.root() / "srs-dev").mkdir(parents=True, exist_ok=True)
    (cache / "srs-dev").symlink_to(cache_mod.root() / "srs-dev")
    return cache


def test_killed_and_resumed_run_equals_uninterrupted(run_a, tmp_path, private_cache):
    run, cache = tmp_path / "run", private_cache
    (run / "private").mkdir(parents=True)
    shutil.copyfile(run_a.master_key, run / "private" / "master.key")
    witnesses, proofs = run / "private" / "witnesses", run / "public" / "proofs"
    seed = random.randrange(1 << 30)
    print(f"random kill seed {seed}")
    rnd = random.Random(seed)
    killed = {}

    train = ["train", run, *TRAIN_ARGS]
    killed["train-prepare"] = kill_when(train, lambda t: (run / "public" / "step.onnx").exists(), cache)
    assert not (run / "config.json").exists()  # prepare had not finished: it is redone from scratch
    killed["train-witness-1"] = kill_when(train, lambda t: count(witnesses) >= 1, cache)
    killed["train-witness-3"] = kill_when(train, lambda t: count(witnesses) >= 3, cache)
    assert_no_partial_artifact(run)
    r = zkpot(*train, cache=cache)
    assert r.returncode == 0, r.stderr
    assert json.loads((run / "config.json").read_text()) == json.loads(run_a.config.read_text())

    killed["setup-keygen"] = kill_when(["setup", run], lambda t: any((cache / "keys").rglob(".[pv]k.key.*.tmp")), cache)
    r = zkpot("setup", run, cache=cache)
    assert r.returncode == 0, r.stderr

    # first, while all 4 proofs remain (~6 s with the start-up on a quiet machine; it ended before a later kill point at 5 s)
    at = rnd.uniform(1.0, 4.0)
    killed["prove-random"] = {**kill_when(["prove", run], lambda t: t >= at, cache), "target_s": round(at, 2)}
    assert_no_partial_artifact(run)
    killed["prove-proof-1"] = kill_when(["prove", run], lambda t: count(proofs) >= 1, cache)
    assert_no_partial_artifact(run)
    killed["prove-temp"] = kill_when(["prove", run], lambda t: any(proofs.glob(".chunk_*.tmp")), cache)
    assert any(name.startswith(".chunk_") for name in killed["prove-temp"]["left"])
    assert_no_partial_artifact(run)
    killed["prove-manifest"] = kill_when(["prove", run], lambda t: count(proofs) >= 4, cache)
    assert_no_partial_artifact(run)
    r = zkpot("prove", run, cache=cache)
    assert r.returncode == 0, r.stderr
    print("kill points (seconds after start, temporaries left):", json.dumps(killed, indent=1))

    report = verify_bundle(run / "public", allow_insecure_dev_srs=True)
    assert report.ok, [str(f) for f in report.failures]
    assert public_commitments(run / "public") == public_commitments(run_a.public)
    assert (run / "private" / "final_opening.json").read_text() == run_a.final_opening.read_text()
    assert temps(run) == [], "a temporary file survived the resume"


def test_second_prover_is_refused(run_a, tmp_path):
    """While `zkpot prove` runs, a second `prove` (or `train`) on the same run is refused with one line
    naming the holder and changes nothing; once the holder is killed, the lock is free again."""
    run = tmp_path / "run"
    shutil.copytree(run_a.root, run, ignore=shutil.ignore_patterns("pk.key", ".lock", "proofs", "manifest.json"))
    os.link(run_a.pk, run / "private" / "pk.key")
    cache = cache_mod.root()
    first = subprocess.Popen([sys.executable, "-m", "zkpot.cli", "prove", run], cwd=ROOT, env=_env(cache),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while b"zkpot prove" not in ((run / ".lock").read_bytes() if (run / ".lock").exists() else b""):
            assert first.poll() is None and time.monotonic() < deadline, "the first prover never took the lock"
            time.sleep(0.01)
        os.killpg(first.pid, signal.SIGSTOP)  # held mid-run: four logrows-13 proofs take a second or two
        assert first.poll() is None, "the first prover finished before it could be held"
        for args in (["prove", run], ["train", run], ["setup", run]):
            r = zkpot(*args, cache=cache)
            lines = r.stderr.strip().splitlines()
            assert r.returncode == 2 and len(lines) == 1, r.stderr
            assert f"is in use by zkpot prove (pid {first.pid})" in lines[0], lines[0]
        assert first.poll() is None, "the first prover did not survive the second's attempt"
        assert f"(pid {first.pid})" in (run / ".lock").read_text()
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    from zkpot.prover.lock import run_lock

    with run_lock(run, "test"):  # the kernel dropped the dead holder's flock
        pass
