"""Fuzzing every parser a verifier runs on untrusted input (see fuzz_targets.py for the oracles).

Each target runs in a child process, so that a Rust panic that aborted the process, or a hang,
is reported as a finding with its input on disk instead of taking pytest down. The default run
tries DEFAULT_EXAMPLES inputs per parser, the same ones every run (a failure is a regression, and
reproducible); `python -m pytest -m slow tests/adversarial/test_fuzz.py` tries SLOW_EXAMPLES new
inputs per parser (docs/attacks.md names the marker).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.adversarial.fuzz_targets import TARGETS

DEFAULT_EXAMPLES = 200
SLOW_EXAMPLES = 10_000
ROOT = Path(__file__).resolve().parents[2]


def _fuzz(target: str, examples: int, public: Path, scratch: Path, explore: bool = False) -> None:
    try:
        r = subprocess.run(
            [sys.executable, "-m", "tests.adversarial.fuzz_targets", target, str(examples), str(public), str(scratch)]
            + ["--explore"] * explore,
            cwd=ROOT, capture_output=True, text=True, timeout=120 + 3 * examples,
            env={**os.environ, "RUST_BACKTRACE": "0", "RAYON_NUM_THREADS": "1"},
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{target}: the fuzzer hung (input being tried is in {scratch})")
    tail = "\n".join((r.stdout + r.stderr).splitlines()[-40:])
    assert r.returncode >= 0, f"{target}: the verifier process was killed by signal {-r.returncode} (input in {scratch})\n{tail}"
    assert r.returncode == 0, f"{target}: an input broke an oracle\n{tail}"
    ran = re.search(rf"^{target}: (\d+) inputs", r.stdout, re.M)
    assert ran and int(ran.group(1)) >= examples, r.stdout[-2000:]


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz(run_a, tmp_path, target):
    _fuzz(target, DEFAULT_EXAMPLES, run_a.public, tmp_path / "scratch")


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_full(run_a, tmp_path, target):
    _fuzz(target, SLOW_EXAMPLES, run_a.public, tmp_path / "scratch", explore=True)
