"""Models, losses and the generic step: the traced step equals torch's own SGD update."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from zkpot.models import zoo
from zkpot.models.data import DataError, load
from zkpot.models.losses import LabelError, encode_labels
from zkpot.models.step import Optimizer, layout_of, make_step
from zkpot.spec.protocol import SALT_WORDS
from zkpot.spec.schedule import schedule


@pytest.mark.parametrize("name, loss, out", [("logreg", "bce", 1), ("mlp", "ce", 3), ("mlp", "mse", 2)])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_step_matches_torch_sgd(name, loss, out, momentum):
    torch.manual_seed(0)
    spec = {"name": name, "kwargs": {"in_features": 5, "out_features": out}}
    module = zoo.build(spec, seed=0)
    ref = zoo.build(spec, seed=0)
    B = 4
    x = torch.randn(B, 5)
    y = torch.tensor(encode_labels(loss, np.random.default_rng(0).integers(0, 2 if loss != "ce" else 3, (B,) if loss != "mse" else (B, 2)), out))
    layout = layout_of(module, B, 5, y.shape[1], momentum > 0)
    step = make_step(module, loss, layout, Optimizer(lr=0.1, momentum=momentum, weight_decay=0.01))
    w = torch.cat([p.detach().reshape(-1) for p in module.parameters()])
    state = torch.cat([w] + ([torch.zeros_like(w)] if momentum else []) + [torch.zeros(SALT_WORDS)])
    batch = torch.cat([x.reshape(-1), y.reshape(-1), torch.zeros(SALT_WORDS)])
    salt = torch.arange(SALT_WORDS, dtype=torch.float32)
    new = step(step(state, batch, salt), batch, salt)

    torch_loss = {"bce": torch.nn.functional.binary_cross_entropy_with_logits,  # torch's own, not ours
                  "ce": torch.nn.functional.cross_entropy, "mse": torch.nn.functional.mse_loss}[loss]
    opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=momentum, weight_decay=0.01)
    for _ in range(2):
        opt.zero_grad()
        torch_loss(ref(x), y).backward()
        opt.step()
    want = torch.cat([p.detach().reshape(-1) for p in ref.parameters()])
    torch.testing.assert_close(new[: layout.n_params], want, rtol=1e-5, atol=1e-6)
    assert torch.equal(new[-SALT_WORDS:], salt)


def test_user_module(tmp_path):
    f = tmp_path / "net.py"
    f.write_text("import torch\nclass Net(torch.nn.Module):\n"
                 "    def __init__(self, in_features, out_features):\n        super().__init__(); self.l = torch.nn.Linear(in_features, out_features)\n"
                 "    def forward(self, x): return self.l(x)\n")
    m = zoo.build({"name": f"{f}:Net", "kwargs": {"in_features": 3, "out_features": 1}})
    assert m(torch.zeros(2, 3)).shape == (2, 1)
    with pytest.raises(zoo.ModelError, match="no nn.Module subclass"):
        zoo.build({"name": f"{f}:Missing", "kwargs": {}})


def test_base_model_shape_mismatch(tmp_path):
    from safetensors.torch import save_file

    save_file({"linear.weight": torch.zeros(1, 4), "linear.bias": torch.zeros(1)}, str(tmp_path / "b.safetensors"))
    m = zoo.build({"name": "logreg", "kwargs": {"in_features": 5}})
    with pytest.raises(zoo.ModelError, match="shape"):
        zoo.load_base(m, tmp_path / "b.safetensors")


def test_labels_validated():
    with pytest.raises(LabelError):
        encode_labels("bce", np.array([0, 1, 2]), 1)
    with pytest.raises(LabelError):
        encode_labels("ce", np.array([0, 3]), 3)
    with pytest.raises(LabelError):
        encode_labels("mse", np.array([0.0, np.inf]), 1)
    assert encode_labels("ce", np.array([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]


def test_data_loading(tmp_path):
    X, y = load(None)
    assert X.shape == (569, 30) and set(np.unique(y)) == {0.0, 1.0}
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3\n")
    with pytest.raises(DataError, match="fields"):
        load(tmp_path / "ragged.csv")
    np.savez(tmp_path / "d.npz", X=np.ones((3, 2)), y=np.zeros(2))
    with pytest.raises(DataError, match="labels"):
        load(tmp_path / "d.npz")
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="npz"):
        load(tmp_path / "bad.npz")


def test_schedule_is_a_permutation_per_epoch():
    s = schedule(5, 3, seed=7)
    for e in range(3):
        assert sorted(b for ep, b in s if ep == e) == list(range(5))
    assert s != schedule(5, 3, seed=8)
    assert s == schedule(5, 3, seed=7)


def test_exported_chunk_is_the_torch_chunk(tmp_path):
    """The ONNX of S unrolled steps computes what torch computes (each batch input distinct)."""
    from onnx.reference import ReferenceEvaluator

    from zkpot.models.step import export_chunk, make_chunk

    module = zoo.build({"name": "mlp", "kwargs": {"in_features": 3, "hidden": [4], "out_features": 1}}, seed=0)
    layout = layout_of(module, 2, 3, 1, False)
    step = make_step(module, "bce", layout, Optimizer(lr=0.5))
    export_chunk(step, layout, 3, tmp_path / "chunk.onnx", 8)
    g = torch.Generator().manual_seed(1)
    w = torch.cat([p.detach().reshape(-1) for p in module.parameters()])
    args = [torch.cat([w, torch.rand(SALT_WORDS, generator=g)])]
    for _ in range(3):
        args.append(torch.cat([torch.randn(6, generator=g), torch.randint(0, 2, (2,), generator=g).float(), torch.rand(SALT_WORDS, generator=g)]))
    args.append(torch.rand(SALT_WORDS, generator=g))
    sess = ReferenceEvaluator(str(tmp_path / "chunk.onnx"))
    names = [i.name for i in sess.proto_.graph.input]
    got = sess.run(None, {n: a.numpy() for n, a in zip(names, args)})[0]
    want = make_chunk(step, 3)(*args)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)


def test_the_verifier_knows_every_builtin_model_and_loss():
    """The verifier names the built-in models and losses (spec/protocol.py) without importing torch."""
    from zkpot.models.losses import LOSSES
    from zkpot.models.zoo import BUILTIN
    from zkpot.spec import protocol

    assert sorted(BUILTIN) == sorted(protocol.BUILTIN_MODELS) == sorted(set(protocol.DERIVABLE_MODELS) - {protocol.ONNX_MODEL}) and sorted(LOSSES) == sorted(protocol.LOSSES)



def test_the_exported_step_clips_features_and_returned_weights(tmp_path):
    """What the report says of every run ("each step clips its features to +-X and every weight it returns to
    +-W (proved)", spec/claims.py), on the step graph the claims of the tests' small run trace to (as the
    verifier derives it, circuits/derive.trace): features far beyond the bound give, output for output, the
    step of those features clipped; and an update that leaves the weight bound is returned clipped to it
    (the salt untouched)."""
    from onnx.reference import ReferenceEvaluator

    from tests.conftest import SMALL
    from zkpot.circuits import derive
    from zkpot.prover.config import RunConfig
    from zkpot.prover.train import frozen_claims, optimizer

    cfg = RunConfig(**SMALL)
    F, B = SMALL["features"], SMALL["batch_size"]
    module = zoo.build(cfg.model_spec(F, 1), seed=cfg.seed)
    layout = layout_of(module, B, F, 1, cfg.momentum > 0)
    claims = derive.circuit_claims(cfg.run_claims(layout, SMALL["rows"] // B, frozen_claims(module, layout)))
    assert claims["steps_per_proof"] == 1 and claims["model"]["name"] == "logreg"
    derive.trace(claims, module, tmp_path / "step.onnx")
    X, W = claims["bounds"]["features"], claims["bounds"]["weights"]
    P = layout.n_params
    sess = ReferenceEvaluator(str(tmp_path / "step.onnx"))
    names = [i.name for i in sess.proto_.graph.input]
    assert names == ["state_in", "batch_0", "salt_out"], names
    rng = np.random.default_rng(0)
    salt = lambda: rng.integers(0, 1 << 24, SALT_WORDS).astype(np.float32) / 256  # (far beyond W: kept as is)
    batch_salt = salt()
    batch = lambda x, y: np.concatenate([x.ravel(), y.ravel(), batch_salt]).astype(np.float32)

    def step(state, x, y, salt_out):
        out = sess.run(None, {"state_in": state, "batch_0": batch(x, y), "salt_out": salt_out})[0]
        assert np.array_equal(out[P:], salt_out)
        return out

    state = np.concatenate([rng.uniform(-W, W, P), salt()]).astype(np.float32)
    y, salt_out = rng.integers(0, 2, (B, 1)).astype(np.float32), salt()
    inside = rng.uniform(-X, X, (B, F))
    far = np.where(rng.random((B, F)) < 0.5, inside, rng.choice([-1, 1], (B, F)) * rng.uniform(10 * X, 1e3, (B, F)))
    clipped = np.clip(far, -X, X)
    assert (np.abs(far) > X).sum() >= B * F // 4
    got = step(state, far, y, salt_out)
    assert np.array_equal(got, step(state, clipped, y, salt_out))
    unclamped = make_step(module, "bce", layout, optimizer(cfg))  # (no bounds: the features as given)
    unclamped_step = lambda state, x, y: unclamped(*map(torch.from_numpy, (state, batch(x, y), salt_out))).numpy()[:P]
    assert not np.allclose(unclamped_step(state, far, y), got[:P])  # (the far features do change an unclipped step)

    # weights near +-W and features of either sign (z = the bias): half the update pushes outward, past W
    s = rng.choice([-1.0, 1.0], P - 1)
    w = np.concatenate([(W - 0.1) * s, [-(W - 0.1)]])
    x = np.tile(np.concatenate([X * s[: F // 2], -X * s[F // 2:]]), (B, 1))
    state = np.concatenate([w, salt()]).astype(np.float32)
    ones = np.ones((B, 1), np.float32)
    want = unclamped_step(state, x, ones)
    assert np.abs(want).max() > W + 1, want  # the SGD update itself leaves the bound
    got = step(state, x, ones, salt_out)[:P]
    assert np.abs(got).max() <= W and np.isclose(np.abs(got).max(), W), got
    np.testing.assert_allclose(got, np.clip(want, -W, W), rtol=1e-5, atol=1e-5)
