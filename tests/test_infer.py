"""Inference proofs: the run's final model on new inputs, its weights hidden. The verifier derives the
inference circuit from the run's claims, checks the proof against it, and binds the proof's weight
commitment to the run's final commitment, its input commitment to the public inputs (or to the
opening the inputs' owner holds), and its public outputs to the prediction claimed."""
from __future__ import annotations

import copy
import json
import re
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file

from zkpot.prover.infer import prove_inference
from zkpot.prover.run import RunDir
from tests.adversarial.helpers import failures
from tests.conftest import rehash
from tests.test_cli import zkpot
from zkpot.spec import protocol as P
from zkpot.verifier.verify import verify_bundle

X2 = np.array([[1.5, -0.25, 0.0, 2.0, -3.0, 0.5, 1.0, -1.0], [-0.5, 0.75, 3.5, -2.0, 0.125, 0.0, -4.0, 4.0]])


@pytest.fixture(scope="module")
def proved(run_a, tmp_path_factory):
    """Run A's final model on two public rows, and on one hidden row."""
    root = tmp_path_factory.mktemp("infer")
    prove_inference(run_a, X2, root / "public2")
    prove_inference(run_a, X2[:1], root / "hidden1", hidden=True)
    return root


def copy_of(proved, name, tmp_path):
    dst = tmp_path / name
    shutil.copytree(proved / name, dst)
    return dst / "public"


def edit(public, fn, file=P.INFERENCE):
    doc = json.loads((public / file).read_text())
    fn(doc)
    (public / file).write_text(json.dumps(doc))


def check(run, inference, **kw):
    return failures(run.public, inference=inference, **kw)


def test_public_inference_verifies_and_is_the_final_models_prediction(run_a, proved):
    report = verify_bundle(run_a.public, allow_insecure_dev_srs=True, inference=proved / "public2")
    assert report.ok, report.failures
    assert [c for c, _ in report.passed][-5:] == ["infer-circuit", "infer-proof", "weights", "input", "prediction"]
    # the proved prediction is the released model's on the inputs as quantized (logits, scale 8)
    w = load_file(str(run_a.final_model))
    x = np.round(X2 * 256) / 256
    expected = x @ w["linear.weight"].T.astype(np.float64) + w["linear.bias"]
    assert np.abs(np.array(report.prediction) - expected).max() <= 4 / 256, (report.prediction, expected)
    doc = json.loads((proved / "public2" / "public" / P.INFERENCE).read_text())
    assert doc["input"]["values"] == x.tolist() and doc["final_commitment"] == report.manifest["final"]["commitment"]
    assert not (proved / "public2" / "private").exists()


def test_hidden_input_reveals_nothing_and_opens_for_its_owner(run_a, proved):
    public = proved / "hidden1" / "public"
    text = (public / P.INFERENCE).read_text()
    assert json.loads(text)["input"] == {"visibility": "hidden"}
    assert "1.5" not in text  # the row's first value
    opening = proved / "hidden1" / "private" / P.INPUT_OPENING
    assert oct(opening.stat().st_mode & 0o777) == "0o600"
    assert json.loads(opening.read_text())["values"] == [X2[0].tolist()]
    report = verify_bundle(run_a.public, allow_insecure_dev_srs=True, inference=public)
    assert report.ok and any(c == "input" and "hidden" in d for c, d in report.passed)
    report = verify_bundle(run_a.public, allow_insecure_dev_srs=True, inference=public, input_opening=opening)
    assert report.ok and any(c == "input" and "opens" in d for c, d in report.passed)


def test_an_opening_of_another_input_is_rejected(run_a, proved, tmp_path):
    o = json.loads((proved / "hidden1" / "private" / P.INPUT_OPENING).read_text())
    for field, change in (("values", lambda o: o["values"][0].__setitem__(3, 2.00390625)),
                          ("salt", lambda o: o["salt"].reverse())):
        bad = copy.deepcopy(o)
        change(bad)
        path = tmp_path / f"{field}.json"
        path.write_text(json.dumps(bad))
        assert check(run_a, proved / "hidden1", input_opening=path) == {("input", None)}, field


def test_an_opening_beside_public_inputs_is_refused_not_ignored(run_a, proved, tmp_path):
    """Public inputs have nothing to open: an --input-opening there (even of other values) is bad input, never a
    silent VALID."""
    from zkpot.spec.errors import BadInput

    o = json.loads((proved / "hidden1" / "private" / P.INPUT_OPENING).read_text())
    o["values"][0][0] = 3.0
    (tmp_path / "other.json").write_text(json.dumps(o))
    with pytest.raises(BadInput, match="opens hidden inputs"):
        verify_bundle(run_a.public, allow_insecure_dev_srs=True, inference=proved / "public2",
                      input_opening=tmp_path / "other.json")


def test_another_models_weights_are_rejected(run_a, run_b, tmp_path):
    """Run B has the same circuit and claims but its own final state: its prediction is not run A's model's."""
    prove_inference(run_b, X2, tmp_path / "b")
    assert check(run_a, tmp_path / "b") == {("weights", None)}
    assert verify_bundle(run_b.public, allow_insecure_dev_srs=True, inference=tmp_path / "b").ok


def test_a_stale_state_is_rejected(run_a, tmp_path):
    """A prediction by the model after the first step (a proved state, but not the final one)."""
    stale = RunDir(tmp_path / "stale")
    shutil.copytree(run_a.root, stale.root)
    state = json.loads(run_a.witness(0).read_text())["outputs"][0]
    stale.final_opening.write_text(json.dumps({"state": state}))
    m = json.loads(stale.manifest.read_text())
    m["final"]["commitment"] = json.loads(run_a.witness(0).read_text())["processed_outputs"]["poseidon_hash"][0]
    stale.manifest.write_text(json.dumps(m))
    prove_inference(stale, X2, tmp_path / "inf")
    assert check(run_a, tmp_path / "inf") == {("weights", None)}
    edit(tmp_path / "inf" / "public", lambda d: d.__setitem__("final_commitment", m["final"]["commitment"]))
    assert check(run_a, tmp_path / "inf") == {("weights", None)}


def test_a_proof_of_another_architecture_is_rejected(run_a, run_ft, proved, tmp_path):
    """An MLP's inference proof (run_ft: 8 features, 1 output) under run A's logistic regression claims."""
    prove_inference(run_ft, X2, tmp_path / "ft")
    assert verify_bundle(run_ft.public, allow_insecure_dev_srs=True, inference=tmp_path / "ft").ok  # frozen body
    public = copy_of(proved, "public2", tmp_path)
    shutil.copyfile(tmp_path / "ft" / "public" / P.INFERENCE_PROOF, public / P.INFERENCE_PROOF)
    assert check(run_a, public) == {("infer-proof", None)}


def test_a_changed_prediction_is_rejected(run_a, proved, tmp_path):
    public = copy_of(proved, "public2", tmp_path)
    edit(public, lambda d: d["prediction"][1].__setitem__(0, d["prediction"][1][0] + 1 / 256))
    assert check(run_a, public) == {("prediction", None)}
    public = copy_of(proved, "public2", tmp_path / "instance")  # the proof's own output changed
    edit(public, lambda p: p["instances"][0].__setitem__(3, p["instances"][0][2]), P.INFERENCE_PROOF)
    assert check(run_a, public) == {("infer-proof", None)}


# every field of inference.json, changed: (name, edit, the check that rejects it)
FIELDS = [
    ("format", lambda d: d.__setitem__("format", "zkpot/inference-0"), "inference"),
    ("rows fewer", lambda d: d.__setitem__("rows", 1), "inference"),
    ("rows, prediction and inputs cut to 1", lambda d: (d.__setitem__("rows", 1), d["prediction"].pop(),
                                                        d["input"]["values"].pop()), "infer-proof"),
    ("rows bool", lambda d: d.__setitem__("rows", True), "inference"),
    ("final_commitment", lambda d: d.__setitem__("final_commitment", "01" + d["final_commitment"][2:]), "weights"),
    ("final_commitment malformed", lambda d: d.__setitem__("final_commitment", "zz"), "inference"),
    ("proof name", lambda d: d.__setitem__("proof", "../proof.json"), "inference"),
    ("visibility", lambda d: d["input"].__setitem__("visibility", "secret"), "inference"),
    ("visibility hidden, values kept", lambda d: d["input"].__setitem__("visibility", "hidden"), "inference"),
    ("visibility hidden", lambda d: d.__setitem__("input", {"visibility": "hidden"}), None),  # weaker, still true
    ("input value", lambda d: d["input"]["values"][0].__setitem__(0, 1.50390625), "input"),
    ("input rows swapped", lambda d: d["input"]["values"].reverse(), "input"),
    ("input width", lambda d: [r.append(0.0) for r in d["input"]["values"]], "input"),
    ("input ragged", lambda d: d["input"]["values"][0].append(0.0), "inference"),
    ("input salt", lambda d: d["input"]["salt"].__setitem__(0, d["input"]["salt"][1]), "input"),
    ("input salt short", lambda d: d["input"]["salt"].pop(), "inference"),
    ("prediction value", lambda d: d["prediction"][0].__setitem__(0, -d["prediction"][0][0] - 1), "prediction"),
    ("prediction rows swapped", lambda d: d["prediction"].reverse(), "prediction"),
    ("prediction width", lambda d: [r.append(0.0) for r in d["prediction"]], "prediction"),
    ("prediction ragged", lambda d: d["prediction"][0].append(0.0), "inference"),
    ("prediction string", lambda d: d["prediction"][0].__setitem__(0, "1.0"), "inference"),
    ("extra field in input", lambda d: d["input"].__setitem__("note", 1), "inference"),
]


@pytest.mark.parametrize("name, change, expected", FIELDS, ids=[f[0] for f in FIELDS])
def test_every_field_of_the_inference_claim(run_a, proved, tmp_path, name, change, expected):
    public = copy_of(proved, "public2", tmp_path)
    edit(public, change)
    if expected is None:
        report = verify_bundle(run_a.public, allow_insecure_dev_srs=True, inference=public)
        assert report.ok and any(c == "input" and "hidden" in d for c, d in report.passed)
    else:
        assert check(run_a, public) == {(expected, None)}, name


def test_an_invalid_run_gives_an_invalid_prediction(run_a, proved, bundle):
    m = json.loads((bundle / "manifest.json").read_text())
    m["run"]["optimizer"]["lr"] = 0.25  # another run: the step circuit no longer derives to the bundle's
    (bundle / "manifest.json").write_text(json.dumps(m))
    rehash(bundle)
    assert ("run", None) in failures(bundle, inference=proved / "public2")


def test_infer_and_verify_through_the_cli(run_a, proved, tmp_path):
    """A data owner's raw rows (--raw: standardised as the training rows were, with the run's private
    scaling): the same proved prediction as for their standardised form, printed with labels and
    probabilities beside the logits; then verified through the CLI."""
    scaling = json.loads(run_a.scaling.read_text())
    raw = X2 * np.asarray(scaling["std"]) + np.asarray(scaling["mean"])
    rows = tmp_path / "rows.csv"
    rows.write_text("f0,f1,f2,f3,f4,f5,f6,f7\n" + "\n".join(",".join(repr(float(v)) for v in r) for r in raw) + "\n")
    r = zkpot("infer", run_a.root, rows, "--out", tmp_path / "out", "--raw")
    assert r.returncode == 0, r.stderr
    assert re.search(r"infer: .*\d:\d\d:\d\d", r.stderr), r.stderr   # its stage and the time elapsed
    assert "prediction" in r.stdout and "P(label 1)" in r.stdout and "label" in r.stdout, r.stdout
    ours = json.loads((tmp_path / "out" / "public" / P.INFERENCE).read_text())["prediction"]
    assert ours == json.loads((proved / "public2" / "public" / P.INFERENCE).read_text())["prediction"]
    r = zkpot("verify", run_a.public, "--allow-insecure-dev-srs", "--inference", tmp_path / "out")
    assert r.returncode == 6 and "VALID" in r.stdout and "the prediction the inference proof proves" in r.stdout, r.stdout
    edit(tmp_path / "out" / "public", lambda d: d["prediction"][0].__setitem__(0, 9.0))
    r = zkpot("verify", run_a.public, "--allow-insecure-dev-srs", "--inference", tmp_path / "out")
    assert r.returncode == 1 and "prediction" in r.stdout


@pytest.mark.parametrize("case", ["width", "bound", "nan", "not a run", "exists", "opening alone", "bad opening"])
def test_bad_input_is_one_line(run_a, proved, tmp_path, case):
    rows = tmp_path / "rows.csv"
    rows.write_text("\n".join(",".join(map(str, r)) for r in X2) + "\n")
    args = ["infer", run_a.root, rows, "--out", tmp_path / "out"]
    if case == "width":
        rows.write_text("1,2,3\n")
    elif case == "bound":
        rows.write_text(",".join(["4.5"] * 8) + "\n")
    elif case == "nan":
        rows.write_text(",".join(["nan"] * 8) + "\n")
    elif case == "not a run":
        args[1] = tmp_path / "nothing"
    elif case == "exists":
        (tmp_path / "out").mkdir()
    elif case == "opening alone":
        args = ["verify", run_a.public, "--allow-insecure-dev-srs", "--input-opening", rows]
    elif case == "bad opening":
        args = ["verify", run_a.public, "--allow-insecure-dev-srs", "--inference", proved / "hidden1",
                "--input-opening", rows]
    r = zkpot(*args)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "error" in r.stderr, r.stderr
    assert case == "exists" or not (tmp_path / "out").exists()


@pytest.mark.parametrize("name,stage", [(P.INFERENCE, "inference"), (P.INFERENCE_PROOF, "infer-proof")])
def test_json_nested_past_the_recursion_limit_in_an_inference_is_rejected(run_a, proved, tmp_path, name, stage):
    """An inference directory's files nested 100,000 deep (tests/adversarial/test_hostile_inputs.py does the
    bundle's): INVALID at the stage that reads them, said in one line, never a RecursionError; through the
    CLI, exit 1 (not 3)."""
    from tests.adversarial.test_hostile_inputs import DEEP

    public = copy_of(proved, "public2", tmp_path)
    (public / name).write_bytes(DEEP)
    report = verify_bundle(run_a.public, allow_insecure_dev_srs=True, inference=public)
    assert report.verdict == P.INVALID and [(f.check, f.chunk) for f in report.failures] == [(stage, None)], report.failures
    assert "nested deeper" in str(report.failures[0]) and "\n" not in str(report.failures[0]), report.failures
    r = zkpot("verify", run_a.public, "--allow-insecure-dev-srs", "--inference", public)
    assert r.returncode == 1 and "nested deeper" in r.stdout and "Recursion" not in r.stdout + r.stderr, r.stdout + r.stderr


def test_an_input_opening_nested_past_the_recursion_limit_is_bad_input(run_a, proved, tmp_path):
    """`verify --inference DIR --input-opening FILE` with FILE nested 100,000 deep: bad input in one line (exit
    2), before any verification."""
    from tests.adversarial.test_hostile_inputs import DEEP
    from zkpot.spec.errors import BadInput

    deep = tmp_path / P.INPUT_OPENING
    deep.write_bytes(DEEP)
    with pytest.raises(BadInput, match="not an input opening"):
        verify_bundle(run_a.public, allow_insecure_dev_srs=True, inference=proved / "hidden1", input_opening=deep)
    r = zkpot("verify", run_a.public, "--allow-insecure-dev-srs", "--inference", proved / "hidden1",
              "--input-opening", deep)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "not an input opening" in r.stderr, r.stderr
