"""The CLI as a user meets it: exit codes, one-line errors, never a traceback."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest


def zkpot(*args, cwd=None):
    r = subprocess.run([sys.executable, "-m", "zkpot.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd)
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    return r


def test_verify_valid_bundle(run_a):
    r = zkpot("verify", run_a.public, "--allow-insecure-dev-srs")
    assert r.returncode == 6, r.stdout + r.stderr  # its own code: a script reading only the code never takes it for VALID
    assert "VALID ON AN INSECURE DEV SRS" in r.stdout and "WARNING" in r.stdout


def test_short_help_and_version():
    assert zkpot("-V").stdout.startswith("zkpot ") and "Usage" in zkpot("verify", "-h").stdout


def test_help_keeps_the_glob_examples_whole():
    """Copied from --help, `--train 'net.2.*'` must work: markdown once ate the asterisks ('net.2.')."""
    r = subprocess.run([sys.executable, "-m", "zkpot.cli", "train", "--help"], capture_output=True, text=True,
                       env={**os.environ, "COLUMNS": "400"})
    assert "'net.2.*'" in r.stdout and "'*.lora_*'" in r.stdout and "('*')" in r.stdout, r.stdout


def rows_csv(path, n: int, column0=None):
    import numpy as np

    X = np.random.default_rng(3).normal(size=(n, 4))
    if column0 is not None:
        X[: len(column0), 0] = column0
    np.savetxt(path, np.c_[X, X[:, 1] > 0], delimiter=",", header="a,b,c,d,label", comments="")
    return path


@pytest.mark.parametrize("outlier", [1e6, 1e9, -1e6])
def test_an_outlier_that_would_flatten_its_column_is_refused(tmp_path, outlier):
    """Standardised over a 1e6, the other values of the column would lie within a fixed-point step."""
    r = zkpot("train", tmp_path / "run", "--data", rows_csv(tmp_path / "d.csv", 64, [outlier]), "--batch-size", 8)
    assert r.returncode == 2 and "feature column 0: 1 value(s)" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "run").exists()


def test_train_says_what_it_clipped_and_left_out_and_never_ignores_options(tmp_path):
    """A mild outlier is clipped (and counted), 2 of 18 rows fill no batch of 4 (said); training into the run
    again with another option is refused naming it; with the same options (or none) it resumes."""
    data = rows_csv(tmp_path / "d.csv", 18, [40.0])
    args = ["train", tmp_path / "run", "--data", data, "--batch-size", 4, "--epochs", 1]
    r = zkpot(*args)
    assert r.returncode == 0, r.stderr
    assert "1 standardised feature value(s) clipped into +-4: column 0 (1)" in r.stderr, r.stderr
    assert "2 of the 18 rows fill no batch of 4" in r.stderr, r.stderr
    r = zkpot(*args, "--lr", 0.25, "--scale", 8)
    assert r.returncode == 2 and "--lr (was 0.5, now 0.25)" in r.stderr and "--scale" not in r.stderr, r.stderr
    for again in (args, args[:2]):
        r = zkpot(*again)
        assert r.returncode == 0 and "resuming" in r.stderr, r.stderr


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
    assert r.returncode == doc["exit_code"] == 6 and doc["verdict"] == "VALID ON AN INSECURE DEV SRS"
    assert doc["format"] == "zkpot/verify-report-1"
    names = [c["check"] for c in doc["checks"]]
    assert names == ["files", "srs", "run", "circuit", "vk", "proofs", "base", "chain", "final", "schedule"], names
    run = next(c["detail"] for c in doc["checks"] if c["check"] == "run")  # |x| <= 4 is not claimed as proved
    assert "each step clips its features to +-4.0 and every weight it returns to +-2.0 (proved)" in run, run
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
        assert r.returncode == (6 if verb[0] == "verify" else 0), r.stderr
        if verb[0] == "setup":  # a live stage line with the time elapsed (its last frame, off a terminal; its
            # stage is the last one run: the SRS's where an earlier test of the session cached this circuit's keys)
            assert re.search(r"^setup: \S.*\d:\d\d:\d\d", r.stderr, re.M), r.stderr
    assert "VALID ON AN INSECURE DEV SRS in" in r.stdout and "INVALID" not in r.stdout
