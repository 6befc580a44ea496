"""A real run, proved and verified; then each way a cheating prover could alter it, rejected."""
from __future__ import annotations

import json
import shutil

from safetensors.torch import load_file, save_file

from tests.conftest import edit_manifest, rehash
from zkpot.verifier.verify import verify_bundle


def failed_checks(public) -> set[tuple[str, int | None]]:
    report = verify_bundle(public, allow_insecure_dev_srs=True)
    assert not report.ok
    return {(f.check, f.chunk) for f in report.failures}


def test_honest_run_verifies(run_a):
    report = verify_bundle(run_a.public, allow_insecure_dev_srs=True)
    assert report.ok, [str(f) for f in report.failures]
    assert [name for name, _ in report.passed] == ["files", "srs", "run", "circuit", "vk", "proofs", "base", "chain",
                                                   "final", "schedule"]
    assert any("INSECURE DEV SRS" in w for w in report.warnings)
    assert len(report.manifest["chunks"]) == 4


def test_a_second_verification_imports_no_torch(run_a):
    """Everything derived is cached: verifying again (CLI and library) needs no tracing, so no torch."""
    import subprocess
    import sys
    from pathlib import Path

    assert verify_bundle(run_a.public, allow_insecure_dev_srs=True).ok  # derives (and caches) the circuit
    code = ("import sys, zkpot.cli; from zkpot.verifier.verify import verify_bundle; "
            f"assert verify_bundle({str(run_a.public)!r}, allow_insecure_dev_srs=True).ok; "
            "sys.exit(int('torch' in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1]).returncode == 0


def test_fixed_point_run_is_the_circuit_run(run_a):
    """Each stored witness's output state is the next witness's input, felt for felt."""
    witnesses = [json.loads(run_a.witness(t).read_text()) for t in range(4)]
    for prev, nxt in zip(witnesses, witnesses[1:]):
        assert prev["outputs"][0] == nxt["inputs"][0]
        assert prev["processed_outputs"]["poseidon_hash"] == [nxt["processed_inputs"]["poseidon_hash"][0]]
    report = json.loads(run_a.report.read_text())
    assert report["max_abs_weight_diff"] < 0.1
    # training descended its loss; on 8 rows the base model may already classify every row, so accuracy may stay
    assert report["fixed_point_loss"] < report["base_loss"]
    assert report["fixed_point_accuracy"] >= report["base_accuracy"]


def test_any_changed_file_is_caught_by_its_hash(bundle):
    proof = bundle / "proofs" / "chunk_00001.json"
    proof.write_text(proof.read_text().replace('"transcript_type"', '"transcript_type" ', 1))
    assert failed_checks(bundle) == {("files", None)}


def test_flipped_proof_byte(bundle):
    path = bundle / "proofs" / "chunk_00002.json"
    p = json.loads(path.read_text())
    p["proof"][100] ^= 0x01
    p["hex_proof"] = None
    path.write_text(json.dumps(p))
    rehash(bundle)
    assert ("proofs", 2) in failed_checks(bundle)


def test_changed_public_instance(bundle):
    """A proof claiming another output commitment no longer verifies."""
    path = bundle / "proofs" / "chunk_00001.json"
    p = json.loads(path.read_text())
    p["instances"][0][-1] = p["instances"][0][0]
    path.write_text(json.dumps(p))
    rehash(bundle)
    assert ("proofs", 1) in failed_checks(bundle)


def test_two_steps_swapped(bundle):
    a, b = bundle / "proofs" / "chunk_00001.json", bundle / "proofs" / "chunk_00002.json"
    tmp = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(tmp)
    rehash(bundle)
    checks = failed_checks(bundle)
    assert ("chain", 1) in checks and ("chain", 2) in checks
    assert not any(c == "proofs" for c, _ in checks)  # each proof is valid on its own


def test_step_replayed(bundle):
    shutil.copy(bundle / "proofs" / "chunk_00001.json", bundle / "proofs" / "chunk_00003.json")
    rehash(bundle)
    assert ("chain", 3) in failed_checks(bundle)


def test_proof_from_another_run(bundle, run_b):
    shutil.copy(run_b.proof(2), bundle / "proofs" / "chunk_00002.json")
    rehash(bundle)
    checks = failed_checks(bundle)
    assert ("chain", 2) in checks or ("proofs", 2) in checks
    assert ("chain", 2) in checks  # same circuit, so it verifies: only the chain gives it away


def test_whole_bundle_of_another_run_with_our_claims(bundle, run_b):
    """Run B's valid proofs presented under run A's announced base and final commitments."""
    for t in range(4):
        shutil.copy(run_b.proof(t), bundle / "proofs" / f"chunk_{t:05d}.json")
    rehash(bundle)
    checks = {c for c, _ in failed_checks(bundle)}
    assert {"base", "final", "schedule"} <= checks


def test_changed_final_commitment(bundle, run_b):
    edit_manifest(bundle, lambda m: m["final"].update(commitment=json.loads(run_b.manifest.read_text())["final"]["commitment"]))
    assert ("final", 3) in failed_checks(bundle)


def test_changed_batch_commitment(bundle):
    d = json.loads((bundle / "dataset.json").read_text())
    d["batch_commitments"][0], d["batch_commitments"][1] = d["batch_commitments"][1], d["batch_commitments"][0]
    (bundle / "dataset.json").write_text(json.dumps(d))
    rehash(bundle)
    assert "schedule" in {c for c, _ in failed_checks(bundle)}


def test_wrong_base_model(bundle):
    weights = load_file(str(bundle / "base_model.safetensors"))
    weights["linear.bias"] = weights["linear.bias"] + 0.5
    save_file(weights, str(bundle / "base_model.safetensors"))
    rehash(bundle)
    assert ("base", None) in failed_checks(bundle)


def test_wrong_base_commitment_claim(bundle, run_b):
    other = json.loads(run_b.manifest.read_text())["base"]
    edit_manifest(bundle, lambda m: m["base"].update(commitment=other["commitment"], salt=other["salt"]))
    assert ("base", 0) in failed_checks(bundle)


def test_missing_last_step(bundle):
    edit_manifest(bundle, lambda m: m["chunks"].pop())
    checks = {c for c, _ in failed_checks(bundle)}
    assert {"final", "schedule"} <= checks


def test_missing_middle_step(bundle):
    edit_manifest(bundle, lambda m: m["chunks"].pop(1))
    checks = failed_checks(bundle)
    assert ("chain", 1) in checks and "schedule" in {c for c, _ in checks}


def test_dev_srs_refused_unless_allowed(run_a):
    report = verify_bundle(run_a.public)
    assert [(f.check, f.chunk) for f in report.failures] == [("srs", None)]
    assert "INSECURE DEV SRS" in report.warnings[0]


def test_dev_srs_cannot_pose_as_ceremony(bundle):
    edit_manifest(bundle, lambda m: m.update(insecure_dev_srs=False))
    assert failed_checks(bundle) == {("srs", None)}


def test_custom_model_verifies_but_is_not_bound(tmp_path):
    """A run of the prover's own module (file.py:Class): the verifier never imports it, so the model
    description cannot be derived; settings and vk are still derived from the published step.onnx and
    the claims, and every proof verifies. The verdict says so: not VALID, exit code 5."""
    from tests.conftest import make_run
    from tests.test_cli import zkpot

    net = tmp_path / "net.py"
    net.write_text("import torch\n\nclass Net(torch.nn.Module):\n"
                   "    def __init__(self, in_features, out_features):\n"
                   "        super().__init__()\n        self.head = torch.nn.Linear(in_features, out_features)\n\n"
                   "    def forward(self, x):\n        return self.head(x)\n")
    run = make_run(tmp_path / "run", model=f"{net}:Net", epochs=1)
    report = verify_bundle(run.public, allow_insecure_dev_srs=True)
    assert not report.failures and report.verdict == "PROOFS VERIFY, CLAIMS NOT BOUND", report.failures
    assert [n for n, _ in report.passed] == ["files", "srs", "run", "circuit", "vk", "proofs", "base", "chain", "final", "schedule"]
    assert any("prover's own module" in u for u in report.unbound)
    r = zkpot("verify", run.public, "--allow-insecure-dev-srs")
    assert r.returncode == 5 and "CLAIMS NOT BOUND" in r.stdout, r.stdout
