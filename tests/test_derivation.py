"""The derivation's choice of range-check decomposition: a smaller table only where it lowers logrows."""
from __future__ import annotations

import json

import pytest

from zkpot.circuits import derive, pipeline
from zkpot.spec import protocol as P


def fake_ezkl(monkeypatch, logrows_of: dict, calls: list):
    """gen_settings and calibrate as a circuit whose logrows per decomposition base is `logrows_of`
    (a missing base: calibrate fails, as ezkl does past MAX_LOGROWS)."""
    def gen_settings(onnx, settings, scale, decomposition, outputs):
        assert outputs == "hashed"  # a training step's outputs are commitments, never public values
        settings.write_text(json.dumps({"run_args": {"decomp_base": decomposition[0], "decomp_legs": decomposition[1]},
                                        "required_lookups": []}))

    def calibrate(samples, onnx, settings, scale, max_logrows, margin):
        s = json.loads(settings.read_text())
        base = s["run_args"]["decomp_base"]
        calls.append(base)
        if base not in logrows_of:
            raise pipeline.CircuitError("ezkl calibrate_settings failed: no logrows fits")
        s["run_args"]["logrows"] = logrows_of[base]
        settings.write_text(json.dumps(s))
        return s

    monkeypatch.setattr(pipeline, "gen_settings", gen_settings)
    monkeypatch.setattr(pipeline, "calibrate", calibrate)
    monkeypatch.setattr(derive, "public_samples", lambda claims: [[0.0]])


@pytest.mark.parametrize("logrows_of, chosen, tried", [
    ({16384: 15, 8192: 14, 4096: 13, 2048: 13, 1024: 13}, 4096, [16384, 8192, 4096, 2048]),  # the tests' circuit
    ({16384: 15, 8192: 15, 4096: 15}, 16384, [16384, 8192]),          # set by Poseidon: 16384 stands
    ({16384: 19, 8192: 19}, 16384, [16384]),                           # 16,384 rows cannot set logrows 19
    ({16384: 15, 8192: 14}, 8192, [16384, 8192, 4096]),                # more legs fail: the last that fit stands
    ({16384: 15, 8192: 16}, 16384, [16384, 8192]),                     # more rows, higher: never kept
])
def test_a_smaller_table_only_where_it_lowers_logrows(monkeypatch, tmp_path, logrows_of, chosen, tried):
    calls = []
    fake_ezkl(monkeypatch, logrows_of, calls)
    out = tmp_path / "settings.json"
    derive.settings_for({"scale": 8}, tmp_path / "step.onnx", out)
    s = json.loads(out.read_text())["run_args"]
    assert (s["decomp_base"], calls) == (chosen, tried)
    assert (s["decomp_base"], s["decomp_legs"]) in P.DECOMPOSITIONS


def test_a_circuit_no_decomposition_fits_is_refused(monkeypatch, tmp_path):
    fake_ezkl(monkeypatch, {}, [])
    with pytest.raises(pipeline.CircuitError, match="no logrows fits"):
        derive.settings_for({"scale": 8}, tmp_path / "step.onnx", tmp_path / "settings.json")
    assert not (tmp_path / "settings.json").exists()


def test_every_decomposition_covers_a_salt_word():
    """Inputs are range-checked by the decomposition: a 24-bit salt word must fit every one."""
    for base, legs in P.DECOMPOSITIONS:
        assert base ** legs >= 2 ** 26 > 2 ** P.SALT_BITS
    assert [b for b, _ in P.DECOMPOSITIONS] == sorted((b for b, _ in P.DECOMPOSITIONS), reverse=True)


@pytest.mark.parametrize("seen, fits", [
    ((-100, 0), True), ((-100, 50), True),            # inside, and both edges of the table
    ((-101, 0), False), ((-100, 51), False), ((-5000, 5000), False),
])
def test_a_lookup_input_outside_the_table_is_named(seen, fits):
    """train and infer refuse such a witness before proving (ezkl's witness generation does not)."""
    why = pipeline.lookup_overflow({"min_lookup_inputs": seen[0], "max_lookup_inputs": seen[1]},
                                   {"run_args": {"lookup_range": [-100, 50]}})
    assert (why is None) == fits
    if not fits:
        assert f"[{seen[0]}, {seen[1]}]" in why and "[-100, 50]" in why
