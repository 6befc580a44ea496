"""Fine-tuning: a head trained on a frozen body. The frozen parameters are constants of the step
graph, named in the claims with their sha256 and taken from the public base model: the verifier
derives the circuit with them, so a frozen weight that moved, or another one, is rejected."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from tests.adversarial.helpers import failures, manifest as _manifest
from tests.conftest import HEAD_ONLY, SMALL, edit_manifest, make_run, rehash
from tests.test_cli import zkpot
from zkpot.spec.weights import frozen_digest
from zkpot.verifier.verify import verify_bundle

FROZEN = ["net.0.weight", "net.0.bias"]


@pytest.fixture
def ft_bundle(run_ft, tmp_path):
    dst = tmp_path / "public"
    shutil.copytree(run_ft.public, dst)
    return dst


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
    edit_manifest(ft_bundle, lambda m: m["run"]["frozen"].update(sha256=frozen_digest({n: w[n] for n in FROZEN})))
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
    head_only = _manifest(run_ft.public)

    def claim_head_only(public, circuit_files):
        def edit(m):
            m["run"]["layout"], m["run"]["frozen"] = head_only["run"]["layout"], head_only["run"]["frozen"]
            if "kzg.srs" in circuit_files:  # the head-only circuit's SRS (the full one may have more rows)
                m["srs"] = head_only["srs"]
        edit_manifest(public, edit)
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


def test_finetune_demo_end_to_end(tmp_path):
    """`zkpot demo --finetune`: public pretraining, private head fine-tuning proved and verified (VALID),
    and a real gain on held-out rows, in fixed point as in float."""
    r = zkpot("demo", tmp_path / "ft", "--finetune")
    assert r.returncode == 0 and "VALID" in r.stdout, r.stdout[-3000:] + r.stderr[-2000:]
    assert "NOT PROVED" in " ".join(r.stdout.split())  # the accuracy table is the trainer's own evaluation
    row = next(ln for ln in r.stdout.splitlines() if ln.count("│") == 4 and "0." in ln)
    base, fixed, flt = (float(x) for x in row.strip("│ ").split("│"))
    assert fixed > base + 0.15 and abs(fixed - flt) < 0.03, (base, fixed, flt)


# --- low-rank adapters ------------------------------------------------------------------------

def test_adapter_run_verifies_and_moves_only_the_adapter(run_lora):
    report = verify_bundle(run_lora.public, allow_insecure_dev_srs=True)
    assert report.ok, report.failures
    m = _manifest(run_lora.public)
    assert m["run"]["model"]["adapters"] == {"rank": 1, "layers": ["net.0"]}
    assert m["run"]["layout"]["names"] == ["net.0.lora_a", "net.0.lora_b"]
    base, final = load_file(str(run_lora.base_model)), load_file(str(run_lora.final_model))
    assert not base["net.0.lora_b"].any() and final["net.0.lora_b"].any()  # B starts at zero and moved
    for n in m["run"]["frozen"]["names"]:
        assert np.array_equal(final[n], base[n]), n


def test_a_built_in_models_adapter_that_does_not_start_at_zero_is_rejected_at_base(run_lora, tmp_path):
    """B != 0 in the published base: the run would start at W + B A, not at the base model. Caught at `base` by the
    adapter check itself, before any commitment is compared (its own message), whatever proofs follow."""
    public = tmp_path / "public"
    shutil.copytree(run_lora.public, public)
    base = load_file(str(public / "base_model.safetensors"))
    base["net.0.lora_b"] = base["net.0.lora_b"] + _one_hot(base["net.0.lora_b"], 0)
    save_file(base, str(public / "base_model.safetensors"))
    rehash(public)
    report = verify_bundle(public, allow_insecure_dev_srs=True)
    assert [(f.check, "is not zero" in f.args[0]) for f in report.failures][:1] == [("base", True)]


@pytest.mark.parametrize("rank", [2, 3])
def test_an_adapter_of_another_rank(run_lora, tmp_path, rank):
    """The claims name another rank (layout shapes adjusted to it, or not): the step the claims
    describe is not the published one (`run`)."""
    for adjust in (False, True):
        public = tmp_path / f"r{rank}{adjust}"
        shutil.copytree(run_lora.public, public)
        edit_manifest(public, lambda m: m["run"]["model"]["adapters"].update(rank=rank))
        if adjust:
            edit_manifest(public, lambda m: m["run"]["layout"].update(shapes=[[rank, SMALL["features"]], [4, rank]]))
        rehash(public)
        assert ("run", None) in failures(public), (rank, adjust)


def _one_hot(a, index, delta=2**-8):
    d = np.zeros_like(a)
    d.reshape(-1)[index] = delta
    return d


def test_merged_release(run_lora, tmp_path):
    """The merged model train writes (W + B A) is the final state; one value off, the base layer
    without its adapter, or the adapter merged twice: `model`."""
    def check(path):
        return verify_bundle(run_lora.public, allow_insecure_dev_srs=True, model=path, opening=run_lora.final_opening)

    ok = check(run_lora.final_merged)
    assert ok.ok and any(c == "model" and "adapters merged" in d for c, d in ok.passed), ok.failures
    merged = load_file(str(run_lora.final_merged))
    final = load_file(str(run_lora.final_model))
    delta = final["net.0.lora_b"].astype(np.float64) @ final["net.0.lora_a"].astype(np.float64)
    forgeries = {
        "one value off": {**merged, "net.0.weight": merged["net.0.weight"] + _one_hot(merged["net.0.weight"], 7)},
        "adapter left out": {**merged, "net.0.weight": final["net.0.weight"]},
        "adapter merged twice": {**merged, "net.0.weight": (merged["net.0.weight"] + delta).astype(np.float32)},
        "head changed": {**merged, "net.2.bias": merged["net.2.bias"] + np.float32(2**-8)},
        "a parameter dropped": {k: v for k, v in merged.items() if k != "net.2.bias"},
    }
    for name, weights in forgeries.items():
        path = tmp_path / f"{name}.safetensors"
        save_file(weights, str(path))
        assert [f.check for f in check(path).failures] == ["model"], name


# --- a frozen backbone outside the circuit ----------------------------------------------------

def _backbone(path, inputs, outputs, seed=0):
    """A small ONNX graph (MatMul, Add, Relu) from `inputs` columns to `outputs` features."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.5, (inputs, outputs)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["z"]),
         helper.make_node("Relu", ["z"], ["y"])], "backbone",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", inputs])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", outputs])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.full(outputs, 0.1, np.float32), "b")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


@pytest.fixture(scope="module")
def run_bb(tmp_path_factory):
    root = tmp_path_factory.mktemp("run_bb")
    return make_run(root / "run", features=30, backbone=str(_backbone(root / "bb.onnx", 30, 6)))


def test_train_says_the_backbone_is_not_proved(tmp_path):
    from zkpot.prover import train as tr
    from zkpot.prover.config import RunConfig
    from zkpot.prover.run import RunDir

    said = []
    cfg = RunConfig(**{**SMALL, "features": 30, "backbone": str(_backbone(tmp_path / "bb.onnx", 30, 6))})
    tr.prepare(RunDir(tmp_path / "run"), cfg, progress=said.append)
    assert any("outside the circuit" in s and "NOT PROVED" in s for s in said), said


def test_backbone_run_is_never_valid_and_says_why(run_bb):
    """The proofs and every derived claim hold, but the features' origin is the owner's word: the
    verdict is PROOFS VERIFY, CLAIMS NOT BOUND, naming the backbone."""
    from zkpot.spec import protocol as P

    report = verify_bundle(run_bb.public, allow_insecure_dev_srs=True)
    assert not report.failures and report.verdict == P.UNBOUND, report.failures
    assert any("backbone.onnx's output" in u for u in report.unbound)
    assert any(c == "backbone" and "6 features" in d for c, d in report.passed)
    assert _manifest(run_bb.public)["run"]["layout"]["features"] == 6


def test_backbone_swapped_or_misdescribed(run_bb, tmp_path):
    """Another graph in the bundle (re-sealed), claims naming another width, or the graph dropped
    from the file table: each rejected at a named check."""
    cases = {
        "another graph": (lambda pub: _backbone(pub / "backbone.onnx", 30, 6, seed=1), "backbone"),
        "another output width": (lambda pub: _edit_run(pub, lambda r: r["backbone"].update(outputs=7)), "backbone"),
        "claims name another graph": (lambda pub: _edit_run(pub, lambda r: r["backbone"].update(sha256="0" * 64)),
                                      "backbone"),
        "graph of another width, claims adjusted": (lambda pub: _swap_width(pub), "backbone"),
        "graph not in the file table": (lambda pub: _drop_file(pub, "backbone.onnx"), "files"),
        "backbone malformed": (lambda pub: _edit_run(pub, lambda r: r.update(backbone="bb.onnx")), "manifest"),
    }
    for name, (attack, check) in cases.items():
        public = tmp_path / name.replace(" ", "_")
        shutil.copytree(run_bb.public, public)
        attack(public)
        rehash(public)
        assert check in {c for c, _ in failures(public)}, name


def _edit_run(public, fn):
    edit_manifest(public, lambda m: fn(m["run"]))


def _swap_width(public):
    from zkpot.models.backbone import describe

    _backbone(public / "backbone.onnx", 30, 5)
    _edit_run(public, lambda r: r.update(backbone=describe(public / "backbone.onnx")))


def _drop_file(public, name):
    edit_manifest(public, lambda m: m["files"].pop(name))


@pytest.mark.parametrize("args, message", [
    (["--lora-layers", "net.0"], "--lora-layers needs --lora RANK"),
    (["--lora", "1", "--lora-layers", "net.9"], "adapter layer 'net.9' is not a Linear layer of the model"),
    (["--lora", "65"], "adapter rank must be in 1..64"),
    (["--backbone", "missing.onnx"], "backbone not found: missing.onnx"),
    (["--backbone", "README.md"], "not an ONNX graph"),
])
def test_finetuning_options_bad_input(tmp_path, args, message):
    from tests.adversarial.test_bad_input import one_error_line

    r = zkpot("train", tmp_path / "run", "--model", "mlp", "--hidden", "4", "--features", "4", "--rows", "8",
              "--batch-size", "4", "--epochs", "1", *args)
    one_error_line(r, message)
    assert not (tmp_path / "run" / "public" / "manifest.json").exists()


def test_backbone_of_another_width_is_refused(tmp_path):
    from tests.adversarial.test_bad_input import one_error_line

    bb = _backbone(tmp_path / "bb.onnx", 5, 3)
    r = zkpot("train", tmp_path / "run", "--features", "4", "--rows", "8", "--batch-size", "4", "--epochs", "1",
              "--backbone", bb)
    one_error_line(r, "takes 5 features, the data has 4")
