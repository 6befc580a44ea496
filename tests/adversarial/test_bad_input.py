"""Bad input from the user, through the CLI: one clear line naming the problem, exit code 2, never a
traceback. Disk-full and read-only directories are real tmpfs mounts (root only; skipped otherwise)."""
from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--rows", "8", "--features", "8", "--batch-size", "4", "--epochs", "1"]


def zkpot(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zkpot.cli", *map(str, args)], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=600)


def one_error_line(r: subprocess.CompletedProcess, *words: str) -> str:
    """Exit 2, no traceback, and exactly one stderr line besides progress lines ("· ...")."""
    assert "Traceback" not in r.stdout + r.stderr, r.stderr[-3000:]
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("·")]
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


CSV_CASES = {
    "ragged row": ("a,b,label\n1,2,0\n3,4\n", [], "2 fields, header has 3"),
    "non-numeric field": ("a,b,label\n1,x,0\n", [], "non-numeric field"),
    "empty file": ("", [], "needs a header row"),
    "header only": ("a,b,label\n", [], "needs a header row"),
    "unterminated quote": ('a,b,label\n"1,2,0\n3,4,1\n', [], "fields, header has 3"),
    "binary garbage": (bytes(range(256)) * 4, [], "not UTF-8 text"),
    "no such label column": ("a,b,y\n1,2,0\n", ["--label", "target"], "no label column 'target'"),
    "infinite feature": ("a,b,label\n1,inf,0\n2,3,1\n", [], "NaN or infinite"),
    "NaN feature": ("a,b,label\n1,2,0\nnan,3,1\n", [], "NaN or infinite"),
    "NaN label": ("a,b,label\n1,2,nan\n2,3,1\n", ["--batch-size", "1"], "labels contain NaN"),
    "bce label 2": ("a,b,label\n1,2,0\n2,3,2\n", ["--batch-size", "1"], "bce needs labels in {0, 1}"),
    "bce label 0.5": ("a,b,label\n1,2,0\n2,3,0.5\n", ["--batch-size", "1"], "bce needs labels in {0, 1}"),
    "ce label -1": ("a,b,label\n1,2,-1\n2,3,1\n", ["--batch-size", "1", "--loss", "ce"], "ce needs one integer class label"),
    "ce label 1.5": ("a,b,label\n1,2,0\n2,3,1.5\n", ["--batch-size", "1", "--loss", "ce"], "ce needs one integer class label"),
    "ce label beyond --classes": ("a,b,label\n1,2,0\n2,3,3\n", ["--batch-size", "1", "--loss", "ce", "--classes", "3"],
                                  "outside the 3 classes --classes declares"),
    "--classes with bce": ("a,b,label\n1,2,0\n2,3,1\n", ["--batch-size", "1", "--classes", "3"], "--classes is for ce runs"),
    "too few rows": ("a,b,label\n1,2,0\n2,3,1\n", ["--batch-size", "4"], "cannot fill one batch"),
    "unknown suffix": ("a,b,label\n1,2,0\n", ["--suffix", ".txt"], "expected a .csv or .npz"),
}


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_bad_csv(tmp_path, case):
    content, args, message = CSV_CASES[case]
    suffix = ".csv"
    if "--suffix" in args:
        suffix, args = args[1], []
    data = tmp_path / f"d{suffix}"
    data.write_bytes(content if isinstance(content, bytes) else content.encode())
    line = one_error_line(zkpot("train", tmp_path / "run", "--data", data, *args), message)
    assert str(data.name) in line or "label" in line or "features" in line or "rows" in line


@pytest.mark.parametrize("arrays, message", [
    ({"X": np.ones((4, 2))}, "needs arrays 'X'"),
    ({"X": np.ones((4, 2)), "y": np.zeros(3)}, "4 feature rows but 3 labels"),
    ({"X": np.array([[1.0, np.inf]] * 4), "y": np.zeros(4)}, "NaN or infinite"),
    ({"X": np.array([object()] * 4, dtype=object), "y": np.zeros(4)}, "not a readable .npz"),
    (None, "not a readable .npz"),
])
def test_bad_npz(tmp_path, arrays, message):
    data = tmp_path / "d.npz"
    if arrays is None:
        data.write_bytes(b"PK\x03\x04 not really a zip")
    else:
        np.savez(data, **arrays)
    one_error_line(zkpot("train", tmp_path / "run", "--data", data, "--batch-size", "1"), message)


MODELS = '''
import torch
from torch import nn

class Linear(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.l = nn.Linear(in_features, out_features)

class Atan2(Linear):  # exports to ONNX Atan, which ezkl 22.3.0 cannot compile
    def forward(self, x):
        y = self.l(x)
        return torch.atan2(y, torch.ones_like(y))

class CumProd(Linear):  # the ONNX exporter has no lowering for prims.prod
    def forward(self, x):
        return self.l(torch.cumprod(x, dim=-1))

class BadShape(Linear):  # fails while being traced
    def forward(self, x):
        return self.l(x).reshape(-1, 3)

class Broken:  # not a module at all
    pass

class Raises(nn.Module):
    def __init__(self, in_features, out_features):
        raise RuntimeError("needs a GPU")
'''


@pytest.mark.parametrize("cls, message", [
    ("Atan2", "ezkl cannot compile its training step (unsupported operation in graph)"),
    ("CumProd", "cannot be traced and exported to ONNX"),
    ("BadShape", "cannot be traced and exported to ONNX (RuntimeError: shape"),
    ("Broken", "no nn.Module subclass named 'Broken'"),
    ("Raises", "constructor failed (RuntimeError: needs a GPU)"),
])
def test_model_ezkl_cannot_compile(tmp_path, cls, message):
    (tmp_path / "net.py").write_text(MODELS)
    line = one_error_line(zkpot("train", tmp_path / "run", "--model", f"{tmp_path / 'net.py'}:{cls}", *TINY), message)
    assert cls in line
    assert not (tmp_path / "run" / "config.json").exists()  # nothing marks the run as prepared


@pytest.fixture
def trained(run_a, tmp_path) -> Path:
    """A copy of run A before setup (no keys, no proofs)."""
    run = tmp_path / "run"
    shutil.copytree(run_a.root, run, ignore=shutil.ignore_patterns("pk.key", "vk.key", "kzg.srs", "proofs",
                                                                    "manifest.json", ".lock"))
    return run


def test_srs_too_small(trained, tmp_path):
    small = tmp_path / "small.srs"
    r = zkpot("srs", "dev", "--logrows", "10", "--out", small)
    assert r.returncode == 0, r.stderr
    k = json.loads((trained / "public" / "settings.json").read_text())["run_args"]["logrows"]
    assert k > 10
    one_error_line(zkpot("setup", trained, "--srs", small), f"has logrows 10, the circuit needs {k}")
    truncated = tmp_path / "truncated.srs"
    truncated.write_bytes(small.read_bytes()[:1000])
    one_error_line(zkpot("setup", trained, "--srs", truncated), "truncated or padded")
    one_error_line(zkpot("setup", trained, "--srs", tmp_path / "none.srs"), "SRS file not found")
    assert not (trained / "public" / "vk.key").exists() and not (trained / "private" / "pk.key").exists()


def test_prove_before_setup(trained):
    one_error_line(zkpot("prove", trained), "run `zkpot setup` first")


@pytest.mark.parametrize("fan_in, message", [("1", "fan-in 1 folds a single proof"), ("4", "setup --fold-fan-in 4")])
def test_prove_fold_refuses_before_the_first_proof(run_a, tmp_path, fan_in, message):
    """A fold that cannot happen (4 chunks at fan-in 1; an SRS of another size than the tree's) is
    refused before any chunk is proved, not after the last."""
    run = tmp_path / "run"
    shutil.copytree(run_a.root, run, ignore=shutil.ignore_patterns("proofs", "manifest.json", ".lock"))
    one_error_line(zkpot("prove", run, "--fold", "--fan-in", fan_in), message)
    assert not (run / "public" / "proofs").exists()


def test_fold_on_ray_without_keeping_keys(trained):
    """Ray fold workers cache their keys on their own nodes: --no-keep-keys could not keep its word."""
    one_error_line(zkpot("prove", trained, "--fold", "--executor", "ray", "--no-keep-keys"),
                   "Ray fold workers keep theirs in their own caches")


@contextlib.contextmanager
def tmpfs(where: Path, options: str):
    """A real tmpfs mount (root only); skip the test where mounting is not allowed."""
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or 'not root'})")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_read_only_output_directory(tmp_path):
    with tmpfs(tmp_path / "ro", "ro,size=1m") as ro:
        one_error_line(zkpot("train", ro / "run", *TINY), "Read-only file system", str(ro / "run"))


@pytest.mark.parametrize("size", ["16k", "64k"])
def test_disk_full(tmp_path, size):
    """16k fills while the base model is written (safetensors' own error type), 64k while ezkl writes
    the compiled circuit: both say "disk full" in one line and leave no partial file behind."""
    with tmpfs(tmp_path / "full", f"size={size}") as full:
        one_error_line(zkpot("train", full / "run", *TINY), "disk full", "No space left on device")
        assert not (full / "run" / "config.json").exists()
        assert not list((full / "run").rglob(".*.tmp")), "a temporary file was left on the full disk"


@pytest.mark.parametrize("args, message", [
    (["--weight-bound", "0.01"], "the base model has a weight of magnitude"),
    (["--weight-bound", "0.4", "--lr", "20"], "the state after step 0 (chunk 0) has a weight of magnitude"),
])
def test_run_outside_the_declared_bounds(tmp_path, args, message):
    """A base model outside the declared weight bound, or a training state the step had to clip to it, is
    refused in one line naming the bound (and the step): the proved run would not be the claimed SGD."""
    line = one_error_line(zkpot("train", tmp_path / "run", *TINY, *args), message, "--weight-bound")
    assert "the declared bound" in line and ("outside" in line or "at (every proved step clips there)" in line)
