"""A cheating prover against real bundles: each test builds an honest bundle (run_a), attacks it, and
asserts the verifier's specific rejection (check and chunk). Attacks already in test_end_to_end.py
(one flipped byte, one changed output instance, two proof files swapped, a replayed step, one chunk
from run B, B's proofs under A's claims, a changed final/base/batch commitment, a dropped chunk, the
dev-SRS flag) are not repeated here; these extend them. The table in docs/attacks.md lists them all.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import ezkl
import pytest
from safetensors.torch import load_file, save_file

from zkpot.spec.artifacts import sha256_file
from tests.adversarial.helpers import failures, felt, manifest, messages, proof_path, read_proof, write_proof
from tests.conftest import edit_manifest, rehash
from zkpot.spec.schedule import schedule
from zkpot.verifier.verify import verify_bundle

# ---------------------------------------------------------------------------------------------
# proof bytes: halo2 KZG proof = commitments (32-byte compressed G1) | evaluations (32-byte
# scalars) | 2 opening points. The protocol in the proof file gives the number of evaluations.


def _regions(p: dict) -> dict[str, int]:
    words = len(p["proof"]) // 32
    n_eval = len(p["protocol"]["evaluations"])
    first_eval = words - n_eval - 2
    return {
        "first advice commitment": 0,
        "middle commitment": first_eval // 2,
        "last commitment (quotient)": first_eval - 1,
        "first evaluation": first_eval,
        "middle evaluation": first_eval + n_eval // 2,
        "last evaluation": first_eval + n_eval - 1,
        "opening proof W": words - 2,
        "opening proof W'": words - 1,
    }


@pytest.mark.parametrize("region", ["first advice commitment", "middle commitment", "last commitment (quotient)",
                                    "first evaluation", "middle evaluation", "last evaluation",
                                    "opening proof W", "opening proof W'"])
@pytest.mark.parametrize("byte", [0, 17, 31])
def test_proof_byte_classes(bundle, region, byte):
    """A bit flipped in every class of proof element, low, middle and high byte (the high byte of a
    compressed point holds its sign flag): the proof no longer verifies."""
    p = read_proof(bundle, 2)
    word = _regions(p)[region]
    p["proof"][32 * word + byte] ^= 0x01 if byte < 31 else 0x40
    write_proof(bundle, 2, p)
    assert failures(bundle) == {("proofs", 2)}


def test_proof_element_replaced_by_another(bundle):
    """A valid element in the wrong place: the first evaluation copied over the last one."""
    p = read_proof(bundle, 1)
    r = _regions(p)
    a, b = 32 * r["first evaluation"], 32 * r["last evaluation"]
    p["proof"][b : b + 32] = p["proof"][a : a + 32]
    write_proof(bundle, 1, p)
    assert failures(bundle) == {("proofs", 1)}


def test_proof_truncated_by_one_element(bundle):
    p = read_proof(bundle, 0)
    p["proof"] = p["proof"][:-32]
    write_proof(bundle, 0, p)
    assert failures(bundle) == {("proofs", 0)}


def test_proof_of_another_chunk_same_length(bundle):
    """Chunk 3's proof bytes under chunk 1's instances: a valid proof, but not of that statement."""
    p1, p3 = read_proof(bundle, 1), read_proof(bundle, 3)
    p1["proof"] = p3["proof"]
    write_proof(bundle, 1, p1)
    assert failures(bundle) == {("proofs", 1)}


# ---------------------------------------------------------------------------------------------
# instances


@pytest.mark.parametrize("index, name", [(0, "H(state_in)"), (1, "H(batch)"), (2, "H(salt_out)")])
def test_changed_instance(bundle, index, name):
    """Each public hash the chunk exposes (test_end_to_end covers H(state_out)), set to a valid
    field element of the run: the proof fails for it."""
    p = read_proof(bundle, 1)
    other = read_proof(bundle, 2)["instances"][0]
    p["instances"][0][index] = other[index] if other[index] != p["instances"][0][index] else felt(7)
    write_proof(bundle, 1, p)
    assert ("proofs", 1) in failures(bundle)


def test_instances_swapped_between_proofs(bundle):
    """Chunk 2's proof carrying chunk 1's public hashes, and the reverse: each would chain
    where it stands, but neither proof verifies for the other's statement."""
    p1, p2 = read_proof(bundle, 1), read_proof(bundle, 2)
    p1["instances"], p2["instances"] = p2["instances"], p1["instances"]
    write_proof(bundle, 1, p1, seal=False)
    write_proof(bundle, 2, p2)
    checks = failures(bundle)
    assert ("proofs", 1) in checks and ("proofs", 2) in checks


@pytest.mark.parametrize("mutate, why", [
    (lambda i: i[0].append(i[0][0]), "an extra public hash"),
    (lambda i: i[0].pop(), "a missing public hash"),
    (lambda i: i.append(list(i[0])), "a second instance column"),
    (lambda i: i[0].__setitem__(1, "zz" * 32), "a hash that is not a field element"),
    (lambda i: i[0].__setitem__(1, felt(-1)[:-2] + "ff"), "a hash not reduced mod r"),
    (lambda i: i[0].__setitem__(1, 12), "a number instead of a hash"),
])
def test_malformed_instances(bundle, mutate, why):
    p = read_proof(bundle, 3)
    mutate(p["instances"])
    write_proof(bundle, 3, p)
    assert ("proofs", 3) in failures(bundle), why


@pytest.mark.parametrize("transcript", ["EVM", "Blake", "poseidon", "", None])
def test_transcript_type(bundle, transcript):
    """The proof was made with the Poseidon transcript; read with any other it is invalid."""
    p = read_proof(bundle, 0)
    p["transcript_type"] = transcript
    write_proof(bundle, 0, p)
    assert failures(bundle) == {("proofs", 0)}


def test_fields_the_step_verifier_does_not_read(bundle):
    """protocol, pretty_public_inputs, hex_proof, timestamp and version are not part of what
    ezkl.verify checks; a cheater who edits them (here: the pretty inputs claim another output,
    and the protocol is dropped) changes nothing the verifier concludes, which comes from
    `instances` and the proof bytes alone. (Folding reads `protocol`.)"""
    honest = verify_bundle(bundle, allow_insecure_dev_srs=True)
    p = read_proof(bundle, 1)
    p["pretty_public_inputs"]["processed_outputs"] = [["0x" + "11" * 32]]
    p["protocol"] = None
    p["hex_proof"] = "0x00"
    p["timestamp"] = 0
    proof_path(bundle, 1).write_text(json.dumps(p))
    rehash(bundle)
    report = verify_bundle(bundle, allow_insecure_dev_srs=True)
    assert report.ok and report.passed == honest.passed


def test_trailing_bytes_after_the_proof_are_accepted_but_change_nothing(bundle):
    """halo2 does not require its transcript to be consumed: bytes appended to a proof still
    verify. The statement is the same (same instances), so no claim changes; proofs are not
    unique byte strings and the verifier never treats them as such."""
    p = read_proof(bundle, 1)
    p["proof"] += [0] * 32
    write_proof(bundle, 1, p)
    assert verify_bundle(bundle, allow_insecure_dev_srs=True).ok


def test_proof_file_not_an_object(bundle):
    proof_path(bundle, 2).write_text("[1, 2, 3]")
    rehash(bundle)
    assert ("proofs", 2) in failures(bundle)


# ---------------------------------------------------------------------------------------------
# another circuit: a run with lr = 0.25 (same data, model, schedule)


def test_proofs_under_another_vk(bundle, run_lr):
    """The lr=0.25 circuit's vk beside run A's claims: it is not the vk the claims derive. With the
    bundle's keys trusted (--trust-bundle-keys), run A's proofs fail against it, every one."""
    shutil.copy(run_lr.vk, bundle / "vk.key")
    rehash(bundle)
    assert failures(bundle) == {("vk", None)}
    logrows = [json.loads((d / "settings.json").read_text())["run_args"]["logrows"] for d in (bundle, run_lr.public)]
    if logrows[0] == logrows[1]:
        assert {("proofs", c) for c in range(4)} <= failures(bundle, bind=False)
    else:  # (the calibration samples differ with the claims: here the lr circuit is a logrow larger)
        assert failures(bundle, bind=False) == {("proofs", None)}
        assert any(f"2^{logrows[1]} rows, the circuit has 2^{logrows[0]}" in m for m in messages(bundle, bind=False))


def test_vk_claiming_another_domain(bundle):
    """A vk whose k byte says 2^24 rows: ezkl would size the domain from it before checking
    anything (97 s and 20 GB per proof). The derived vk differs from it; with the bundle's keys
    trusted, it is refused from its header, at once, before ezkl reads it."""
    vk = bytearray((bundle / "vk.key").read_bytes())
    vk[1] = 24
    (bundle / "vk.key").write_bytes(bytes(vk))
    rehash(bundle)
    assert failures(bundle) == {("vk", None)}
    assert failures(bundle, bind=False) == {("proofs", None)}
    k = json.loads((bundle / "settings.json").read_text())["run_args"]["logrows"]
    assert any(f"2^24 rows, the circuit has 2^{k}" in msg for msg in messages(bundle, bind=False))


def test_proof_of_another_circuit_spliced_in(bundle, run_lr):
    shutil.copy(run_lr.proof(1), proof_path(bundle, 1))
    rehash(bundle)
    assert ("proofs", 1) in failures(bundle)


def test_another_circuit_with_our_learning_rate_claimed(run_lr, tmp_path):
    """THE unchecked-claim attack (fixed here): a complete, valid lr=0.25 bundle whose manifest
    says lr=0.5. Every proof verifies against its own vk; only the run check, which retraces the
    described step and compares it with step.onnx, sees that the claim is not the circuit."""
    public = tmp_path / "public"
    shutil.copytree(run_lr.public, public)
    assert verify_bundle(public, allow_insecure_dev_srs=True).ok
    edit_manifest(public, lambda m: m["run"]["optimizer"].update(lr=0.5))
    assert failures(public) == {("run", None)}


def test_circuit_files_of_another_run(bundle, run_lr):
    """step.onnx, settings and vk of the lr=0.25 run beside run A's proofs and claims."""
    for name in ("step.onnx", "settings.json", "vk.key"):
        shutil.copy(run_lr.public / name, bundle / name)
    rehash(bundle)
    assert failures(bundle) == {("run", None)}  # stops before any proof is read


def test_onnx_and_vk_swapped_but_claims_adjusted(bundle, run_lr):
    """The cheater also edits the claim to lr=0.25 (and names that circuit's SRS), keeping A's proofs:
    the run check passes (the claim now is the circuit) and every proof fails against that circuit's vk."""
    for name in ("step.onnx", "settings.json", "vk.key", "kzg.srs"):
        shutil.copy(run_lr.public / name, bundle / name)
    srs = json.loads((run_lr.public / "manifest.json").read_text())["srs"]
    edit_manifest(bundle, lambda m: (m["run"]["optimizer"].update(lr=0.25), m.update(srs=srs)))
    rehash(bundle)
    assert failures(bundle) == {("proofs", c) for c in range(4)}


# ---------------------------------------------------------------------------------------------
# chunks: dropped, duplicated, reordered, spliced from run B (same circuit, other salts)


def test_manifest_chunks_reordered(bundle):
    """The manifest lists the proof files in another order (the files are untouched)."""
    edit_manifest(bundle, lambda m: m["chunks"].__setitem__(slice(1, 3), [m["chunks"][2], m["chunks"][1]]))
    checks = failures(bundle)
    assert ("chain", 1) in checks and ("chain", 2) in checks and ("schedule", None) in checks


def test_manifest_chunk_listed_twice(bundle):
    edit_manifest(bundle, lambda m: m["chunks"].insert(2, m["chunks"][1]))
    checks = failures(bundle)
    assert ("chain", 2) in checks and ("schedule", None) in checks


def test_first_chunk_dropped(bundle):
    edit_manifest(bundle, lambda m: m["chunks"].pop(0))
    checks = failures(bundle)
    assert ("base", 0) in checks and ("schedule", None) in checks


def test_all_chunks_dropped(bundle):
    edit_manifest(bundle, lambda m: m["chunks"].clear())
    checks = failures(bundle)
    assert {"base", "final", "schedule"} <= {c for c, _ in checks}


def test_prefix_spliced_from_run_b(bundle, run_b):
    """B's first two proofs then A's last two. (B's vk may differ from A's even for the same
    ONNX: ezkl's settings list lookups in hash-map order, so the proofs may fail too; the base
    and chain checks reject the splice either way.)"""
    for c in (0, 1):
        shutil.copy(run_b.proof(c), proof_path(bundle, c))
    rehash(bundle)
    checks = failures(bundle)
    assert ("base", 0) in checks and ("chain", 2) in checks


def test_suffix_spliced_from_run_b_with_its_final_claim(bundle, run_b):
    """A's first half, then B's second half, announcing B's final model."""
    for c in (2, 3):
        shutil.copy(run_b.proof(c), proof_path(bundle, c))
    final_b = json.loads(run_b.manifest.read_text())["final"]["commitment"]
    edit_manifest(bundle, lambda m: m["final"].update(commitment=final_b))
    rehash(bundle)
    checks = failures(bundle)
    assert ("chain", 2) in checks and ("final", 3) not in checks


def test_run_b_bundle_with_run_a_dataset(bundle, run_b):
    """All of run B (valid by itself: its proofs, circuit files and claims) presented as training
    on A's committed dataset: only the batch hashes give it away, at every chunk."""
    for name in [f"proofs/chunk_{c:05d}.json" for c in range(4)] + ["base_model.safetensors", "settings.json", "vk.key"]:
        shutil.copy(run_b.public / name, bundle / name)
    mb = json.loads(run_b.manifest.read_text())
    edit_manifest(bundle, lambda m: m.update(base=mb["base"], final=mb["final"]))
    rehash(bundle)
    checks = failures(bundle)
    assert {("schedule", c) for c in range(4)} <= checks and {c for c, _ in checks} == {"schedule"}


# ---------------------------------------------------------------------------------------------
# schedule: a batch used twice in an epoch or never, a batch not in the committed dataset


def _dataset(public):
    return json.loads((public / "dataset.json").read_text())


def _write_dataset(public, commitments):
    d = {"batch_commitments": commitments, "root": ezkl.poseidon_hash(commitments)[0]}
    (public / "dataset.json").write_text(json.dumps(d))
    edit_manifest(public, lambda m: m["dataset"].update(root=d["root"]))
    rehash(public)


def test_batch_claimed_twice_in_an_epoch(bundle):
    """The manifest claims epoch 0 used batch 1 twice (and batch 0 never)."""
    edit_manifest(bundle, lambda m: m["chunks"][1].update(steps=m["chunks"][0]["steps"]))
    checks = failures(bundle)
    assert ("schedule", None) in checks


def test_dataset_commits_one_batch_twice(bundle):
    """A dataset of [h0, h0]: batch 1 is never committed, batch 0 stands in for it."""
    h = _dataset(bundle)["batch_commitments"]
    _write_dataset(bundle, [h[0], h[0]])
    checks = failures(bundle)
    assert ("schedule", None) in checks
    assert any("same batch twice" in s for s in messages(bundle))


def test_committed_batch_never_used(bundle):
    """A third committed batch that no proof uses: the schedule needs 6 steps, 4 are proved."""
    h = _dataset(bundle)["batch_commitments"]
    _write_dataset(bundle, h + [felt(12345)])
    edit_manifest(bundle, lambda m: m["run"].update(num_batches=3))
    assert ("schedule", None) in failures(bundle)


def test_batch_not_in_committed_dataset(bundle):
    """Batch 1's commitment replaced by another (root recomputed): the chunks that use batch 1
    prove a batch that is not in the dataset."""
    h = _dataset(bundle)["batch_commitments"]
    _write_dataset(bundle, [h[0], felt(999)])
    steps = [s for c in manifest(bundle)["chunks"] for s in c["steps"]]
    uses_1 = {c for c, (e, b) in enumerate(steps) if b == 1}
    assert failures(bundle) == {("schedule", c) for c in uses_1}


def test_dataset_root_not_the_commitments(bundle):
    edit_manifest(bundle, lambda m: m["dataset"].update(root=felt(5)))
    assert failures(bundle) == {("schedule", None)}


def test_dataset_commitment_not_a_field_element(bundle):
    """ezkl's poseidon_hash panics (a BaseException) on such a string: rejected before it."""
    h = _dataset(bundle)["batch_commitments"]
    (bundle / "dataset.json").write_text(json.dumps({"batch_commitments": [h[0], "zz" * 32], "root": felt(1)}))
    rehash(bundle)
    assert failures(bundle) == {("schedule", None)}


# ---------------------------------------------------------------------------------------------
# every run field of the manifest (each is a claim about the circuit or the schedule)


def _other_seed(m):
    order = schedule(m["run"]["num_batches"], m["run"]["epochs"], m["run"]["schedule_seed"])
    return next(s for s in range(1, 100) if schedule(m["run"]["num_batches"], m["run"]["epochs"], s) != order)


def _claim_frozen(m, name):
    """Move a parameter from the layout to the frozen claims (its sha256 left as the claims had it)."""
    i = m["run"]["layout"]["names"].index(name)
    m["run"]["layout"]["names"].pop(i), m["run"]["layout"]["shapes"].pop(i)
    m["run"]["frozen"]["names"].append(name)


RUN_FIELDS = [
    ("lr", lambda m: m["run"]["optimizer"].update(lr=0.25), "run"),
    ("lr as an int", lambda m: m["run"]["optimizer"].update(lr=1), "run"),
    ("momentum", lambda m: m["run"]["optimizer"].update(momentum=0.9), "run"),
    ("weight decay", lambda m: m["run"]["optimizer"].update(weight_decay=0.01), "run"),
    ("optimizer", lambda m: m["run"]["optimizer"].update(name="adam"), "run"),
    ("loss", lambda m: m["run"].update(loss="mse"), "run"),
    ("model", lambda m: m["run"]["model"].update(name="mlp", kwargs={**m["run"]["model"]["kwargs"], "hidden": [8]}), "run"),
    ("model in_features", lambda m: m["run"]["model"]["kwargs"].update(in_features=4), "run"),
    ("batch size", lambda m: m["run"].update(batch_size=8), "run"),
    ("num batches", lambda m: m["run"].update(num_batches=3), "run"),
    ("epochs", lambda m: m["run"].update(epochs=3), "schedule"),
    ("schedule seed", lambda m: m["run"].update(schedule_seed=_other_seed(m)), "schedule"),
    ("steps per proof", lambda m: m["run"].update(steps_per_proof=2), "run"),
    ("feature bound", lambda m: m["run"]["bounds"].update(features=8.0), "run"),   # (the step clips to the bounds)
    ("weight bound", lambda m: m["run"]["bounds"].update(weights=16.0), "run"),
    ("bounds missing", lambda m: m["run"].pop("bounds"), "manifest"),
    ("scale", lambda m: m["run"].update(scale=7), "run"),   # (the clamps are a function of the scale)
    ("layout batch size", lambda m: m["run"]["layout"].update(batch_size=2), "run"),
    ("layout features", lambda m: m["run"]["layout"].update(features=4), "run"),
    ("layout label width", lambda m: m["run"]["layout"].update(label_width=2), "run"),
    ("layout momentum", lambda m: m["run"]["layout"].update(momentum=True), "run"),
    ("layout names", lambda m: m["run"]["layout"].update(names=m["run"]["layout"]["names"][::-1],
                                                         shapes=m["run"]["layout"]["shapes"][::-1]), "run"),
    ("frozen sha256 of none changed", lambda m: m["run"]["frozen"].update(sha256="0" * 64), "frozen"),
    ("frozen names a trained parameter", lambda m: m["run"]["frozen"].update(names=m["run"]["layout"]["names"][-1:]),
     "manifest"),
    ("frozen: a trained parameter claimed frozen", lambda m: _claim_frozen(m, m["run"]["layout"]["names"][-1]), "frozen"),
    ("frozen missing", lambda m: m["run"].pop("frozen"), "manifest"),
    ("frozen malformed", lambda m: m["run"].update(frozen={"names": "linear.bias", "sha256": "0" * 64}), "manifest"),
    ("base salt", lambda m: m["base"]["salt"].__setitem__(0, felt(3)), "base"),
    ("srs origin", lambda m: m["srs"].update(origin="ceremony"), "srs"),
    ("srs sha256", lambda m: m["srs"].update(sha256="0" * 64), "cannot check"),  # an SRS never hashed here
    ("srs logrows", lambda m: m["srs"].update(logrows=20), "srs"),
    ("ezkl version", lambda m: m["versions"].update(ezkl="22.2.0"), "circuit"),
    ("format", lambda m: m.update(format="zkpot/bundle-0"), "manifest"),
    ("vk file name", lambda m: m["circuit"].update(vk="other.key"), "files"),
    ("proof name leaves the bundle", lambda m: m["chunks"][0].update(proof="../chunk.json"), "files"),
]


@pytest.mark.parametrize("name, edit, check", RUN_FIELDS, ids=[f[0] for f in RUN_FIELDS])
def test_changed_manifest_field(bundle, name, edit, check):
    edit_manifest(bundle, edit)
    checks = failures(bundle)
    assert check in {c for c, _ in checks}, (name, checks)


def test_schedule_seed_with_the_same_order_is_the_same_claim(bundle):
    """A seed that gives the same order states the same schedule: nothing to reject."""
    m = manifest(bundle)
    order = schedule(m["run"]["num_batches"], m["run"]["epochs"], m["run"]["schedule_seed"])
    same = next(s for s in range(1, 100) if schedule(m["run"]["num_batches"], m["run"]["epochs"], s) == order)
    edit_manifest(bundle, lambda m: m["run"].update(schedule_seed=same))
    assert verify_bundle(bundle, allow_insecure_dev_srs=True).ok


# ---------------------------------------------------------------------------------------------
# settings and tool versions


def _leaves(value, path=()):
    """Every field of a JSON value, as a path of keys and indices, with its value."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, path + (k,))
        if value:
            return
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from _leaves(v, path + (i,))
        return
    yield path, value


def _changed(value):
    """Another value of the same kind (what a cheater would write into that field)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list):
        return value + [0]
    if isinstance(value, dict):
        return {**value, "x": 0}
    return 0


def test_every_settings_field_is_derived(bundle):
    """Each field of settings.json, changed alone and re-sealed: the settings are a function of the
    claims, so every change is refused at `circuit`, naming the field, before ezkl reads anything.
    Also each field removed, and a field added at every level."""
    from zkpot.verifier.derive import derive_circuit
    from zkpot.verifier.read import read_bundle
    from zkpot.verifier.report import Report

    original = json.loads((bundle / "settings.json").read_text())
    edits = []
    for path, value in _leaves(original):
        edits.append((f"{'.'.join(map(str, path))} changed", path, lambda v: _changed(v)))
        edits.append((f"{'.'.join(map(str, path))} removed", path, None))
    edits.append(("a new top-level field", ("extra_field",), lambda v: 1))
    escaped = []
    for name, path, change in edits:
        s = json.loads(json.dumps(original))
        parent = s
        for key in path[:-1]:
            parent = parent[key]
        if change is None:
            parent.pop(path[-1]) if isinstance(parent, dict) else parent.pop(path[-1])
        else:
            parent[path[-1]] = change(parent[path[-1]] if isinstance(parent, list) or path[-1] in parent else None)
        (bundle / "settings.json").write_text(json.dumps(s))
        rehash(bundle)
        try:  # the stages up to the derivation: what a full verification runs first
            derive_circuit(read_bundle(bundle, False, Report(), Path(tempfile.mkdtemp(dir=bundle.parent))), "", True,
                           Report(), lambda _: None)
            escaped.append(name)
        except Exception as e:
            if getattr(e, "check", None) != "circuit":
                escaped.append(f"{name} ({e})")
    assert len(edits) > 100 and not escaped, escaped
    assert failures(bundle) == {("circuit", None)}  # and through the whole verifier (the last edit)


def test_settings_field_changed_with_real_proofs(run_a, tmp_path):
    """The attack that made a run that never trained verify as fine-tuned: settings.json differs from the
    honest one in one run_args field (param_scale 8 -> 0: the learning rate quantizes to 0), the honest
    step.onnx is compiled with it, set up with the bundle's SRS and proved over the honest run's private
    inputs. The final state is the base state; every proof verifies against the new vk. Rejected at
    `circuit`: the settings the claims give are not these."""
    from zkpot.circuits import pipeline
    from zkpot.prover.prove import write_manifest

    root = tmp_path / "run"
    shutil.copytree(run_a.root, root)
    from zkpot.prover.run import RunDir

    rd = RunDir(root)
    s = json.loads(rd.settings.read_text())
    s["run_args"]["param_scale"] = 0
    rd.settings.write_text(json.dumps(s))
    pipeline.compile_circuit(rd.onnx, rd.settings, rd.compiled)
    pipeline.setup(rd.compiled, rd.srs, rd.vk, rd.pk)
    state = None
    for c in range(4):
        inputs = json.loads(rd.chunk_input(c).read_text())
        if state is not None:
            inputs["input_data"][0] = state
        rd.chunk_input(c).write_text(json.dumps(inputs))
        w = pipeline.gen_witness(rd.chunk_input(c), rd.compiled, rd.witness(c))
        pipeline.prove(rd.witness(c), rd.compiled, rd.pk, rd.proof(c), rd.srs)
        state = w["outputs"][0]
    assert state[:-6] == json.loads(rd.chunk_input(0).read_text())["input_data"][0][:-6], "the forged run should not train"
    write_manifest(rd)
    assert all(pipeline.verify(rd.proof(c), rd.settings, rd.vk, rd.srs) for c in range(4))  # the proofs are real
    assert failures(rd.public) == {("circuit", None)}
    assert any("param_scale is 0, the claims give 8" in msg for msg in messages(rd.public))


# ---------------------------------------------------------------------------------------------
# the SRS


def test_another_dev_srs(bundle, tmp_path):
    """An SRS with another secret (same size), known to this machine, named by the bundle with its
    verifier part: the vk the claims derive with it is not the bundle's; with the bundle's vk trusted,
    the KZG openings fail for every proof."""
    from zkpot.circuits import srs as srs_mod

    other = tmp_path / "other.srs"
    ezkl.gen_srs(str(other), json.loads((bundle / "manifest.json").read_text())["srs"]["logrows"])
    srs_mod.see(other)
    (bundle / "kzg.srs").write_bytes(srs_mod.verifier_srs(other))
    edit_manifest(bundle, lambda m: m["srs"].update(sha256=sha256_file(other)))
    rehash(bundle)
    assert failures(bundle) == {("vk", None)}
    assert failures(bundle, bind=False) == {("proofs", c) for c in range(4)}


# the verifier part (k=1): k | g[0] | g[1] | g_lagrange[0] | g_lagrange[1] | h | s·h
SRS_PART_FIELDS = {"k": (0, 4), "g[0]": (4, 64), "g[1]": (68, 64), "g_lagrange[0]": (132, 64),
                   "g_lagrange[1]": (196, 64), "h": (260, 128), "s·h": (388, 128)}


@pytest.mark.parametrize("field", SRS_PART_FIELDS)
def test_every_field_of_the_srs_verifier_part(bundle, field):
    """kzg.srs changed in any field (a valid point where one fits: s·h := h, i.e. s = 1, and so on):
    it is no longer the verifier part of the SRS the manifest names, which this machine cut itself
    from the full file it hashed."""
    start, size = SRS_PART_FIELDS[field]
    data = bytearray((bundle / "kzg.srs").read_bytes())
    assert len(data) == 516
    swap = {"g[0]": "g[1]", "g[1]": "g[0]", "g_lagrange[0]": "g_lagrange[1]", "g_lagrange[1]": "g_lagrange[0]",
            "h": "s·h", "s·h": "h"}
    if field in swap:
        other = SRS_PART_FIELDS[swap[field]][0]
        data[start : start + size] = data[other : other + size]
    else:
        data[start] ^= 1
    (bundle / "kzg.srs").write_bytes(bytes(data))
    rehash(bundle)
    assert failures(bundle) == {("srs", None)}
    assert failures(bundle, bind=False) == {("srs", None)}


def test_srs_verifier_part_of_an_unknown_srs(bundle):
    """s·h replaced by h (s = 1, so anyone can open anything) and the manifest naming that file's
    hash: no machine has hashed a full SRS with that sha256, so nothing can be bound: not VALID."""
    data = bytearray((bundle / "kzg.srs").read_bytes())
    data[-128:] = data[-256:-128]
    (bundle / "kzg.srs").write_bytes(bytes(data))
    edit_manifest(bundle, lambda m: m["srs"].update(sha256=sha256_file(bundle / "kzg.srs")))
    rehash(bundle)
    assert failures(bundle) == {("cannot check", None)}


def test_the_full_srs_in_the_bundle_is_refused(bundle, run_a):
    """A bundle carries the verifier part; the full file (2^k points) in its place is refused."""
    shutil.copyfile(run_a.srs, bundle / "kzg.srs")
    rehash(bundle)
    assert failures(bundle) == {("srs", None)}


def test_dev_srs_presented_as_ceremony_everywhere(bundle):
    """Both the flag and the SRS description claim a ceremony file; the hash says otherwise."""
    edit_manifest(bundle, lambda m: (m.update(insecure_dev_srs=False), m["srs"].update(origin="ceremony")))
    assert failures(bundle) == {("srs", None)}
    report = verify_bundle(bundle)  # and without --allow-insecure-dev-srs, the same
    assert [(f.check, f.chunk) for f in report.failures] == [("srs", None)]


# ---------------------------------------------------------------------------------------------
# truncated and oversized files


@pytest.mark.parametrize("name, check", [
    ("manifest.json", "manifest"), ("settings.json", "circuit"), ("vk.key", "vk"), ("kzg.srs", "srs"),
    ("proofs/chunk_00002.json", "proofs"), ("dataset.json", "schedule"), ("base_model.safetensors", "base"),
    ("step.onnx", "run"),
])
@pytest.mark.parametrize("keep", [0, 0.5, -2])
def test_truncated_file(bundle, name, check, keep):
    """Empty, half, and all but the last two bytes (a JSON file's "}\n")."""
    path = bundle / name
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)] if keep > -1 else data[:keep])
    if name != "manifest.json":
        rehash(bundle)
    assert check in {c for c, _ in failures(bundle)}


@pytest.mark.parametrize("name, check", [
    ("kzg.srs", "files"), ("base_model.safetensors", "base"), ("step.onnx", "run"), ("dataset.json", "schedule"),
    ("proofs/chunk_00001.json", "proofs"),
])
def test_junk_appended(bundle, name, check):
    """Bytes after the end of a file whose format has an end (an SRS longer than its header's k
    allows is refused by size, before it is hashed)."""
    with open(bundle / name, "ab") as f:
        f.write(b"\x00junk" * 13)
    rehash(bundle)
    assert check in {c for c, _ in failures(bundle)}


@pytest.mark.parametrize("name, size", [
    ("manifest.json", (16 << 20) + 1), ("settings.json", (16 << 20) + 1), ("dataset.json", (16 << 20) + 1),
    ("proofs/chunk_00000.json", (4 << 20) + 1), ("vk.key", (1 << 30) + 1), ("step.onnx", (256 << 20) + 1),
    ("kzg.srs", 4 + (128 << 26) + 257), ("base_model.safetensors", (2 << 30) + 1),
])
def test_oversized_file_refused_before_reading(bundle, name, size):
    """Sparse files past each bound: refused from their size, without reading (or hashing) them."""
    with open(bundle / name, "r+b") as f:
        f.truncate(size)
    checks = failures(bundle)
    assert checks == {("manifest" if name == "manifest.json" else "files", None)}
    assert any("allowed" in s for s in messages(bundle))


def test_file_linked_out_of_the_bundle(bundle, run_a):
    """A symlink to the genuine proof elsewhere: same bytes, same hash, but not in the bundle."""
    proof_path(bundle, 1).unlink()
    os.symlink(run_a.proof(1), proof_path(bundle, 1))
    assert failures(bundle) == {("files", None)}


def test_base_model_with_nan(bundle):
    """ezkl quantizes NaN to 0, so a NaN weight would hash like a zero one: refused outright."""
    w = load_file(str(bundle / "base_model.safetensors"))
    w["linear.bias"][0] = float("nan")
    save_file(w, str(bundle / "base_model.safetensors"))
    rehash(bundle)
    assert failures(bundle) == {("base", None)}
    assert any("NaN" in s for s in messages(bundle))


def test_unknown_model_is_never_imported(bundle, tmp_path):
    """A manifest naming a module file: the verifier must not execute it (it would be the
    bundle author's code). The claims, the model's name among them, seed the calibration samples, so
    another name usually derives other settings, refused at `circuit`; where the other samples happen
    to give the same settings, the proofs verify and the model is reported as not derived (UNBOUND,
    as an honest custom-model bundle: tests/test_end_to_end.py). Never VALID."""
    evil = tmp_path / "evil.py"
    marker = tmp_path / "ran"
    evil.write_text(f"open({str(marker)!r}, 'w').write('x')\nimport torch\nclass Net(torch.nn.Module): pass\n")
    edit_manifest(bundle, lambda m: m["run"]["model"].update(name=f"{evil}:Net"))
    report = verify_bundle(bundle, allow_insecure_dev_srs=True)
    assert not marker.exists()
    failed = {(f.check, f.chunk) for f in report.failures}
    assert failed == {("circuit", None)} or (not failed and report.verdict == "PROOFS VERIFY, CLAIMS NOT BOUND"
                                             and any("evil.py" in u for u in report.unbound)), (failed, report.verdict)
