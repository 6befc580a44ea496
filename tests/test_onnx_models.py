"""A practitioner's own model as an ONNX file (torch.onnx.export at its defaults), fine-tuned, proved and
verified VALID from the bundle alone; the graph bound to the claims (a weight, an attribute, a node); every
lowering of models/onnx_graph.py traced, compiled by ezkl and run in fixed point against float torch."""
from __future__ import annotations

import hashlib
import math
import shutil

import ezkl
import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

from tests.conftest import edit_manifest, rehash
from tests.test_cli import zkpot
from zkpot.circuits import derive, pipeline
from zkpot.models import onnx_graph
from zkpot.models.step import Optimizer, make_step
from zkpot.prover.config import RunConfig, resolve_model
from zkpot.prover.preregister import claims_of
from zkpot.prover.run import RunDir
from zkpot.spec.layout import state_values
from zkpot.verifier.verify import verify_bundle


# --- models someone else wrote, exported with the exporter's defaults -----------------------------

class Tabular(nn.Module):
    """Linear, LayerNorm, GELU and a residual add: a tabular MLP block."""

    def __init__(self, f=6):
        super().__init__()
        self.fc1, self.ln, self.fc2 = nn.Linear(f, f), nn.LayerNorm(f), nn.Linear(f, 1)

    def forward(self, x):
        return self.fc2(x + F.gelu(self.ln(self.fc1(x))))


class SmallCNN(nn.Module):
    """8x8 images: Conv2d, (BatchNorm,) ReLU, max or average pooling, a linear head."""

    def __init__(self, pool="max", bn=False):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.bn = nn.BatchNorm2d(2) if bn else nn.Identity()
        self.pool = nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2)
        self.fc = nn.Linear(32, 3)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(F.relu(self.bn(self.conv(x)))), 1))


class Signal(nn.Module):
    """1-D signals: Conv1d, Tanh, a Sigmoid-gated head."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv1d(2, 2, 3, padding=1), nn.Linear(12, 1)

    def forward(self, x):
        h = torch.tanh(self.conv(x)).flatten(1)
        return self.fc(h * torch.sigmoid(h))


class Attention(nn.Module):
    """One-head self-attention over 3 tokens of width 4, mean-pooled, a linear head."""

    def __init__(self, d=4):
        super().__init__()
        self.q, self.k, self.v, self.out = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, 2)
        self.d = d

    def forward(self, x):
        a = torch.softmax(self.q(x) @ self.k(x).transpose(-1, -2) / math.sqrt(self.d), dim=-1)
        return self.out((a @ self.v(x)).mean(dim=1))


ZOO = {  # name: (model, one example's shape, loss)
    "tabular": (Tabular, (6,), "bce"),
    "cnn-max": (lambda: SmallCNN("max"), (1, 8, 8), "ce"),
    "cnn-avg-bn": (lambda: SmallCNN("avg", bn=True), (1, 8, 8), "ce"),
    "conv1d": (Signal, (2, 6), "bce"),
    "attention": (Attention, (3, 4), "ce"),
}


def export(name: str, path, seed: int = 0):
    torch.manual_seed(seed)
    model, shape, _ = ZOO[name]
    m = model().eval()
    if isinstance(getattr(m, "bn", None), nn.BatchNorm2d):  # pretrained statistics, not the identity
        m.bn.running_mean.uniform_(-0.5, 0.5), m.bn.running_var.uniform_(0.5, 2.0)
    torch.onnx.export(m, (torch.randn(1, *shape),), str(path))  # torch 2.13's defaults: the dynamo exporter
    return m


@pytest.mark.parametrize("name", list(ZOO))
def test_the_interpreted_graph_is_the_exported_model(name, tmp_path):
    """The interpreter (every op of the table these models use) computes what torch computed, in float."""
    m = export(name, tmp_path / "m.onnx")
    module = onnx_graph.load_module(onnx_graph.register(tmp_path / "m.onnx"))
    x = torch.randn(5, *ZOO[name][1])
    with torch.no_grad():
        assert torch.allclose(module(x.reshape(5, -1)), m(x).reshape(5, -1), atol=1e-5)


@pytest.mark.parametrize("name", list(ZOO))
def test_each_lowering_proves_in_fixed_point_as_in_float(name, tmp_path):
    """The step of each model traced from its graph (the verifier's derivation), laid out by ezkl, run as a
    witness on a public sample and checked by ezkl's mock prover; the fixed-point state it computes is float
    torch's within a few quanta (2^-8) of scale 8."""
    export(name, tmp_path / "m.onnx")
    module = onnx_graph.load_module(onnx_graph.register(tmp_path / "m.onnx"))
    loss = ZOO[name][2]
    cfg = RunConfig(model=resolve_model(str(tmp_path / "m.onnx")), loss=loss, batch_size=2, lr=0.25)
    outputs = module.outputs
    claims, frozen = claims_of(cfg, module.features, outputs)
    onnx_file = derive.derived_onnx(claims, frozen)
    assert derive.derived_onnx(claims, frozen).read_bytes() == onnx_file.read_bytes()
    derive.derived_settings(claims, onnx_file)
    compiled = derive.derived_circuit(claims, onnx_file)
    samples = derive.public_samples(claims)
    one = [s[: len(s) // 8] for s in samples]   # the first of the 8 public samples
    pipeline.write_input(tmp_path / "input.json", *one)
    witness = pipeline.gen_witness(tmp_path / "input.json", compiled, tmp_path / "witness.json")
    assert ezkl.mock(str(tmp_path / "witness.json"), str(compiled))
    scale = claims["scale"]
    fixed = np.array([ezkl.felt_to_float(f, scale) for f in witness["outputs"][0]])
    from zkpot.models.step import Layout

    layout = Layout.from_dict(claims["layout"])
    step = make_step(module, loss, layout, Optimizer(lr=0.25))
    state, batch, salt = (torch.tensor(v, dtype=torch.float32) for v in one)
    with torch.no_grad():
        exact = step(state, batch, salt).numpy()
    n = state_values(layout.n_params, layout.momentum)
    # measured (lr 0.25, weights within +-2, features within +-4): 3-4 quanta for the convolutions and the
    # tabular block, 8.5 for attention (softmax of logits up to ~+-30 in fixed point); a wrong lowering moves
    # the update by lr x gradient, tens of quanta
    assert np.abs(fixed[:n] - exact[:n]).max() < 12 / 2 ** scale, name


# --- a run of a user's ONNX model, end to end ------------------------------------------------------

@pytest.fixture(scope="session")
def onnx_run(tmp_path_factory) -> RunDir:
    """zkpot train --model tabular.onnx on 8 rows, batches of 4, one epoch (2 step proofs), as a user runs it."""
    work = tmp_path_factory.mktemp("onnx_run")
    export("tabular", work / "tabular.onnx")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 6))
    (work / "rows.csv").write_text("a,b,c,d,e,f,label\n" + "".join(
        ",".join(f"{v:.4f}" for v in r) + f",{int(r[0] + r[1] > 0)}\n" for r in X))
    for args in (("train", "run", "--model", "tabular.onnx", "--data", "rows.csv", "--batch-size", "4", "--epochs", "1",
                  "--lr", "0.25"), ("setup", "run"), ("prove", "run")):
        r = zkpot(*args, cwd=work)
        assert r.returncode == 0, r.stderr[-2000:]
    return RunDir(work / "run")


def checks(public, **kw):
    report = verify_bundle(public, allow_insecure_dev_srs=True, **kw)
    return report, {f.check for f in report.failures}


def test_an_onnx_model_verifies_valid_on_a_machine_that_never_saw_it(onnx_run, tmp_path, monkeypatch):
    monkeypatch.setenv("ZKPOT_CACHE", str(tmp_path / "empty-cache"))
    report, failed = checks(onnx_run.public, srs=onnx_run.srs)
    assert report.verdict == "VALID", (failed, report.unbound, report.cannot_check)
    assert {"graph", "run", "circuit", "vk", "proofs", "base", "final"} <= {n for n, _ in report.passed}


def _edit_graph(public, edit, claim: bool, weights: bool = False):
    """Change base_model.onnx (and with `weights`, base_model.safetensors the same way); with `claim`, name
    the new graph in run.model.graph; the manifest re-sealed, as a cheating prover would."""
    model = onnx.load(str(public / "base_model.onnx"))
    edit(model)
    data = model.SerializeToString()
    (public / "base_model.onnx").write_bytes(data)
    if weights:
        from safetensors.numpy import load_file, save_file

        w = load_file(str(public / "base_model.safetensors"))
        w["fc2.bias"] = w["fc2.bias"] + np.float32(1 / 256)
        save_file(w, str(public / "base_model.safetensors"))
    if claim:
        edit_manifest(public, lambda m: m["run"]["model"].update(graph=hashlib.sha256(data).hexdigest()))
    rehash(public)


def _initializer(model, name):
    return next(t for t in model.graph.initializer if t.name == name)


def _bump_weight(model):
    t = _initializer(model, "fc2.bias")
    t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) + np.float32(1 / 256), t.name))


def _attribute(model):
    node = next(n for n in model.graph.node if n.op_type == "LayerNormalization")
    next(a for a in node.attribute if a.name == "epsilon").f = 1e-3


def _node(model):
    x = model.graph.input[0].name
    node = next(n for n in model.graph.node if n.op_type == "Add" and x in n.input)   # the residual add: x + ...
    node.op_type = "Sub"


@pytest.mark.parametrize("edit,claim,weights,check", [
    (_bump_weight, False, False, "graph"),    # one weight, the claims unchanged
    (_bump_weight, True, False, "base"),      # ... and named: the published base weights are not the graph's
    (_bump_weight, True, True, "circuit"),    # ... both changed: another claimed graph seeds other public samples
    (_attribute, True, False, "run"),         # LayerNorm's epsilon: another step graph
    (_node, True, False, "run"),              # the residual add made a subtraction
], ids=["weight", "weight-claimed", "weight-and-base", "attribute", "node"])
def test_a_bundle_whose_graph_differs_from_the_claimed_base_is_rejected(onnx_run, tmp_path, edit, claim, weights, check):
    public = tmp_path / "public"
    shutil.copytree(onnx_run.public, public)
    _edit_graph(public, edit, claim, weights)
    report, failed = checks(public, srs=onnx_run.srs)
    assert check in failed and report.verdict == "INVALID", (failed, report.passed)


def test_an_unsupported_op_is_refused_before_any_work_in_one_line(tmp_path):
    class Leaky(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 1)

        def forward(self, x):
            return self.fc(F.leaky_relu(x))

    torch.onnx.export(Leaky().eval(), (torch.randn(1, 3),), str(tmp_path / "leaky.onnx"))
    (tmp_path / "rows.csv").write_text("a,b,c,label\n" + "1,2,3,0\n" * 8)
    r = zkpot("train", "run", "--model", "leaky.onnx", "--data", "rows.csv", "--batch-size", "4", cwd=tmp_path)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "LeakyRelu" in lines[0] and "node" in lines[0] and "Relu" in lines[0], lines[0]
    assert not (tmp_path / "run").exists()


def test_the_graph_must_fit_the_data(tmp_path):
    export("tabular", tmp_path / "m.onnx")
    (tmp_path / "rows.csv").write_text("a,b,c,label\n" + "1,2,3,0\n" * 8)
    r = zkpot("train", "run", "--model", "m.onnx", "--data", "rows.csv", "--batch-size", "4", cwd=tmp_path)
    assert r.returncode == 2 and "takes 6 features" in r.stderr and "3 feature columns" in r.stderr, r.stderr
