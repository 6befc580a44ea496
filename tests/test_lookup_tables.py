"""Lookup tables from the claims: every lookup's input clamped where its function saturates (spec/lookups.py,
models/bounded.py), so each table is exact, no value a run can reach leaves it, and no output moves."""
from __future__ import annotations

import math

import ezkl
import numpy as np
import pytest

from tests.test_onnx_models import ZOO, export
from zkpot.circuits import derive, pipeline
from zkpot.models import bounded, onnx_graph
from zkpot.models import step as step_mod
from zkpot.prover.config import RunConfig, resolve_model
from zkpot.prover.preregister import claims_of
from zkpot.spec import lookups
from zkpot.spec.artifacts import read_json
from zkpot.spec.layout import state_values


def ezkl_lookup(kind: str, x: int, s: float) -> int:
    """ezkl 22.3's table entry: round(f(x / S) * S) (src/tensor/ops.rs, nonlinearities)."""
    f = {"Exp": np.exp, "Sigmoid": lambda v: 1 / (1 + np.exp(-v)), "Tanh": np.tanh, "Erf": math.erf}[kind]
    with np.errstate(over="ignore"):   # (f64 as in Rust: exp overflows to inf, sigmoid then to 0)
        v = float(f(np.float64(x / s)) * s)
    return int(math.copysign(math.floor(abs(v) + 0.5), v))   # Rust's f64::round: half away from zero


@pytest.mark.parametrize("scale", [6, 8, 10])
@pytest.mark.parametrize("kind", lookups.KINDS)
def test_each_function_is_constant_beyond_its_clamp_and_not_long_before(kind, scale):
    lo, hi = lookups.saturation(kind, scale)
    for k in range(scale, 2 * scale + 1):   # every input scale the clamps claim to be exact for
        s = 2 ** k
        for edge in (lo, hi) if kind != "Exp" else (lo,):
            assert edge * s == int(edge * s)   # the clamp's constant is exact at every such scale
            at, far = ezkl_lookup(kind, int(edge * s), s), ezkl_lookup(kind, int(edge * s) * 1000, s)
            assert at == far, (kind, scale, k, edge)
    s = 2 ** (2 * scale)   # tight: at half the clamp the function still moves at the largest scale
    assert ezkl_lookup(kind, int(lo * s / 2), s) != ezkl_lookup(kind, int(lo * s), s)


@pytest.mark.parametrize("lookup, why", [
    ({"Cos": {"scale": 256.0}}, "Cos lookup, whose input no claim bounds"),
    ({"Exp": {"base": 2.718, "scale": 2.0 ** 17}}, r"beyond the 2\^16"),
])
def test_a_lookup_the_claims_cannot_bound_is_refused(lookup, why):
    with pytest.raises(lookups.UnboundedLookup, match=why):
        lookups.table_range([lookup], 8)


def test_an_exp_that_may_be_positive_is_refused_at_the_trace():
    import torch
    from torch.fx.experimental.proxy_tensor import make_fx

    gm = make_fx(lambda x: torch.exp(x * 2.0))(torch.zeros(3))
    with pytest.raises(bounded.UnboundedExp, match="may be positive"):
        bounded.bound_lookups(gm, 8)
    gm = make_fx(lambda x: torch.exp(-torch.relu(x)) + torch.exp(-(x * x)))(torch.zeros(3))
    bounded.bound_lookups(gm, 8)   # non-positive by construction: clamped below only


@pytest.mark.parametrize("name", ["tabular", "conv1d", "attention"])   # Erf + Exp; Sigmoid + Tanh + Exp; Softmax
def test_no_input_leaves_the_table_and_the_clamps_change_no_value(name, tmp_path, monkeypatch):
    """The derived circuit's table is the clamps' (the settings say so, computed from the lookups alone); an
    input far past the declared bounds (features 3x the bound, weights at it) keeps every lookup inside it and
    passes ezkl's mock prover; and the same step traced without clamps, its table calibrated on that very input,
    computes the same fixed-point state, felt for felt."""
    export(name, tmp_path / "m.onnx")
    module = onnx_graph.load_module(onnx_graph.register(tmp_path / "m.onnx"))
    cfg = RunConfig(model=resolve_model(str(tmp_path / "m.onnx")), loss=ZOO[name][2], batch_size=2, lr=0.25)
    claims, frozen = claims_of(cfg, module.features, module.outputs)
    onnx_file = derive.derived_onnx(claims, frozen)
    settings = read_json(derive.derived_settings(claims, onnx_file))
    assert settings["required_lookups"]
    assert tuple(settings["run_args"]["lookup_range"]) == lookups.table_range(settings["required_lookups"], claims["scale"])

    sample = [s[: len(s) // 8] for s in derive.public_samples(claims)]   # (salts and labels of a public sample)
    rng, (W, X) = np.random.default_rng(1), (claims["bounds"]["weights"], claims["bounds"]["features"])
    n, bf = state_values(sum(math.prod(s) for s in claims["layout"]["shapes"]), False), 2 * module.features
    sample[0] = (W * rng.choice([-1, 1], n)).tolist() + sample[0][n:]
    sample[1] = (3 * X * rng.choice([-1, 1], bf)).tolist() + sample[1][bf:]
    pipeline.write_input(tmp_path / "input.json", *sample)
    clamped = pipeline.gen_witness(tmp_path / "input.json", derive.derived_circuit(claims, onnx_file), tmp_path / "w.json")
    assert pipeline.lookup_overflow(clamped, settings) is None
    assert ezkl.mock(str(tmp_path / "w.json"), str(derive.derived_circuit(claims, onnx_file)))

    monkeypatch.setattr(step_mod, "bound_lookups", lambda gm, scale, domains=False: gm)
    raw = tmp_path / "raw"
    raw.mkdir()
    derive.trace(claims, derive.module_of(claims, frozen), raw / "step.onnx")
    pipeline.gen_settings(raw / "step.onnx", raw / "settings.json", claims["scale"],
                          tuple(settings["run_args"][k] for k in ("decomp_base", "decomp_legs")))
    pipeline.calibrate(tmp_path / "input.json", raw / "step.onnx", raw / "settings.json", claims["scale"], 20, 2)
    pipeline.compile_circuit(raw / "step.onnx", raw / "settings.json", raw / "circuit.ezkl")
    unclamped = pipeline.gen_witness(tmp_path / "input.json", raw / "circuit.ezkl", raw / "w.json")
    lo, hi = settings["run_args"]["lookup_range"]
    assert unclamped["min_lookup_inputs"] < lo or unclamped["max_lookup_inputs"] > hi   # the clamps did clamp
    assert clamped["outputs"] == unclamped["outputs"]
