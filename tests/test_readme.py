"""The README's quick start, and its inference example after it, run verbatim through bash in
a fresh directory: what a newcomer types is what the tests run."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import expected_exit

REPO = Path(__file__).resolve().parent.parent


def bash_block(page: Path, heading: str) -> list[str]:
    """The command lines of the first ```bash block after `heading` (comment lines left out)."""
    section = page.read_text().split(heading, 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def run(line: str, cwd: Path) -> subprocess.CompletedProcess:
    """One line as a user's shell runs it, with this interpreter's `zkpot` and `python` first on PATH."""
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    r = subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True)
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    assert r.returncode == expected_exit(line), f"{line}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    return r


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> Path:
    """The README's quick start run verbatim in a fresh directory (its cwd)."""
    cwd = tmp_path_factory.mktemp("readme")
    quick = bash_block(REPO / "README.md", "## Quick start")
    assert [line.split()[1] for line in quick] == ["train", "setup", "prove", "verify"]
    for line in quick:
        r = run(line, cwd)
    assert "VALID" in r.stdout and "INVALID" not in r.stdout
    return cwd


def test_quick_start_then_inference_verbatim(quick_run):
    for line in bash_block(REPO / "README.md", "## Then: a proved prediction"):
        r = run(line, quick_run)
        if " verify " in f" {line} ":
            assert "VALID" in r.stdout and "the prediction the inference proof proves" in r.stdout, r.stdout
    assert "opens" in r.stdout  # the last line: the inputs' owner's opening opens the proof's H(inputs)


def test_a_bundle_received_on_a_machine_that_never_saw_it(quick_run):
    """The README's third-party path on the quick start's bundle: the prover exports the SRS the bundle names;
    a verifier with an empty cache is told to pass it, then derives everything and verifies, then reads its cache."""
    lines = bash_block(REPO / "README.md", "## A bundle you received")
    assert not (quick_run / "elsewhere").exists()
    assert len(lines) == 4
    outs = [run(line, quick_run) for line in lines[:3]]
    assert "--srs" in outs[1].stdout and "CANNOT CHECK HERE" in outs[1].stdout
    assert "VALID ON AN INSECURE DEV SRS" in outs[2].stdout

    def cache():
        return {f: f.stat().st_mtime_ns for f in (quick_run / "elsewhere").rglob("*") if f.is_file()}

    derived = cache()
    assert any(f.name == "step.onnx" for f in derived) and any(f.name.startswith("vk-") for f in derived)
    last = run(lines[3], quick_run)
    assert "VALID ON AN INSECURE DEV SRS" in last.stdout and cache() == derived  # nothing derived again


def test_your_own_onnx_model_verbatim(readme_onnx_run):
    """A model exported by torch.onnx.export at its defaults, trained, proved and verified VALID through the
    README's commands alone (tests/test_onnx_models.py attacks the same bundle)."""
    run, last = readme_onnx_run
    assert "VALID" in last.stdout and "INVALID" not in last.stdout and "graph" in last.stdout, last.stdout
