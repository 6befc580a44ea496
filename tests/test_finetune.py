"""Fine-tuning: a head trained on a frozen body. The frozen parameters are constants of the step
graph, named in the claims with their sha256 and taken from the public base model: the verifier
derives the circuit with them, so a frozen weight that moved, or another one, is rejected."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from prover import train as tr
from prover.config import RunConfig
from tests.adversarial.helpers import failures
from tests.conftest import HEAD_ONLY, SMALL, make_run, rehash
from tests.test_cli import zkpot
from verifier.model_check import frozen_digest
from verifier.verify import verify_bundle

FROZEN = ["net.0.weight", "net.0.bias"]


@pytest.fixture
def ft_bundle(run_ft, tmp_path):
    dst = tmp_path / "public"
    shutil.copytree(run_ft.public, dst)
    return dst


def _manifest(public):
    return json.loads((public / "manifest.json").read_text())


def _nudge(path, name, index=0, delta=2**-8):
    """One value of one parameter off by one fixed-point quantum: the smallest change the circuit sees."""
    w = load_file(str(path))
    w[name].reshape(-1)[index] += delta
    save_file(w, str(path))
    return w


def test_head_only_run_verifies_and_moves_only_the_head(run_ft):
    report = verify_bundle(run_ft.public, allow_insecure_dev_srs=True)
    assert report.ok, report.failures
    m = _manifest(run_ft.public)
    assert m["run"]["layout"]["names"] == ["net.2.weight", "net.2.bias"] and m["run"]["frozen"]["names"] == FROZEN
    assert any(c == "frozen" and "net.0.weight, net.0.bias" in d for c, d in report.passed)
    base, final = load_file(str(run_ft.base_model)), load_file(str(run_ft.final_model))
    assert set(final) == set(base)
    for n in FROZEN:
        assert np.array_equal(final[n], base[n]), n
    assert not np.array_equal(final["net.2.weight"], base["net.2.weight"])
    # the state the proofs commit to is the head alone: 4 + 1 weights and the salt
    assert m["run"]["frozen"]["sha256"] == frozen_digest({n: base[n] for n in FROZEN})


def test_every_frozen_parameter_changed_in_the_base_model(run_ft, tmp_path):
    """Each frozen tensor, one value nudged by one quantum, manifest re-sealed: rejected at `frozen`
    (the claims' sha256) before anything is derived from it."""
    for name in FROZEN:
        public = tmp_path / name
        shutil.copytree(run_ft.public, public)
        _nudge(public / "base_model.safetensors", name)
        rehash(public)
        assert failures(public) == {("frozen", None)}, name


def test_frozen_claims_moved_to_a_changed_base(ft_bundle):
    """A frozen weight changed in the base model and the claims' sha256 changed to match: the circuit
    the claims now give has another constant, so it is not the published step.onnx (`run`)."""
    w = _nudge(ft_bundle / "base_model.safetensors", "net.0.weight", 5)
    m = _manifest(ft_bundle)
    m["run"]["frozen"]["sha256"] = frozen_digest({n: w[n] for n in FROZEN})
    (ft_bundle / "manifest.json").write_text(json.dumps(m))
    rehash(ft_bundle)
    assert failures(ft_bundle) == {("run", None)}


def test_a_frozen_weight_changed_in_step_onnx(ft_bundle):
    """The published step.onnx with a frozen constant changed (claims untouched): `run`."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(ft_bundle / "step.onnx"))
    base = load_file(str(ft_bundle / "base_model.safetensors"))
    hits = 0
    for init in model.graph.initializer:
        a = numpy_helper.to_array(init)
        for n in FROZEN:  # the frozen constant, however the exporter laid it out
            for cand in (base[n], base[n].T):
                if a.shape == cand.shape and np.array_equal(a, cand):
                    b = a.copy()
                    b.reshape(-1)[0] += 2**-8
                    init.CopyFrom(numpy_helper.from_array(b, init.name))
                    hits += 1
    assert hits, "no frozen constant found in step.onnx"
    onnx.save(model, str(ft_bundle / "step.onnx"))
    rehash(ft_bundle)
    assert ("run", None) in failures(ft_bundle)


def test_a_run_that_moved_its_body_claimed_head_only(run_ft, tmp_path):
    """A run that trained every parameter, claimed as head-only: with its own circuit files the
    claims trace to another step.onnx (`run`); with the head-only run's circuit files (and SRS) and
    its own proofs, the proofs are not for the derived vk (`proofs`)."""
    full = make_run(tmp_path / "full", **{**HEAD_ONLY, "train": "*"})
    claims = _manifest(run_ft.public)["run"]

    def claim_head_only(public, circuit_files):
        m = _manifest(public)
        m["run"]["layout"], m["run"]["frozen"] = claims["layout"], claims["frozen"]
        if "kzg.srs" in circuit_files:  # the head-only circuit's SRS (the full one may have more rows)
            m["srs"] = _manifest(run_ft.public)["srs"]
        (public / "manifest.json").write_text(json.dumps(m))
        for name in circuit_files:
            shutil.copyfile(run_ft.public / name, public / name)
        rehash(public)

    own = tmp_path / "own"
    shutil.copytree(full.public, own)
    claim_head_only(own, [])
    assert ("run", None) in failures(own)

    borrowed = tmp_path / "borrowed"
    shutil.copytree(full.public, borrowed)
    claim_head_only(borrowed, ["step.onnx", "settings.json", "vk.key", "kzg.srs"])
    checks = {c for c, _ in failures(borrowed)}
    assert "proofs" in checks, checks


@pytest.mark.parametrize("name", FROZEN + ["net.2.weight"])
def test_released_model_not_base_plus_trained_head(run_ft, tmp_path, name):
    """`check-model` of the released model with one value of any parameter changed: frozen ones
    against the claims' sha256, trained ones against the opened final state (`model`)."""
    model = tmp_path / "model.safetensors"
    shutil.copyfile(run_ft.final_model, model)
    _nudge(model, name)
    report = verify_bundle(run_ft.public, allow_insecure_dev_srs=True, model=model, opening=run_ft.final_opening)
    assert [f.check for f in report.failures] == ["model"], report.failures
    ok = verify_bundle(run_ft.public, allow_insecure_dev_srs=True, model=run_ft.final_model, opening=run_ft.final_opening)
    assert ok.ok and any(c == "model" and "final state" in d for c, d in ok.passed)


def test_circuit_preregistered_with_a_frozen_body_is_the_runs(run_ft, tmp_path):
    """`zkpot circuit --train` with the run's options and base model, no data: the same files."""
    r = zkpot("circuit", tmp_path / "pre", "--features", SMALL["features"], "--batch-size", SMALL["batch_size"],
              "--lr", SMALL["lr"], "--model", "mlp", "--hidden", "4", "--train", "net.2.*",
              "--base", run_ft.base_model, "--srs", run_ft.srs)
    assert r.returncode == 0, r.stderr
    for name in ("step.onnx", "settings.json", "vk.key"):
        assert (tmp_path / "pre" / name).read_bytes() == (run_ft.public / name).read_bytes(), name


@pytest.mark.parametrize("pattern, message", [
    ("net.9.*", "--train pattern 'net.9.*' matches no parameter of the model"),
    (",", "--train names no parameter pattern"),
])
def test_train_pattern_that_selects_nothing(tmp_path, pattern, message):
    r = zkpot("train", tmp_path / "run", "--model", "mlp", "--hidden", "4", "--features", "4", "--rows", "8",
              "--batch-size", "4", "--epochs", "1", "--train", pattern)
    assert r.returncode == 2 and message in r.stderr, r.stderr
