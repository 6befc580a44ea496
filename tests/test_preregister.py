"""The circuit is a function of the public claims: made before any data, it is the trained run's."""
from __future__ import annotations

import json

import numpy as np

from tests.test_cli import zkpot


def test_circuit_from_the_claims_alone_is_the_runs(run_a, tmp_path):
    """`zkpot circuit` with run A's options and no data: step.onnx, settings.json, vk.key and kzg.srs
    (the SRS's verifier part) are the files of run A's bundle, byte for byte, so they can be published
    before training."""
    r = zkpot("circuit", tmp_path / "pre", "--features", 8, "--batch-size", 4, "--lr", 0.5,
              "--srs", run_a.srs)
    assert r.returncode == 0, r.stderr
    for name in ("step.onnx", "settings.json", "vk.key", "kzg.srs"):
        assert (tmp_path / "pre" / name).read_bytes() == (run_a.public / name).read_bytes(), name
    claims = json.loads((tmp_path / "pre" / "claims.json").read_text())
    m = json.loads(run_a.manifest.read_text())
    assert claims == {k: m["run"][k] for k in claims}


def test_private_data_does_not_reach_the_circuit(run_a, run_b):
    """Runs A and B share every claim but hold different rows (each --rows subset is drawn from its
    own master key): their circuits are the same files."""
    xa, xb = np.load(run_a.data)["X"], np.load(run_b.data)["X"]
    assert not np.array_equal(xa, xb)
    for name in ("step.onnx", "settings.json", "vk.key"):
        assert (run_a.public / name).read_bytes() == (run_b.public / name).read_bytes(), name


def test_public_seed_draws_only_the_base(run_a, run_b):
    """The same public --seed gives the same (published) base weights; which rows were used and how
    they are grouped come from each run's private master key, not from the seed."""
    assert run_a.base_model.read_bytes() == run_b.base_model.read_bytes()
    pa = json.loads(run_a.partition.read_text())["batches"]
    xa, xb = np.load(run_a.data)["X"], np.load(run_b.data)["X"]
    assert not np.array_equal(xa, xb) or pa != json.loads(run_b.partition.read_text())["batches"]


def test_circuit_bad_options(tmp_path):
    r = zkpot("circuit", tmp_path / "pre", "--features", 8, "--model", "net.py:Net")
    assert r.returncode == 2 and "pre-registration derives built-in and ONNX models only" in r.stderr
    r = zkpot("circuit", tmp_path / "pre", "--features", 8, "--weight-bound", "-1")
    assert r.returncode == 2 and "weight bound must be in" in r.stderr
