"""An ONNX model's fine-tuning paths on real proofs: low-rank adapters beside its MatMul and Gemm weights, and a
module of one's own made an ONNX model by `zkpot export`; each run verified VALID (on the suite's dev SRS) and
attacked. The adapter's lowering is checked in float here and in ezkl's fixed point by
tests/test_onnx_models.py (test_each_lowering_proves_in_fixed_point_as_in_float[attention-lora])."""
from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from safetensors.numpy import load_file, save_file

from tests.conftest import SMALL, edit_manifest, make_run, rehash
from tests.test_cli import zkpot
from tests.test_onnx_models import export
from zkpot.models import onnx_graph
from zkpot.models.step import Optimizer, flatten, layout_of, make_step, select, unflatten
from zkpot.prover import train as tr
from zkpot.prover.config import resolve_model
from zkpot.prover.prove import prove_all
from zkpot.prover.run import RunDir
from zkpot.spec import protocol as P
from zkpot.spec.weights import merge_adapters
from zkpot.verifier.verify import verify_bundle


def checks(public, **kw):
    report = verify_bundle(public, allow_insecure_dev_srs=True, **kw)
    return report, {f.check for f in report.failures}


# --- adapters beside a MatMul weight, in float ---------------------------------------------------

def _matmul_weights(graph) -> dict[str, tuple[int, int]]:
    inits = {t.name: tuple(t.dims) for t in graph.graph.initializer}
    return {n.input[1]: inits[n.input[1]] for n in graph.graph.node if n.op_type == "MatMul" and n.input[1] in inits}


def test_adapters_sit_beside_matmul_weights_in_their_orientation(tmp_path):
    """torch's Linear on 3-D input exports a MatMul by an (in, out) initializer: --lora adapts it as layer WEIGHT_T
    (A rank x in, B out x rank, as beside a Linear's (out, in) weight). At init (B = 0) the adapted graph computes
    what the base graph computes; an SGD step on the adapters alone (the frozen weights constants of the step)
    moves B only (A's gradient is zero at B = 0); and the merged release (spec/weights.py: W + (B A)^T for such a
    weight) computes what the adapted graph computes, on square weights (the attention's q, k, v), where the wrong
    orientation would still have the right shape."""
    export("attention", tmp_path / "m.onnx")
    graph = onnx.load(str(tmp_path / "m.onnx"))
    weights = _matmul_weights(graph)
    assert len(weights) == 3 and all(s == (4, 4) for s in weights.values()), weights   # q, k, v: (in, out), square
    base = onnx_graph.OnnxModule(graph)
    layers = base.adaptable()
    assert sorted(layers) == sorted([onnx_graph._ident(w) + "_T" for w in weights] + ["out"]), layers
    module = onnx_graph.OnnxModule(graph)
    module.add_adapters(2, layers)
    params = dict(module.named_parameters())
    for w in weights:
        layer = onnx_graph._ident(w) + "_T"
        assert params[f"{layer}.lora_a"].shape == (2, 4) and not params[f"{layer}.lora_b"].any()
    x = torch.randn(5, 12)
    with torch.no_grad():
        assert torch.equal(module(x), base(x))

    layout = layout_of(module, 4, 12, 2, False, select(module, "*.lora_*"))
    assert all(n.endswith((".lora_a", ".lora_b")) for n in layout.names) and len(layout.names) == 2 * len(layers)
    step = make_step(module, "ce", layout, Optimizer(lr=0.5))
    state = flatten(module, layout)
    batch = torch.cat([torch.randn(4 * 12), torch.eye(2)[torch.tensor([0, 1, 1, 0])].reshape(-1)])
    new = unflatten(layout, step(torch.cat([state, torch.zeros(P.SALT_WORDS)]), batch, torch.zeros(P.SALT_WORDS))
                    [: layout.n_params].detach())
    for n, p in unflatten(layout, state).items():
        assert torch.equal(new[n], p) if n.endswith(".lora_a") else not torch.equal(new[n], p), n

    with torch.no_grad():   # B away from zero: the merged release is the adapted model
        for n, p in module.named_parameters():
            if n.endswith(".lora_b"):
                p.copy_(torch.randn_like(p))
        merged = merge_adapters({n: p.detach().numpy() for n, p in module.named_parameters()}, layers)
        plain = onnx_graph.OnnxModule(graph)
        plain.load_state_dict({n: torch.from_numpy(a) for n, a in merged.items()})
        assert torch.allclose(plain(x), module(x), atol=1e-5)


@pytest.mark.parametrize("layer, says", [
    ("conv", "Conv (node"),                   # a Conv's weight: its node and op named
    ("nope", "names no weight"),              # a layer name that is nothing of the graph
])
def test_what_cannot_take_an_adapter_is_refused_in_one_line(tmp_path, layer, says):
    export("cnn-max", tmp_path / "m.onnx")
    module = onnx_graph.OnnxModule(onnx.load(str(tmp_path / "m.onnx")))
    with pytest.raises(onnx_graph.GraphError) as e:
        module.add_adapters(1, [layer])
    assert says in str(e.value) and "\n" not in str(e.value) and "fc" in str(e.value), str(e.value)


def test_train_refuses_an_adapter_on_a_conv_in_one_line(tmp_path):
    """Through `zkpot train`: exit 2, one line naming the layer, the op and its node, before any work."""
    from tests.adversarial.test_bad_input import one_error_line

    export("cnn-max", tmp_path / "m.onnx")
    (tmp_path / "rows.csv").write_text(",".join(f"x{i}" for i in range(64)) + ",label\n" + ("0," * 64 + "1\n") * 8)
    r = zkpot("train", "run", "--model", "m.onnx", "--data", "rows.csv", "--loss", "ce", "--classes", "3",
              "--batch-size", "4", "--lora", "1", "--lora-layers", "conv", cwd=tmp_path)
    one_error_line(r, "adapter layer 'conv'", "Conv (node", "fc")
    assert not (tmp_path / "run" / "public").exists()


@pytest.mark.parametrize("by", ["weight", "module"])
def test_a_matmul_weight_named_otherwise_says_its_layer_name(tmp_path, by):
    """Named by its initializer's own name, or by the torch module's (the attention's `q`, whose bias keeps its
    name): the one line says the layer's name."""
    export("attention", tmp_path / "m.onnx")
    graph = onnx.load(str(tmp_path / "m.onnx"))
    q = next(n.input[1] for n in graph.graph.node if n.op_type == "MatMul" and n.output[0] in
             {m.input[0] for m in graph.graph.node if m.op_type == "Add" and "q.bias" in m.input})
    module = onnx_graph.OnnxModule(graph)
    with pytest.raises(onnx_graph.GraphError, match=f"'{onnx_graph._ident(q)}_T'"):
        module.add_adapters(1, [onnx_graph._ident(q) if by == "weight" else "q"])


def test_a_weight_the_graph_also_uses_elsewhere_takes_no_adapter():
    """A MatMul weight that another node also reads (tied weights): an adapter beside the MatMul alone would not be
    the merged model's W + delta everywhere, so it is refused, naming that node and op."""
    from onnx import TensorProto, helper

    w = numpy_helper.from_array(np.ones((3, 3), np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
             helper.make_node("Add", ["h", "w"], ["y"], name="tied")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 3])], [w])
    module = onnx_graph.OnnxModule(helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)]))
    assert module.adaptable() == []
    with pytest.raises(onnx_graph.GraphError, match="Add \\(node 'tied'\\)"):
        module.add_adapters(1, ["w_T"])


# --- a module of one's own, exported by `zkpot export`, fine-tuned with adapters, on real proofs ----

NET = """import torch


class Tokens(torch.nn.Module):
    \"\"\"Tokens of 4 values: a Linear on them (a MatMul once exported), ReLU, a mean over the tokens, a head.\"\"\"

    def __init__(self, in_features, out_features):
        super().__init__()
        self.proj, self.head = torch.nn.Linear(4, 2), torch.nn.Linear(2, out_features)

    def forward(self, x):
        return self.head(torch.relu(self.proj(x)).mean(dim=1))
"""


@pytest.fixture(scope="module")
def export_run(tmp_path_factory) -> tuple[RunDir, bytes]:
    """One run for both paths, the suite's cost in mind: `zkpot export tokens.py:Tokens` (the CLI; two tokens of 4:
    its Linear on tokens a MatMul by an (in, out) initializer, its head a Gemm), then rank-1 adapters beside both
    weights, only they train; 8 rows, batches of 4, 1 epoch: 2 step proofs. (The ONNX model's file: the bytes
    `zkpot export` wrote.)"""
    root = tmp_path_factory.mktemp("export_lora")
    (root / "tokens.py").write_text(NET)
    r = zkpot("export", "tokens.py:Tokens", "tokens.onnx", "--features", SMALL["features"], "--shape", "2,4", cwd=root)
    assert r.returncode == 0, r.stderr
    model = resolve_model(str(root / "tokens.onnx"))
    return make_run(root / "run", model=model, lora_rank=1, train="*.lora_*", epochs=1), (root / "tokens.onnx").read_bytes()


def test_an_exported_module_verifies_valid_through_the_cli(export_run, tmp_path):
    """The bundle's graph is the file `zkpot export` wrote, and `zkpot verify` says VALID ON AN INSECURE DEV SRS
    (exit 6: the suite's dev SRS; every claim bound)."""
    run, exported = export_run
    assert (run.public / P.BASE_GRAPH).read_bytes() == exported
    r = zkpot("verify", run.public, "--allow-insecure-dev-srs", cwd=tmp_path)
    assert r.returncode == P.EXIT[P.DEV_SRS_VALID], r.stdout[-2000:] + r.stderr[-2000:]


def test_an_onnx_models_adapters_verify_valid_and_only_they_move(export_run):
    """Adapters beside the MatMul's weight (layer WEIGHT_T) and the Gemm's (head): VALID; B starts at zero and
    moves, no frozen weight moves; the merged release is checked by check-model and computes what the adapted
    model computes."""
    run, _ = export_run
    report, failed = checks(run.public)
    assert report.verdict == P.DEV_SRS_VALID, (failed, report.failures, report.unbound)
    m = json.loads((run.public / P.MANIFEST).read_text())
    layers = m["run"]["model"]["adapters"]["layers"]
    assert m["run"]["model"]["adapters"]["rank"] == 1 and len(layers) == 2 and "head" in layers, layers
    (matmul,) = [x for x in layers if x != "head"]
    assert matmul.endswith("_T") and sorted(m["run"]["layout"]["shapes"]) == sorted([[1, 4], [2, 1], [1, 2], [1, 1]])
    assert set(m["run"]["layout"]["names"]) == {f"{x}.{ab}" for x in layers for ab in ("lora_a", "lora_b")}
    base, final = load_file(str(run.base_model)), load_file(str(run.final_model))
    for x in layers:
        assert not base[f"{x}.lora_b"].any() and final[f"{x}.lora_b"].any(), x
    for n in m["run"]["frozen"]["names"]:
        assert np.array_equal(final[n], base[n]), n
    # the merged release: check-model recomputes it from the opened final state (W + (B A)^T beside the MatMul)
    merged = verify_bundle(run.public, allow_insecure_dev_srs=True, model=run.final_merged, opening=run.final_opening)
    assert merged.ok and any(c == "model" and "adapters merged" in d for c, d in merged.passed), merged.failures
    # ... and it is the adapted model: the base graph with the merged weights computes what the adapters compute
    from zkpot.models import zoo

    adapted = zoo.build(m["run"]["model"])
    adapted.load_state_dict({n: torch.from_numpy(a) for n, a in final.items()})
    plain = onnx_graph.load_module(m["run"]["model"]["graph"])
    plain.load_state_dict({n: torch.from_numpy(a) for n, a in load_file(str(run.final_merged)).items()})
    x = torch.randn(6, 8)
    with torch.no_grad():
        assert torch.allclose(plain(x), adapted(x), atol=1e-5)


def test_a_prediction_of_an_onnx_model_with_adapters_verifies(export_run, tmp_path):
    """`zkpot infer` on the adapted ONNX run (a MatMul's adapter and the Gemm's): its inference circuit is derived
    from the same graph and adapters, its prediction bound to the run's final state; the prediction is what the
    merged release computes in float (to the fixed point's error)."""
    run, _ = export_run
    rows = np.random.default_rng(1).uniform(-1, 1, (2, 8)).round(3)
    (tmp_path / "in.csv").write_text("\n".join(",".join(map(str, r)) for r in rows) + "\n")
    r = zkpot("infer", run.root, tmp_path / "in.csv", "--out", tmp_path / "pred", cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    report, failed = checks(run.public, inference=tmp_path / "pred")
    assert report.verdict == P.DEV_SRS_VALID and {"infer-circuit", "infer-proof", "weights", "prediction"} <= {
        n for n, _ in report.passed}, (failed, report.failures)
    m = json.loads((run.public / P.MANIFEST).read_text())
    plain = onnx_graph.load_module(m["run"]["model"]["graph"])
    plain.load_state_dict({n: torch.from_numpy(a) for n, a in load_file(str(run.final_merged)).items()})
    with torch.no_grad():
        want = plain(torch.tensor(rows, dtype=torch.float32)).numpy().ravel()
    got = np.array(report.prediction, dtype=float).ravel()
    assert got.shape == want.shape and np.allclose(got, want, atol=0.05), (got, want)


@pytest.mark.parametrize("shapes", ["as they were", "adjusted to it"])
def test_an_onnx_adapter_of_another_rank_is_rejected_at_run(export_run, tmp_path, shapes):
    """The claims name rank 2 (the layout's shapes left, or made rank 2's): not the published step (`run`)."""
    public = tmp_path / "public"
    shutil.copytree(export_run[0].public, public)

    def claim(m):
        m["run"]["model"]["adapters"].update(rank=2)
        if shapes == "adjusted to it":   # lora_a (rank, in), lora_b (out, rank)
            lay = m["run"]["layout"]
            lay["shapes"] = [[2, s[1]] if n.endswith("lora_a") else [s[0], 2] for n, s in zip(lay["names"], lay["shapes"])]
    edit_manifest(public, claim)
    rehash(public)
    report, failed = checks(public)
    assert report.verdict == "INVALID" and failed == {"run"}, (failed, report.passed)


def test_an_adapter_that_does_not_start_at_zero_is_rejected_at_base(export_run, tmp_path):
    """A prover who starts an adapter at B != 0 starts from another model than the graph's (W + B A), and can prove
    every step honestly from there (here: the run's own circuit, keys and data, its steps proved again from that
    base); the claims say adapters beside the graph's weights, which start at B = 0: rejected at `base`."""
    root = tmp_path / "run"
    shutil.copytree(export_run[0].root, root)
    rd = RunDir(root)
    base = load_file(str(rd.base_model))
    layer = next(n for n in base if n.endswith(".lora_b"))
    base[layer] = np.full_like(base[layer], 2.0 ** -3)
    save_file(base, str(rd.base_model))
    for d in (root / "private" / "witnesses", root / "private" / "inputs", root / "public" / "proofs"):
        shutil.rmtree(d)
    tr.fixed_point_run(rd)
    prove_all(rd)
    report, failed = checks(rd.public)
    assert report.verdict == "INVALID" and failed == {"base"}, (failed, report.passed)
    assert "lora_b" in str(report.failures[0]), report.failures


def test_an_exported_graph_differing_in_one_weight_is_rejected(export_run, tmp_path):
    """The bundle's graph and base weights with one frozen weight one quantum off, the claims naming the new graph
    and its frozen values, the manifest re-sealed (a prover claiming another model than the one exported and
    trained, consistently in every file): its step traces with another constant, not the published step.onnx
    (`run`)."""
    from zkpot.spec.weights import frozen_digest

    run, _ = export_run
    public = tmp_path / "public"
    shutil.copytree(run.public, public)
    model = onnx.load(str(public / P.BASE_GRAPH))
    t = next(t for t in model.graph.initializer if t.name == "head.weight")
    t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) + np.float32(2 ** -8), t.name))
    data = model.SerializeToString()
    (public / P.BASE_GRAPH).write_bytes(data)
    w = load_file(str(public / P.BASE_MODEL))
    w["head.weight"] = w["head.weight"] + np.float32(2 ** -8)
    save_file(w, str(public / P.BASE_MODEL))

    def claim(m):
        m["run"]["model"]["graph"] = hashlib.sha256(data).hexdigest()
        m["run"]["frozen"]["sha256"] = frozen_digest({n: w[n] for n in m["run"]["frozen"]["names"]})
    edit_manifest(public, claim)
    rehash(public)
    report, failed = checks(public)
    assert report.verdict == "INVALID" and failed == {"run"}, (failed, report.passed)
