"""The CLI as a user meets it: exit codes, one-line errors, never a traceback."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest


def zkpot(*args, cwd=None):
    r = subprocess.run([sys.executable, "-m", "zkpot.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd)
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    return r


def test_verify_valid_bundle(run_a):
    r = zkpot("verify", run_a.public, "--allow-insecure-dev-srs")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "VALID" in r.stdout and "INSECURE DEV SRS" in r.stdout


def test_verify_refuses_dev_srs_by_default(run_a):
    r = zkpot("verify", run_a.public)
    assert r.returncode == 1 and "INSECURE DEV SRS" in r.stdout and "--allow-insecure-dev-srs" in r.stdout


def test_verify_tampered_bundle_names_the_check(bundle):
    (bundle / "proofs" / "chunk_00003.json").write_text("{}")
    r = zkpot("verify", bundle, "--allow-insecure-dev-srs")
    assert r.returncode == 1
    assert "INVALID" in r.stdout and "proofs/chunk_00003.json does not match" in r.stdout


@pytest.mark.parametrize("content", ["", "{not json", "[1, 2]", '{"format": "zkpot/bundle-2"}'])
def test_verify_corrupt_manifest(bundle, content):
    (bundle / "manifest.json").write_text(content)
    r = zkpot("verify", bundle)
    assert r.returncode == 1 and "manifest" in r.stdout


def test_verify_missing_directory(tmp_path):
    r = zkpot("verify", tmp_path / "nope")
    assert r.returncode == 2 and "not a bundle directory" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_version():
    r = zkpot("--version")
    assert r.returncode == 0 and r.stdout.startswith("zkpot ") and "zkpot/bundle-2" in r.stdout


def test_verify_json_valid(run_a):
    r = zkpot("verify", run_a.public, "--allow-insecure-dev-srs", "--json")
    doc = json.loads(r.stdout)
    assert r.returncode == doc["exit_code"] == 0 and doc["verdict"] == "VALID" and doc["format"] == "zkpot/verify-report-1"
    names = [c["check"] for c in doc["checks"]]
    assert names == ["files", "srs", "run", "circuit", "vk", "proofs", "base", "chain", "final", "schedule"], names
    assert all(set(c) == {"check", "result", "detail", "chunk", "at_seconds"} and c["result"] == "pass" for c in doc["checks"])
    times = [c["at_seconds"] for c in doc["checks"]]
    assert times == sorted(times) and 0 <= times[-1] <= doc["seconds"]
    assert doc["claims"]["final"]["commitment"] and doc["versions"]["ezkl"] == "22.3.0"
    assert any("INSECURE DEV SRS" in w for w in doc["warnings"]) and doc["unbound"] == [] and doc["cannot_check"] is None


def test_verify_json_invalid(bundle):
    (bundle / "proofs" / "chunk_00003.json").write_text("{}")
    r = zkpot("verify", bundle, "--allow-insecure-dev-srs", "--json")
    doc = json.loads(r.stdout)
    assert r.returncode == doc["exit_code"] == 1 and doc["verdict"] == "INVALID"
    assert [(c["check"], c["result"]) for c in doc["checks"]] == [("files", "fail")]


@pytest.mark.parametrize("args, verdict, code", [
    (["nope"], "BAD INPUT", 2),
    (["BUNDLE", "--publisher", "zz"], "BAD INPUT", 2),
])
def test_verify_json_when_verification_cannot_start(run_a, tmp_path, args, verdict, code):
    args = [str(run_a.public) if a == "BUNDLE" else str(tmp_path / a) if a == "nope" else a for a in args]
    r = zkpot("verify", *args, "--json")
    doc = json.loads(r.stdout)
    assert r.returncode == code and doc == {"format": "zkpot/verify-report-1", "verdict": verdict, "exit_code": code,
                                            "error": doc["error"]} and doc["error"]


@pytest.mark.parametrize("args, message", [
    (["train", "RUN", "--loss", "hinge"], "'hinge' is not one of 'bce', 'ce', 'mse'"),
    (["prove", "RUN", "--executor", "slurm"], "'slurm' is not one of 'local', 'ray'"),
    (["train", "RUN", "--model", "mlp", "--hidden", "8,x"], "--hidden takes layer widths"),
    (["train", "RUN", "--hidden", "4"], "--hidden sets the widths of --model mlp"),  # logreg has none: never ignored
    (["verify"], "Missing argument"),
    (["verfy", "RUN"], "No such command 'verfy'"),
    (["train", "RUN", "--epoch", "2"], "No such option"),
])
def test_usage_errors_are_one_line_before_anything_is_written(tmp_path, args, message):
    r = zkpot(*[str(tmp_path / "run") if a == "RUN" else a for a in args])
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "run").exists()


def test_help_lists_the_choices():
    assert "bce|ce|mse" in zkpot("train", "--help").stdout
    assert "local|ray" in zkpot("prove", "--help").stdout
    assert zkpot().returncode == 0 and "verify" in zkpot().stdout  # no arguments: the help


def test_inspect(run_a):
    r = zkpot("inspect", run_a.public)
    assert r.returncode == 0 and "final commitment" in r.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "missing.csv"], "dataset not found"),
        (["--loss", "hinge"], "'hinge' is not one of 'bce', 'ce', 'mse'"),
        (["--model", "nope.py:Net"], "model file not found"),
        (["--base", "missing.safetensors"], "base model not found"),
        (["--lr", "-1"], "learning rate"),
        (["--steps-per-proof", "two"], "--steps-per-proof must be a positive integer or auto"),
        (["--steps-per-proof", "0"], "--steps-per-proof must be a positive integer or auto"),
        (["--steps-per-proof", "auto", "--memory-gb", "0.1", "--rows", "8", "--features", "4", "--batch-size", "4"],
         "GB to prove), more than a 0.1 GB budget proves (--memory-gb)"),
    ],
)
def test_train_bad_input_is_one_line(tmp_path, args, message):
    r = zkpot("train", tmp_path / "run", *args)
    assert r.returncode == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) <= 2, r.stderr


def test_train_nan_csv(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,label\n1,2,0\nnan,3,1\n")
    r = zkpot("train", tmp_path / "run", "--data", csv)
    assert r.returncode == 2 and "NaN" in r.stderr


def test_train_bad_labels(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,label\n1,2,0\n2,3,2\n")
    r = zkpot("train", tmp_path / "run", "--data", csv, "--batch-size", "1")
    assert r.returncode == 2 and "bce needs labels" in r.stderr


def test_help_reads_as_phases():
    r = zkpot("--help")
    assert r.returncode == 0
    for verb in ("train", "setup", "prove", "verify", "inspect", "demo"):
        assert verb in r.stdout


def test_demo_runs_end_to_end(tmp_path):
    """The README's first command, on a smaller slice (2 batches of 16, 2 epochs: 4 real proofs)."""
    r = zkpot("demo", tmp_path / "demo", "--rows", "32")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "INSECURE DEV SRS" in r.stdout + r.stderr
    assert (tmp_path / "demo" / "public" / "manifest.json").exists()


def test_classes_declares_the_ce_models_width(tmp_path):
    """Labels 0 and 1 only, three classes declared: the model has three outputs (inferred, it would have two),
    and its softmax cross-entropy steps prove and verify."""
    data = tmp_path / "d.csv"
    data.write_text("a,b,label\n" + "".join(f"{i % 3},{i % 5},{i % 2}\n" for i in range(4)))
    r = zkpot("train", tmp_path / "run", "--data", data, "--loss", "ce", "--classes", "3", "--batch-size", "2",
              "--epochs", "1")
    assert r.returncode == 0, r.stderr
    layout = json.loads((tmp_path / "run" / "private" / "partition.json").read_text())["layout"]
    assert layout["label_width"] == 3 and layout["shapes"][0] == [3, 2]
    for verb in (["setup", tmp_path / "run"], ["prove", tmp_path / "run"],  # softmax cross-entropy, proved
                 ["verify", tmp_path / "run" / "public", "--allow-insecure-dev-srs"]):
        r = zkpot(*verb)
        assert r.returncode == 0, r.stderr
    assert "VALID in" in r.stdout and "INVALID" not in r.stdout
