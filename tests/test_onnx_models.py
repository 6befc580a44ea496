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
from zkpot.models.step import Optimizer, make_step, unflatten
from zkpot.prover.config import RunConfig, resolve_model
from zkpot.prover.preregister import claims_of
from zkpot.prover.run import RunDir
from zkpot.spec import protocol as P
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


class TwoHeads(nn.Module):
    """Two-head self-attention over 3 tokens of width 4: q, k, v and the heads cut from one projection by
    slicing (ONNX Slice), the heads concatenated."""

    def __init__(self, d=4):
        super().__init__()
        self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, 2)
        self.d = d

    def forward(self, x):
        h, d, half = self.qkv(x), self.d, self.d // 2
        q, k, v = h[..., :d], h[..., d:2 * d], h[..., 2 * d:]
        heads = [torch.softmax(q[..., i:i + half] @ k[..., i:i + half].transpose(-1, -2) / math.sqrt(half), dim=-1)
                 @ v[..., i:i + half] for i in (0, half)]
        return self.out(torch.cat(heads, dim=-1).mean(dim=1))


class PooledCNN(nn.Module):
    """8x8 images the way torch's older TorchScript exporter (dynamo=False) writes them: Conv2d,
    ReLU, a BatchNorm after the ReLU (no Conv to fold it into: a BatchNormalization node), GlobalAveragePool,
    Flatten. Its running variance is the fresh one, equal to its scale: the exporter shares the two (running_var =
    Identity(bn.weight)), and the statistics must still be constants."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3)
        self.pool, self.flat, self.fc = nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 3)
        self.bn.running_mean.uniform_(-0.5, 0.5)   # pretrained mean; the variance left at the scale's 1

    def forward(self, x):
        return self.fc(self.flat(self.pool(self.bn(F.relu(self.conv(x))))))


class RMSGate(nn.Module):
    """A hand-written block: RMS-normalize the centred features (Sub, Pow, ReduceSum, Sqrt, Div), an Erf
    squashing of them through a unit axis (Unsqueeze, Squeeze), and a Gaussian bump exp(-h * h) (Neg, Exp: a
    non-positive input); a linear head."""

    def __init__(self, f=4):
        super().__init__()
        self.fc1, self.g, self.fc2 = nn.Linear(f, f), nn.Parameter(torch.linspace(0.5, 1.5, f)), nn.Linear(f, 1)

    def forward(self, x):
        h = self.fc1(x)
        c = h - h.mean(-1, keepdim=True)
        r = c / torch.sqrt((c ** 2).sum(-1, keepdim=True) + 1e-2)
        u = torch.erf(r.unsqueeze(1) * self.g).squeeze(1)
        return self.fc2(u - torch.exp(-(h * h)))


ZOO = {  # name: (model, one example's shape, loss, ops its exported graph holds (asserted))
    "tabular": (Tabular, (6,), "bce", {"Gemm", "LayerNormalization", "Gelu", "Add"}),
    "cnn-max": (lambda: SmallCNN("max"), (1, 8, 8), "ce", {"Conv", "Relu", "MaxPool", "Reshape", "Gemm"}),
    # (its BatchNorm precedes the ReLU: the exporter folds it into the Conv; see "cnn-gap-bn")
    "cnn-avg-bn": (lambda: SmallCNN("avg", bn=True), (1, 8, 8), "ce", {"Conv", "Relu", "AveragePool", "Gemm"}),
    "cnn-gap-bn": (PooledCNN, (1, 8, 8), "ce", {"Identity", "Conv", "Relu", "BatchNormalization", "GlobalAveragePool",
                                                "Flatten", "Gemm"}),
    "conv1d": (Signal, (2, 6), "bce", {"Conv", "Tanh", "Sigmoid", "Mul", "Reshape", "Gemm"}),
    "rms-gate": (RMSGate, (4,), "bce", {"Gemm", "ReduceMean", "Sub", "Pow", "ReduceSum", "Add", "Sqrt", "Div",
                                        "Unsqueeze", "Mul", "Erf", "Squeeze", "Neg", "Exp"}),
    "attention": (Attention, (3, 4), "ce", {"Gemm", "MatMul", "Transpose", "Div", "Softmax", "ReduceMean"}),
    "attention-2heads": (TwoHeads, (3, 4), "ce", {"Gemm", "MatMul", "Slice", "Transpose", "Softmax", "Concat",
                                                  "ReduceMean"}),
}
EXPORTER = {"cnn-gap-bn": {"dynamo": False}}   # torch.onnx.export's keywords (default: none, the dynamo exporter)


def export(name: str, path, seed: int = 0):
    torch.manual_seed(seed)
    model, shape, *_ = ZOO[name]
    m = model().eval()
    if isinstance(m, SmallCNN) and isinstance(m.bn, nn.BatchNorm2d):  # pretrained statistics, not the identity
        m.bn.running_mean.uniform_(-0.5, 0.5), m.bn.running_var.uniform_(0.5, 2.0)
    torch.onnx.export(m, (torch.randn(1, *shape),), str(path), **EXPORTER.get(name, {}))  # torch 2.13's defaults
    return m


def test_the_zoo_puts_every_op_of_the_table_through_a_traced_step():
    """The ops each zoo model's exported graph holds (asserted where it is exported, below) cover the table: each
    op is run in fixed point by test_each_lowering_proves_in_fixed_point_as_in_float."""
    assert set().union(*(ops for *_, ops in ZOO.values())) == set(onnx_graph.OPS)


@pytest.mark.parametrize("name", list(ZOO))
def test_the_interpreted_graph_is_the_exported_model(name, tmp_path):
    """The interpreter (every op of the table these models use) computes what torch computed, in float."""
    m = export(name, tmp_path / "m.onnx")
    module = onnx_graph.load_module(onnx_graph.register(tmp_path / "m.onnx"))
    x = torch.randn(5, *ZOO[name][1])
    with torch.no_grad():
        assert torch.allclose(module(x.reshape(5, -1)), m(x).reshape(5, -1), atol=1e-5)


def test_batchnorm_statistics_an_exporter_shares_with_a_parameter_stay_constants(tmp_path):
    """The TorchScript exporter writes a BatchNorm's running variance equal to its scale as Identity(bn.weight):
    the statistic is still the model's constant (its value at export), bn.weight the parameter; the gradients
    are the user's model's (eval mode), not those of a model whose variance trains with its scale."""
    m = export("cnn-gap-bn", tmp_path / "m.onnx")
    graph = onnx.load(str(tmp_path / "m.onnx"))
    assert any(n.op_type == "Identity" and list(n.input) == ["bn.weight"] for n in graph.graph.node)
    module = onnx_graph.OnnxModule(graph)
    assert sorted(n for n, _ in module.named_parameters()) == sorted(n for n, _ in m.named_parameters())
    x = torch.randn(3, 1, 8, 8)
    module(x.reshape(3, -1)).square().sum().backward()
    m(x).square().sum().backward()
    theirs = dict(m.named_parameters())
    for n, p in module.named_parameters():
        assert torch.allclose(p.grad, theirs[n].grad, atol=1e-5), n


def zoo_module(claims, frozen):
    """The claims' module (adapters included), its frozen parameters at the graph's values."""
    from zkpot.models import zoo

    module = zoo.build(claims["model"])
    module.load_state_dict({**{n: torch.from_numpy(a) for n, a in frozen.items()},
                            **{n: p for n, p in module.named_parameters() if n not in frozen}})
    return module


@pytest.mark.parametrize("name,tuning", [(name, {}) for name in ZOO] + [(name, {"lora_rank": 1, "train": "*.lora_*"})
                                                                          for name in ("tabular", "attention")],
                         ids=list(ZOO) + ["tabular-lora", "attention-lora"])
def test_each_lowering_proves_in_fixed_point_as_in_float(name, tuning, tmp_path):
    """The step of each model traced from its graph (the verifier's derivation), laid out by ezkl, run as a
    witness on a public sample and checked by ezkl's mock prover; the fixed-point state it computes is float
    torch's within a few quanta (2^-8) of scale 8, from the model's own weights."""
    export(name, tmp_path / "m.onnx")
    ops = {n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node}
    assert ZOO[name][3] <= ops, (name, ZOO[name][3] - ops)   # what this case claims to put in fixed point
    module = onnx_graph.load_module(onnx_graph.register(tmp_path / "m.onnx"))
    loss = ZOO[name][2]
    cfg = RunConfig(model=resolve_model(str(tmp_path / "m.onnx")), loss=loss, batch_size=2, lr=0.25, **tuning)
    outputs = module.outputs
    claims, frozen = claims_of(cfg, module.features, outputs)
    onnx_file = derive.derived_onnx(claims, frozen)
    assert derive.derived_onnx(claims, frozen).read_bytes() == onnx_file.read_bytes()
    derive.derived_settings(claims, onnx_file)
    compiled = derive.derived_circuit(claims, onnx_file)
    samples = derive.public_samples(claims)
    one = [s[: len(s) // 8] for s in samples]   # the first of the 8 public samples (for its salts and labels)
    from zkpot.models.step import Layout, flatten

    layout = Layout.from_dict(claims["layout"])
    w = flatten(module if not tuning else zoo_module(claims, frozen), layout).tolist()
    one[0] = w + one[0][len(w):]                  # the model's own weights, as fine-tuning starts from them
    B, F = layout.batch_size, layout.features
    one[1] = np.random.default_rng(0).uniform(-1, 1, B * F).tolist() + one[1][B * F:]   # rows within +-1
    pipeline.write_input(tmp_path / "input.json", *one)
    witness = pipeline.gen_witness(tmp_path / "input.json", compiled, tmp_path / "witness.json")
    assert ezkl.mock(str(tmp_path / "witness.json"), str(compiled))
    scale = claims["scale"]
    fixed = np.array([ezkl.felt_to_float(f, scale) for f in witness["outputs"][0]])
    if tuning:   # adapters beside the Gemm weights, and the attention's MatMul weights (q, k, v: layers WEIGHT_T)
        module = zoo_module(claims, frozen)   # (the rest frozen at the graph's values): as the claims build it
        assert sorted(layout.names) == sorted(f"{x}.{ab}" for x in module.adaptable() for ab in ("lora_a", "lora_b"))
        assert len(layout.names) == {"tabular": 4, "attention": 8}[name], layout.names
        moved = unflatten(layout, torch.tensor(fixed[: layout.n_params], dtype=torch.float32))
        start = unflatten(layout, torch.tensor(one[0][: layout.n_params], dtype=torch.float32))
        # in fixed point as in float: A does not move (its gradient is zero while B is), B moves from zero (by less
        # than a quantum, in one step, where the gradient is small: the attention's q)
        assert all((moved[k] - v).abs().max() <= 2 ** -(scale + 1) for k, v in start.items() if k.endswith(".lora_a"))
        assert any(moved[k].any() for k in start if k.endswith(".lora_b")), moved
    step = make_step(module, loss, layout, Optimizer(lr=0.25))
    state, batch, salt = (torch.tensor(v, dtype=torch.float32) for v in one)
    with torch.no_grad():
        exact = step(state, batch, salt).numpy()
    n = state_values(layout.n_params, layout.momentum)
    # measured on the model's own weights, rows within +-1, lr 0.25 (public samples at the declared bounds, weights
    # +-2 and features +-4, gave up to 42 quanta on the CNNs: logits saturate the softmax's exp table)
    assert np.abs(fixed[:n] - exact[:n]).max() < 12 / 2 ** scale, name


# --- a run of a user's ONNX model, end to end ------------------------------------------------------

@pytest.fixture(scope="session")
def onnx_run(readme_onnx_run) -> RunDir:
    """The README's run of a user's ONNX model (LayerNorm, GELU; exported at torch's defaults), 2 step proofs."""
    return readme_onnx_run[0]


def checks(public, **kw):
    report = verify_bundle(public, allow_insecure_dev_srs=True, **kw)
    return report, {f.check for f in report.failures}


def test_an_onnx_model_verifies_valid_on_a_machine_that_never_saw_it(onnx_run, tmp_path, monkeypatch):
    monkeypatch.setenv("ZKPOT_CACHE", str(tmp_path / "empty-cache"))
    report, failed = checks(onnx_run.public, srs=onnx_run.srs)
    assert report.verdict == P.DEV_SRS_VALID, (failed, report.unbound, report.cannot_check)
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
        w["3.bias"] = w["3.bias"] + np.float32(1 / 256)
        save_file(w, str(public / "base_model.safetensors"))
    if claim:
        edit_manifest(public, lambda m: m["run"]["model"].update(graph=hashlib.sha256(data).hexdigest()))
    rehash(public)


def _initializer(model, name):
    return next(t for t in model.graph.initializer if t.name == name)


def _bump_weight(model):
    t = _initializer(model, "3.bias")   # the head's bias
    t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) + np.float32(1 / 256), t.name))


def _attribute(model):
    node = next(n for n in model.graph.node if n.op_type == "LayerNormalization")
    next(a for a in node.attribute if a.name == "epsilon").f = 1e-3


def _node(model):
    next(n for n in model.graph.node if n.op_type == "Gelu").op_type = "Tanh"   # another activation


@pytest.mark.parametrize("edit,claim,weights,check", [
    (_bump_weight, False, False, "graph"),    # one weight, the claims unchanged
    (_bump_weight, True, False, "base"),      # ... and named: the published base weights are not the graph's
    (_bump_weight, True, True, "base"),       # ... both changed: the same step (a trained weight is an input), but
                                              # the base commitment is not the published base weights' 
    (_attribute, True, False, "run"),         # LayerNorm's epsilon: another step graph
    (_node, True, False, "run"),              # GELU made Tanh
], ids=["weight", "weight-claimed", "weight-and-base", "attribute", "node"])
def test_a_bundle_whose_graph_differs_from_the_claimed_base_is_rejected(onnx_run, tmp_path, edit, claim, weights, check):
    public = tmp_path / "public"
    shutil.copytree(onnx_run.public, public)
    _edit_graph(public, edit, claim, weights)
    report, failed = checks(public, srs=onnx_run.srs)
    assert check in failed and report.verdict == "INVALID", (failed, report.passed)


def test_a_bundle_whose_graph_has_an_op_zkpot_cannot_map_is_invalid_at_graph(onnx_run, tmp_path):
    """A base graph with an op the interpreter has no mapping for (GELU made LeakyRelu, and named in the claims,
    the manifest re-sealed): INVALID at `graph`, naming the op, before anything is derived from it."""
    public = tmp_path / "public"
    shutil.copytree(onnx_run.public, public)
    _edit_graph(public, lambda model: setattr(next(n for n in model.graph.node if n.op_type == "Gelu"), "op_type",
                                              "LeakyRelu"), claim=True)
    report, failed = checks(public, srs=onnx_run.srs)
    assert report.verdict == "INVALID" and failed == {"graph"}, (failed, report.passed)
    assert "LeakyRelu" in str(report.failures[0]) and "not supported" in str(report.failures[0]), report.failures


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


def test_the_op_table_in_docs_is_the_codes():
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "docs" / "onnx-ops.md"
    assert page.read_text() == onnx_graph.op_table(), "regenerate: python -m zkpot.models.onnx_graph > docs/onnx-ops.md"


def test_export_makes_a_users_module_a_model_zkpot_binds(tmp_path):
    """`zkpot export file.py:Class`: the module (its seeded weights) as an ONNX model whose interpreted graph
    computes what the module does; a run of it then derives like any ONNX model."""
    (tmp_path / "net.py").write_text(
        "import torch\nclass Net(torch.nn.Module):\n    def __init__(self, in_features, out_features):\n"
        "        super().__init__()\n        self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)\n"
        "        self.head = torch.nn.Linear(32, out_features)\n    def forward(self, x):\n"
        "        return self.head(torch.relu(self.conv(x)).flatten(1))\n")
    r = zkpot("export", "net.py:Net", "net.onnx", "--features", "16", "--outputs", "3", "--shape", "1,4,4", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    from zkpot.models import zoo

    net = zoo.build({"name": f"{tmp_path / 'net.py'}:Net", "kwargs": {"in_features": 16, "out_features": 3}}, seed=0)
    module = onnx_graph.load_module(onnx_graph.register(tmp_path / "net.onnx"))
    x = torch.randn(4, 16)
    with torch.no_grad():
        assert torch.allclose(module(x), net(x.reshape(4, 1, 4, 4)), atol=1e-5)
    assert sorted(n for n, _ in module.named_parameters()) == sorted(n for n, _ in net.named_parameters())
    r = zkpot("export", "net.py:Nope", "x.onnx", "--features", "16", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "Nope" in r.stderr, r.stderr


# --- every op of the table, alone, against ONNX's own reference implementation ---------------------

def _f(*shape, positive=False):
    a = np.random.default_rng(len(shape) + sum(shape)).normal(size=shape).astype(np.float32)
    return np.abs(a) + 0.1 if positive else a


def _i(*values):
    return np.array(values, dtype=np.int64)


OP_CASES = {  # op: (input shape, attributes, further inputs (initializers, in order), positive input)
    "Gemm": ((1, 3), {"transB": 1}, [_f(2, 3), _f(2)]),
    "MatMul": ((1, 3), {}, [_f(3, 2)]),
    "Add": ((1, 3), {}, [_f(3)]), "Sub": ((1, 3), {}, [_f(3)]), "Mul": ((1, 3), {}, [_f(3)]),
    "Div": ((1, 3), {}, [_f(3, positive=True)]),
    "Neg": ((1, 3), {}, []), "Identity": ((1, 3), {}, []), "Relu": ((1, 3), {}, []), "Sigmoid": ((1, 3), {}, []),
    "Tanh": ((1, 3), {}, []), "Exp": ((1, 3), {}, []), "Erf": ((1, 3), {}, []),
    "Sqrt": ((1, 3), {}, [], True), "Pow": ((1, 3), {}, [np.array(2.0, np.float32)]),
    "Gelu": ((1, 3), {}, []),
    "LayerNormalization": ((1, 4), {"axis": -1}, [_f(4), _f(4)]),
    "BatchNormalization": ((1, 2, 3, 3), {}, [_f(2), _f(2), _f(2), _f(2, positive=True)]),
    "Softmax": ((1, 4), {"axis": -1}, []),
    "Reshape": ((1, 6), {}, [_i(1, 2, 3)]),
    "Flatten": ((1, 2, 3), {"axis": 1}, []),
    "Transpose": ((1, 2, 3), {"perm": [0, 2, 1]}, []),
    "Unsqueeze": ((1, 3), {}, [_i(2)]), "Squeeze": ((1, 3, 1), {}, [_i(2)]),
    "Concat": ((1, 3), {"axis": 1}, [_f(1, 2)]),
    "Slice": ((1, 2, 6), {}, [_i(1, -1), _i(6, 0), _i(2, 1), _i(2, -1)]),   # every 2nd from 1; the 2nd axis reversed
    "ReduceMean": ((1, 2, 3), {"keepdims": 0}, [_i(2)]), "ReduceSum": ((1, 2, 3), {"keepdims": 1}, [_i(1)]),
    "Conv": ((1, 1, 4, 4), {"pads": [1, 1, 1, 1], "strides": [1, 1]}, [_f(2, 1, 3, 3), _f(2)]),
    "Conv/stride-2-pad-0": ((1, 1, 5, 5), {"strides": [2, 2]}, [_f(2, 1, 3, 3), _f(2)]),
    "Conv/strides-2-1-pads-uneven": ((1, 2, 5, 4), {"strides": [2, 1], "pads": [1, 0, 0, 2]}, [_f(3, 2, 2, 3)]),
    "Conv/1d-stride-2-pad-0": ((1, 2, 7), {"strides": [2]}, [_f(2, 2, 3), _f(2)]),
    "Conv/1d-stride-2-pads-uneven": ((1, 1, 6), {"strides": [2], "pads": [2, 1]}, [_f(2, 1, 3)]),
    "MaxPool": ((1, 1, 4, 4), {"kernel_shape": [2, 2], "strides": [2, 2]}, []),
    "AveragePool": ((1, 1, 4, 4), {"kernel_shape": [2, 2], "strides": [2, 2]}, []),
    "GlobalAveragePool": ((1, 2, 3, 3), {}, []),
}


def _one_op_model(op: str) -> tuple[onnx.ModelProto, np.ndarray]:
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    shape, attrs, extra, *positive = OP_CASES[op]
    op = op.split("/")[0]   # (a further case of the op: "Conv/stride-2-pad-0")
    names = [f"c{i}" for i in range(len(extra))]
    inits = [numpy_helper.from_array(a, n) for a, n in zip(extra, names)]

    def model(out_shape):
        node = helper.make_node(op, ["x", *names], ["y"], name=f"the_{op}", **attrs)
        g = helper.make_graph([node], op, [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)])

    x = _f(*shape, positive=bool(positive))
    y = ReferenceEvaluator(model(None)).run(None, {"x": x})[0]
    return model(list(y.shape)), (x, y)


def test_every_op_of_the_table_has_a_case():
    assert {case.split("/")[0] for case in OP_CASES} == set(onnx_graph.OPS)


@pytest.mark.parametrize("op", sorted(OP_CASES))
def test_each_op_computes_what_onnx_defines(op):
    """The interpreter against onnx.reference (ONNX's own executable definition), one op at a time."""
    model, (x, y) = _one_op_model(op)
    module = onnx_graph.OnnxModule(model)
    with torch.no_grad():
        got = module(torch.from_numpy(x).reshape(1, -1)).numpy().reshape(-1)
    assert np.allclose(got, y.reshape(-1), atol=1e-5), (got, y)


@pytest.mark.parametrize("op", sorted(onnx_graph.REFUSED) + ["NonMaxSuppression"])
def test_an_op_without_a_mapping_is_refused_naming_it_and_the_alternative(op):
    from onnx import TensorProto, helper

    node = helper.make_node(op, ["x"], ["y"], name="the_node")
    g = helper.make_graph([node], op, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    with pytest.raises(onnx_graph.GraphError) as e:
        onnx_graph.OnnxModule(helper.make_model(g))
    assert f"ONNX op {op} (node 'the_node')" in str(e.value)
    assert onnx_graph.REFUSED.get(op, onnx_graph.NEAREST) in str(e.value)


def _graph(nodes, x_shape, y_shape, inits=(), inputs=None, outputs=None, opset=20):
    from onnx import TensorProto, helper

    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)]
    outputs = outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)]
    inits = [numpy_helper.from_array(a, n) for n, a in inits]
    return helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, inits),
                             opset_imports=[helper.make_opsetid("", opset)])


def _one_node(op, x_shape, inits=(), **attrs):
    from onnx import helper

    node = helper.make_node(op, ["x", *(n for n, _ in inits)], ["y"], name="the_node", **attrs)
    return _graph([node], x_shape, [1, 1], inits)   # (the output's declared shape: not what is refused)


def _io(n_in, n_out, x_dims=(1, 3), batch_dims=None):
    from onnx import TensorProto, helper

    ins = [helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, list(x_dims)) for i in range(n_in)]
    outs = [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, list(x_dims)) for i in range(n_out)]
    nodes = [helper.make_node("Relu", [f"x{min(i, n_in - 1)}"], [f"y{i}"]) for i in range(n_out)]
    return _graph(nodes, None, None, inputs=ins, outputs=outs)


_W, _STATS = [("w", _f(2, 1, 3, 3))], [(n, _f(2, positive=True)) for n in "sbmv"]   # (scale, bias, mean, var)
_COMPUTED_MEAN = _graph([onnx.helper.make_node("ReduceMean", ["x"], ["m"], keepdims=0, axes=[0, 2, 3]),
                         onnx.helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])],
                        (1, 2, 3, 3), [1, 1], [_STATS[i] for i in (0, 1, 3)], opset=17)
REFUSALS = {  # what zkpot cannot compute: (the graph, what the one line says)
    "conv-grouped": (_one_node("Conv", (1, 2, 4, 4), [("w", _f(2, 1, 3, 3))], group=2), "grouped or dilated"),
    "conv-dilated": (_one_node("Conv", (1, 1, 6, 6), _W, dilations=[2, 2]), "grouped or dilated"),
    "conv-auto-pad": (_one_node("Conv", (1, 1, 4, 4), _W, auto_pad="SAME_UPPER"), "auto_pad SAME_UPPER"),
    "conv-3d": (_one_node("Conv", (1, 1, 3, 3, 3), [("w", _f(1, 1, 2, 2, 2))]), "1-D and 2-D"),
    "maxpool-overlapping": (_one_node("MaxPool", (1, 1, 4, 4), kernel_shape=[2, 2], strides=[1, 1]),
                            "stride other than the kernel"),
    "avgpool-padded": (_one_node("AveragePool", (1, 1, 4, 4), kernel_shape=[2, 2], pads=[1, 1, 1, 1]),
                       "padding, ceil mode"),
    "maxpool-ceil-mode": (_one_node("MaxPool", (1, 1, 5, 5), kernel_shape=[2, 2], ceil_mode=1), "padding, ceil mode"),
    "maxpool-remainder": (_one_node("MaxPool", (1, 1, 5, 5), kernel_shape=[2, 2]), "leaves a remainder"),
    "avgpool-1d": (_one_node("AveragePool", (1, 1, 4), kernel_shape=[2]), "2-D maps"),
    "batchnorm-training": (_one_node("BatchNormalization", (1, 2, 3, 3), _STATS, training_mode=1), "training mode"),
    "batchnorm-computed-statistics": (_COMPUTED_MEAN, "running statistic 'm' is computed by the graph"),
    "two-inputs": (_io(2, 1), "one input and one output; this one has 2 input(s) and 1 output(s)"),
    "two-outputs": (_io(1, 2), "one input and one output; this one has 1 input(s) and 2 output(s)"),
    "dynamic-dims": (_io(1, 1, ("N", "F")), "dynamic dimensions"),
    "batch-2": (_io(1, 1, (2, 3)), "export it at batch 1"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_what_the_interpreter_cannot_compute_is_refused_in_one_line(case):
    """Each shape of an op (or of the graph) that the lowerings do not compute is a GraphError of one line saying
    what and what to do, where the graph is loaded or first run (zkpot train runs it before any work), never a
    silently different value or another exception."""
    model, says = REFUSALS[case]
    with pytest.raises(onnx_graph.GraphError) as e:
        module = onnx_graph.OnnxModule(model)
        module(torch.zeros(1, module.features))
    assert says in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_a_prediction_of_the_onnx_model_verifies(onnx_run, tmp_path):
    """zkpot infer on the ONNX run's final model: the inference circuit is derived from the same graph."""
    (tmp_path / "in.csv").write_text("\n".join(",".join(["0.5"] * 8) for _ in range(2)) + "\n")
    assert zkpot("infer", onnx_run.root, tmp_path / "in.csv", "--out", tmp_path / "pred", cwd=tmp_path).returncode == 0
    report, failed = checks(onnx_run.public, inference=tmp_path / "pred")
    assert report.verdict == P.DEV_SRS_VALID and {"infer-circuit", "infer-proof", "weights", "prediction"} <= {
        n for n, _ in report.passed}, failed


def test_fine_tuning_an_onnx_models_head_freezes_the_rest_as_named_constants(tmp_path):
    """--train '3.*' over the initializers' names: the head trains, the body's initializers become constants
    of the step graph, named in the claims and bound by their sha256."""
    from zkpot.spec.weights import frozen_digest

    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8), nn.GELU(), nn.Linear(8, 1)).eval()
    torch.onnx.export(m, (torch.randn(1, 8),), str(tmp_path / "m.onnx"))
    graph = resolve_model(str(tmp_path / "m.onnx"))
    head, full = (claims_of(RunConfig(model=graph, batch_size=4, train=t), 8, 1) for t in ("3.*", "*"))
    (claims, frozen), (all_claims, _) = head, full
    assert list(claims["layout"]["names"]) == ["3.weight", "3.bias"] and list(frozen) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert claims["frozen"]["sha256"] == frozen_digest({n: p.detach().numpy() for n, p in m.named_parameters()
                                                        if not n.startswith("3.")})
    assert derive.derived_onnx(claims, frozen).read_bytes() != derive.derived_onnx(all_claims, None).read_bytes()


def test_a_bundle_graph_referring_to_external_data_is_refused(onnx_run, tmp_path):
    """The verifier reads no file beside the bundle's graph: a graph whose weights live "elsewhere" (any path)
    is refused at `graph`, whatever that file holds."""
    from onnx.external_data_helper import convert_model_to_external_data

    public = tmp_path / "public"
    shutil.copytree(onnx_run.public, public)
    model = onnx.load(str(public / "base_model.onnx"))
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    onnx.save(model, str(public / "base_model.onnx"))
    edit_manifest(public, lambda m: m["run"]["model"].update(graph=hashlib.sha256((public / "base_model.onnx").read_bytes()).hexdigest()))
    rehash(public)
    report, failed = checks(public, srs=onnx_run.srs)
    assert failed == {"graph"} and "external data" in str(report.failures[0]), report.failures


@pytest.mark.parametrize("names", [["a-b", "a_b"], ["nodes"], ["run"], ["forward.weight"], ["training"]])
def test_initializer_names_that_would_alias_are_refused(names):
    """Two initializers on one parameter name, or one on the module's own attributes, would silently train
    (or break) the wrong tensor: refused."""
    from onnx import TensorProto, helper

    inits = [numpy_helper.from_array(np.ones(3, np.float32), n) for n in names]
    node = helper.make_node("Add", ["x", names[0]], ["y"])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    with pytest.raises(onnx_graph.GraphError, match="initializer"):
        onnx_graph.OnnxModule(helper.make_model(g))
