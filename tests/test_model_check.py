"""Checking a released model against the run: the final state with its opening, or the base model."""
from __future__ import annotations

import json
import shutil

import pytest
from safetensors.torch import load_file, save_file

from tests.test_cli import zkpot
from zkpot.verifier.verify import verify_bundle


def check(run, model, opening=None):
    report = verify_bundle(run.public, allow_insecure_dev_srs=True, model=model, opening=opening)
    return report, {(f.check, str(f)) for f in report.failures}


def test_final_model_with_its_opening(run_a):
    report, failed = check(run_a, run_a.final_model, run_a.final_opening)
    assert report.ok, failed
    assert any(n == "model" and "final state" in d for n, d in report.passed)


def test_base_model(run_a):
    report, failed = check(run_a, run_a.base_model)
    assert report.ok and any(n == "model" and "base model" in d for n, d in report.passed), failed


def _edited_model(src, tmp_path, delta):
    w = load_file(str(src))
    w["linear.weight"][0, 3] += delta
    out = tmp_path / "model.safetensors"
    save_file(w, str(out))
    return out


@pytest.mark.parametrize("delta", [2**-8, -(2**-8), 0.5])
def test_final_model_with_a_changed_weight(run_a, tmp_path, delta):
    """One weight off by one fixed-point quantum (the smallest change the circuit can see), or by 0.5."""
    report, failed = check(run_a, _edited_model(run_a.final_model, tmp_path, delta), run_a.final_opening)
    assert [c for c, _ in failed] == ["model"] and "differs from the proved final state in 1 of 9" in str(failed)


def test_changed_base_model(run_a, tmp_path):
    _, failed = check(run_a, _edited_model(run_a.base_model, tmp_path, 2**-8))
    assert [c for c, _ in failed] == ["model"] and "base commitment" in str(failed)


def test_final_model_checked_as_base(run_a):
    _, failed = check(run_a, run_a.final_model)
    assert [c for c, _ in failed] == ["model"]


def _opening(run, tmp_path, edit):
    o = json.loads(run.final_opening.read_text())
    edit(o)
    out = tmp_path / "opening.json"
    out.write_text(json.dumps(o))
    return out


@pytest.mark.parametrize("edit, message", [
    (lambda o: o["state"].__setitem__(-1, o["state"][-2]), "does not open the run's final commitment"),  # a salt word
    (lambda o: o["state"].__setitem__(0, o["state"][1]), "does not open the run's final commitment"),    # a weight
    (lambda o: o["state"].pop(), "must list the final state's 15 field elements"),
    (lambda o: o["state"].__setitem__(2, "zz" * 32), "must list the final state's 15 field elements"),
    (lambda o: o.pop("state"), "must list"),
])
def test_bad_opening(run_a, tmp_path, edit, message):
    _, failed = check(run_a, run_a.final_model, _opening(run_a, tmp_path, edit))
    assert [c for c, _ in failed] == ["model"] and message in str(failed), failed


def test_another_runs_model_and_opening(run_a, run_b):
    """Run B's final model and opening (same circuit, same data, other salts) against A's bundle; and
    A's model with B's opening."""
    _, failed = check(run_a, run_b.final_model, run_b.final_opening)
    assert [c for c, _ in failed] == ["model"] and "does not open" in str(failed)
    _, failed = check(run_a, run_a.final_model, run_b.final_opening)
    assert [c for c, _ in failed] == ["model"]


def test_check_model_cli(run_a, tmp_path):
    r = zkpot("check-model", run_a.public, run_a.final_model, "--opening", run_a.final_opening, "--allow-insecure-dev-srs")
    assert r.returncode == 6 and "VALID ON AN INSECURE DEV SRS" in r.stdout, r.stdout + r.stderr
    other = shutil.copy(_edited_model(run_a.final_model, tmp_path, 2**-8), tmp_path / "released.safetensors")
    r = zkpot("check-model", run_a.public, other, "--opening", run_a.final_opening, "--allow-insecure-dev-srs")
    assert r.returncode == 1 and "INVALID" in r.stdout and "differs from the proved final state" in " ".join(r.stdout.split())
