"""Folding a real run into one run proof, and the attacks a verifier must stop.

The CI-sized fold: one chunk proof covering the whole run (2 epochs x 2 batches = 4 SGD steps)
folded at logrows 21, the largest aggregation that fits a 24 GiB machine without swap.
Cost: about 4 minutes per aggregate, plus a one-off 3-minute aggregation setup (cached by hash).
The 2-chunk, fan-in-2 fold (logrows 22, ~40 GB with swap) is behind `-m fold_full`.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys

import ezkl
import pytest

from zkpot.spec.artifacts import sha256_file
from zkpot.prover import train as tr
from zkpot.prover.config import RunConfig
from zkpot.prover.fold import DiskSpaceError, check_disk, fold, key_entry, logrows_for
from zkpot.prover.keys import setup
from zkpot.prover.prove import prove_all
from zkpot.prover.run import RunDir
from tests.conftest import SMALL, edit_manifest, rehash
from zkpot.verifier import decider
from zkpot.verifier.verify import verify_bundle

ONE_CHUNK = {**SMALL, "steps_per_proof": 4}


def fold_or_skip(public, fan_in: int, keep_keys: bool = True):
    """Fold, or skip where this machine's disk cannot hold the aggregation key (CI disks vary)."""
    try:
        return fold(public, fan_in, keep_keys=keep_keys)
    except DiskSpaceError as e:
        pytest.skip(str(e))


RAY_ARGS = dict(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=600 * 2**20,
                runtime_env={"env_vars": {"RUST_LOG": "error"}})


def proved_run(root) -> RunDir:
    rd = RunDir(root)
    tr.prepare(rd, RunConfig(**ONE_CHUNK), progress=lambda *_: None)
    tr.fixed_point_run(rd)
    setup(rd, None, progress=lambda *_: None, fold_fan_in=1)
    return rd


@contextlib.contextmanager
def two_node_cluster():
    """A Ray cluster of two nodes started as on two machines (`ray start --head`, then `ray start --address`),
    here on one: the head offers `zkpot_fold` (it folds), the second node `zkpot_prove` (it proves chunks).
    Ray's token authentication is off here (this process imported Ray before any token could be set; on
    real machines turn it on: docs/cluster.md). Yields the address and {resource: node id}."""
    import socket

    import ray

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_memory_monitor_refresh_ms": "0",  # (see tests/test_ray.py)
           "RUST_LOG": "error"}
    ray_cli = [sys.executable, "-m", "ray.scripts.scripts"]
    common = ["--num-cpus", "1", "--object-store-memory", str(300 * 2**20), "--disable-usage-stats"]
    address = f"127.0.0.1:{port}"
    try:
        for args in (["--head", f"--port={port}", "--include-dashboard=false", "--resources", '{"zkpot_fold": 1}'],
                     [f"--address={address}", "--resources", '{"zkpot_prove": 1}']):
            subprocess.run([*ray_cli, "start", *args, *common], env=env, check=True, capture_output=True, timeout=120)
        ray.init(address=address, log_to_driver=False)
        yield address, {r: n["NodeID"] for n in ray.nodes() if n["Alive"] for r in n["Resources"] if r.startswith("zkpot_")}
    finally:
        ray.shutdown()
        subprocess.run([*ray_cli, "stop", "--force"], env=env, capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def ray_folded(tmp_path_factory) -> tuple[RunDir, list]:
    """The session's fold, made as `zkpot prove --executor ray --fold` makes it on a two-node cluster: the
    chunk proof on the node offering `zkpot_prove`, the fold node as a Ray task on the node offering
    `zkpot_fold` as soon as its chunk proof is back; `fold` then only records the tree (it fails here if it
    aggregates). The bundle is a local run's, proof bytes aside. One aggregation serves every fold test."""
    pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")
    from zkpot.circuits import pipeline

    rd, nodes, placed = proved_run(tmp_path_factory.mktemp("folded")), [], {}
    local = RunDir(tmp_path_factory.mktemp("folded-locally") / "run")
    shutil.copytree(rd.root, local.root)
    with two_node_cluster() as (address, node_of):
        prove_all(rd, executor="ray", address=address, fold_fan_in=1, placed=placed,
                  on_node=lambda d, i, s: nodes.append((d, i)))
    assert placed == {("chunk", 0): node_of["zkpot_prove"], ("fold", 1, 0): node_of["zkpot_fold"]}
    assert node_of["zkpot_prove"] != node_of["zkpot_fold"]
    prove_all(local)
    strip = lambda m: {**m, "files": {f: h for f, h in m["files"].items() if not f.startswith("proofs/")}}
    assert strip(json.loads(rd.manifest.read_text())) == strip(json.loads(local.manifest.read_text()))
    assert json.loads(rd.proof(0).read_text())["instances"] == json.loads(local.proof(0).read_text())["instances"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "aggregate", lambda *a, **k: pytest.fail("the node was already folded"))
        fold_or_skip(rd.public, 1)
    return rd, nodes


@pytest.fixture(scope="session")
def folded(ray_folded) -> RunDir:
    return ray_folded[0]


@pytest.fixture(scope="session")
def forged(folded, tmp_path_factory):
    """A cheating prover's fold: the chunk proof's claimed output commitment is changed, so the
    chunk proof is invalid, then folded anyway (ezkl's aggregate does not object) and the
    manifest announces the forged final commitment."""
    public = tmp_path_factory.mktemp("forged") / "public"
    shutil.copytree(folded.public, public, ignore=shutil.ignore_patterns("fold"))
    chunk = public / "proofs" / "chunk_00000.json"
    p = json.loads(chunk.read_text())
    forged_final = p["instances"][0][0]  # claim the run ended where it started
    p["instances"][0][-1] = forged_final
    chunk.write_text(json.dumps(p))
    m = json.loads((public / "manifest.json").read_text())
    m["final"]["commitment"] = forged_final
    m.pop("fold")
    m["files"] = {k: v for k, v in m["files"].items() if not k.startswith("fold/")}
    (public / "manifest.json").write_text(json.dumps(m))
    rehash(public)
    fold_or_skip(public, 1)
    return public


def linked_cache(dst, namespaces: tuple[str, ...], skip=lambda f: False):
    """A cache holding the session's entries of `namespaces`, hard-linked (no copy of an 8.9 GB key; their
    seals stay valid: a seal binds a file's place under the cache root and its content)."""
    import os

    from zkpot.spec import cache as cache_mod

    session = cache_mod.root()
    dst.mkdir(parents=True, exist_ok=True, mode=0o700)   # (owner-only whatever the umask: spec/cache.py)
    for ns in namespaces:
        (dst / ns).mkdir(exist_ok=True, mode=0o700)
        for f in (session / ns).rglob("*"):
            if f.is_file() and not skip(f):
                (dst / f.relative_to(session)).parent.mkdir(parents=True, exist_ok=True)
                os.link(f, dst / f.relative_to(session))
    return dst


def checks(public, **kw):
    report = verify_bundle(public, allow_insecure_dev_srs=True, **kw)
    return report, {f.check for f in report.failures}


@pytest.fixture
def folded_copy(folded, tmp_path):
    dst = tmp_path / "public"
    shutil.copytree(folded.public, dst)
    return dst


def test_folded_run_verifies_from_the_run_proof_alone(folded, folded_copy, tmp_path, monkeypatch):
    """A third party's first verification of a folded run, on an empty cache: the chunk proofs deleted (the
    run proof carries every chunk's public hashes), the full SRS asked for once, then the run proof's vk
    derived from scratch (a sample proof of the derived chunk circuit on all-zero inputs, setup_aggregate)
    equals the bundle's byte for byte, although the prover set its key up from another sample (its real chunk
    proof): keygen reads no witness. The prover's aggregation key, sealed in this cache as an older zkpot sealed
    it, is not read: setup_aggregate runs. The derived files are linked into the session's cache for later tests."""
    from zkpot.spec import cache as cache_mod
    from zkpot.verifier import rebuild

    session = cache_mod.root()
    monkeypatch.setenv("ZKPOT_CACHE", str(tmp_path / "empty-cache"))
    for vk in (session / "aggregation").rglob("vk.key"):   # the prover's, planted and sealed
        planted = cache_mod.root() / vk.relative_to(session)
        planted.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(vk, planted)
        cache_mod.seal(planted)
    assert list((cache_mod.root() / "aggregation").rglob("vk.key"))
    setups = []
    monkeypatch.setattr(rebuild.ezkl, "setup_aggregate", lambda *a, f=ezkl.setup_aggregate: setups.append(a) or f(*a))
    for proof in (folded_copy / "proofs").iterdir():
        proof.unlink()  # not read: the run proof carries every chunk's public hashes
    report, failed = checks(folded_copy)
    assert report.verdict == "CANNOT CHECK HERE" and "--srs" in report.cannot_check  # the full SRS, once
    report, failed = checks(folded_copy, srs=folded.srs)
    assert report.ok, [str(f) for f in report.failures]
    names = [n for n, _ in report.passed]
    assert "fold" in names and "pairing" in names and "proofs" not in names
    assert {"base", "chain", "final", "schedule"} <= set(names)
    assert any(n == "vk" and "setup_aggregate" in d for n, d in report.passed)
    made = {f.name: f for f in (tmp_path / "empty-cache" / "circuits").rglob("aggregation-*")}
    sample = next(f for name, f in made.items() if name.startswith("aggregation-sample-c-") and name.endswith(".json"))
    assert json.loads(sample.read_text())["instances"] != json.loads((folded.public / "proofs" / "chunk_00000.json").read_text())["instances"]
    assert len(setups) == 1  # its own setup_aggregate, not the prover's key
    _, failed = checks(folded_copy, deep=True)
    assert failed == {"files"}  # --deep does read them
    monkeypatch.undo()
    for f in (tmp_path / "empty-cache" / "circuits").rglob("aggregation-*"):
        dst = session / f.relative_to(tmp_path / "empty-cache")
        if f.is_file() and not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.link(f, dst)  # (its seal binds its place under the cache root and its content: valid there too)


def test_deep_verification_checks_chunks_too(folded):
    report, _ = checks(folded.public, deep=True)
    assert report.ok and "proofs" in [n for n, _ in report.passed]


def test_tampered_run_proof(folded_copy):
    top = folded_copy / "fold" / "level1_00000.json"
    p = json.loads(top.read_text())
    p["proof"][200] ^= 1
    p["hex_proof"] = None
    top.write_text(json.dumps(p))
    rehash(folded_copy)
    assert checks(folded_copy)[1] == {"fold"}


def test_aggregation_vk_claiming_another_domain(folded_copy):
    """The run proof's aggregation vk with its k byte changed (21 -> 24), re-sealed: not the derived
    aggregation vk (`vk`); with the bundle's keys trusted, refused from the vk's header before ezkl
    sizes a domain from it (`fold`)."""
    vk = folded_copy / "fold" / "level1_fanin1.vk"
    data = bytearray(vk.read_bytes())
    assert data[1] == 21
    data[1] = 24
    vk.write_bytes(bytes(data))
    rehash(folded_copy)
    report, failed = checks(folded_copy)
    assert failed == {"vk"} and "not the aggregation key" in str(report.failures[0])
    report, failed = checks(folded_copy, bind=False)
    assert failed == {"fold"} and "2^24 rows, the circuit has 2^21" in str(report.failures[0])


def test_run_proof_with_changed_instance(folded_copy):
    top = folded_copy / "fold" / "level1_00000.json"
    p = json.loads(top.read_text())
    p["instances"][0][-1] = p["instances"][0][16]  # claim another final state
    top.write_text(json.dumps(p))
    rehash(folded_copy)
    assert checks(folded_copy)[1] == {"fold"}


def test_folded_invalid_chunk_fails_at_the_pairing(forged):
    m = json.loads((forged / "manifest.json").read_text())
    top = m["fold"]["levels"][-1][0]
    # ezkl's own aggregate verifier accepts the fold of an invalid proof ...
    assert ezkl.verify_aggr(str(forged / top["proof"]), str(forged / top["vk"]), top["logrows"], ezkl.PyCommitments.KZG, True,
                            str(forged / "kzg.srs"))
    # ... the decider does not, and nothing else would have caught this one
    report, failed = checks(forged)
    assert failed == {"pairing"}, [str(f) for f in report.failures]


def test_other_srs_g2_points(folded_copy):
    """The run proof checked against [s]_2 of another SRS: the bundle's verifier part must be the one
    this machine cut from the SRS the manifest names; naming the forged part's own hash instead names
    an SRS no one has hashed here, which binds nothing (CANNOT CHECK HERE, never VALID)."""
    srs = folded_copy / "kzg.srs"
    data = bytearray(srs.read_bytes())
    from py_ecc import optimized_bn128 as bn

    other = bn.normalize(bn.multiply(bn.G2, 123456789))
    R = 2**256 % bn.field_modulus
    tail = b"".join((c * R % bn.field_modulus).to_bytes(32, "little") for xy in other for c in xy.coeffs)
    data[-128:] = tail
    srs.write_bytes(bytes(data))
    rehash(folded_copy)
    assert decider.srs_g2(srs)[1] is not None  # a valid curve point: only the checks can object
    for bind in (True, False):
        report, failed = checks(folded_copy, bind=bind)
        assert failed == {"srs"}, failed
    edit_manifest(folded_copy, lambda m: m["srs"].update(sha256=sha256_file(srs)))  # claim the other SRS
    report, failed = checks(folded_copy, bind=False)
    assert not failed and report.verdict == "CANNOT CHECK HERE" and "never hashed" in report.cannot_check


@pytest.mark.parametrize("edit,check", [
    (lambda f: f["levels"][0][0].update(children=[0, 0]), "fold"),  # claims to fold chunk 0 twice
    (lambda f: f["levels"][0][0].update(logrows=22), "fold"),       # not the logrows a 1-proof fold has
    (lambda f: f["levels"].append(f["levels"][0]), "fold"),          # an extra level
    (lambda f: f.update(fan_in=0), "manifest"),                      # out of range: the manifest's shape
], ids=["children", "logrows", "extra level", "fan-in 0"])
def test_fold_tree_must_be_the_fan_in_tree(folded_copy, edit, check):
    edit_manifest(folded_copy, lambda m: edit(m["fold"]))
    assert checks(folded_copy)[1] == {check}


def test_run_proof_of_another_manifest(folded_copy, forged):
    """A valid-looking run proof moved under another bundle's claims."""
    shutil.copy(forged / "fold" / "level1_00000.json", folded_copy / "fold" / "level1_00000.json")
    rehash(folded_copy)
    assert checks(folded_copy)[1] & {"pairing", "final"}


def test_fold_of_another_circuit_under_its_claims(folded, folded_copy):
    """The bundle claims lr 0.25, with the lr-0.25 step.onnx, settings and vk (consistent: the step
    vk derives; made here as the verifier derives them), but its run proof folds proofs of the lr-0.5
    circuit. Nothing in the run proof names the inner circuit except the aggregation vk: with the
    bundle's keys trusted it passes (UNBOUND), and deriving the aggregation vk from the claims
    (a sample proof and setup_aggregate from scratch, ~4 minutes) catches it at `vk`."""
    from zkpot.circuits import derive

    edit_manifest(folded_copy, lambda m: m["run"]["optimizer"].update(lr=0.25))
    m = json.loads((folded_copy / "manifest.json").read_text())
    claims = derive.circuit_claims(m["run"])
    onnx = derive.derived_onnx(claims)
    made = {"step.onnx": onnx, "settings.json": derive.derived_settings(claims, onnx),
            "vk.key": derive.derived_vk(claims, onnx, lambda: folded.srs, m["srs"]["sha256"])}
    for name, path in made.items():
        shutil.copy(path, folded_copy / name)
    rehash(folded_copy)
    report, failed = checks(folded_copy, bind=False)
    assert not failed and report.verdict == "PROOFS VERIFY, CLAIMS NOT BOUND", failed  # the run proof alone cannot tell
    report, failed = checks(folded_copy)
    assert failed == {"vk"} and any("not the aggregation key" in str(f) for f in report.failures), report.failures


def test_aggregation_vk_that_cannot_be_derived_here(folded, folded_copy, tmp_path, monkeypatch):
    """A machine without the memory for setup_aggregate (and no aggregation vk in its cache; the step
    circuit derived): the run proof cannot be bound here. With the chunk proofs in the bundle, they are
    verified instead against the derived step vk, and the report says so (VALID: every claim is still
    bound); without them the verdict is CANNOT CHECK HERE (exit 4), not INVALID."""
    import zkpot.verifier.rebuild as rebuild

    cache = linked_cache(tmp_path / "cache", ("circuits", "srs-seen"), skip=lambda f: f.name.startswith("aggregation-"))
    monkeypatch.setenv("ZKPOT_CACHE", str(cache))
    monkeypatch.setattr(rebuild, "available_gb", lambda: 1.0)
    report, failed = checks(folded_copy, srs=folded.srs)
    assert report.ok and "proofs" in [n for n, _ in report.passed] and "fold" not in [n for n, _ in report.passed]
    assert any("run proof was not used" in w for w in report.warnings)
    for proof in (folded_copy / "proofs").iterdir():
        proof.unlink()
    report, failed = checks(folded_copy)
    assert not failed and report.verdict == "CANNOT CHECK HERE" and "needs about" in report.cannot_check


def test_decider_rejects_malformed_accumulators():
    with pytest.raises(decider.DeciderError, match="68 bits"):
        decider.accumulator(["ff" * 32] * 16)
    with pytest.raises(decider.DeciderError, match="needs 16"):
        decider.accumulator(["00" * 32] * 3)


# ---- the full fold: two chunk proofs, fan-in 2, logrows 22 (needs ~24 GB RAM + 16 GB swap) ----

TWO_CHUNKS = {**SMALL, "steps_per_proof": 2}


def make_two_chunk_run(root, **overrides) -> RunDir:
    rd = RunDir(root)
    tr.prepare(rd, RunConfig(**{**TWO_CHUNKS, **overrides}), progress=lambda *_: None)
    tr.fixed_point_run(rd)
    setup(rd, None, progress=lambda *_: None, fold_fan_in=2)
    prove_all(rd)
    return rd


@pytest.fixture(scope="session")
def two_chunks(tmp_path_factory):
    return make_two_chunk_run(tmp_path_factory.mktemp("two_chunks"))


def refold(two_chunks, tmp_path, chunk_files):
    """A cheating prover folds the chunk proofs of its choice, then seals the manifest."""
    public = tmp_path / "public"
    shutil.copytree(two_chunks.public, public, ignore=shutil.ignore_patterns("fold"))
    for i, src in enumerate(chunk_files):
        shutil.copy(src, public / "proofs" / f"chunk_{i:05d}.json")
    rehash(public)
    fold_or_skip(public, 2)
    return public


@pytest.mark.fold_full
def test_full_fold_verifies(two_chunks):
    fold_or_skip(two_chunks.public, 2)
    report, failed = checks(two_chunks.public)
    assert report.ok, failed


@pytest.mark.fold_full
@pytest.mark.parametrize("attack", ["duplicated", "reordered", "foreign"])
def test_full_fold_attacks(two_chunks, tmp_path, tmp_path_factory, attack):
    c0, c1 = two_chunks.proof(0), two_chunks.proof(1)
    if attack == "duplicated":
        files = [c0, c0]
    elif attack == "reordered":
        files = [c1, c0]
    else:
        other = make_two_chunk_run(tmp_path_factory.mktemp("other"))
        files = [c0, other.proof(1)]
    public = refold(two_chunks, tmp_path, files)
    _, failed = checks(public)
    assert "chain" in failed or "base" in failed, failed


@pytest.mark.fold_full
def test_dropped_chunk(tmp_path_factory, tmp_path):
    """A 4-epoch run of the CI circuit has two chunk proofs; the prover folds only the first
    (fan-in 1, logrows 21: the CI fold's keys) and presents it as the whole run."""
    run = RunDir(tmp_path_factory.mktemp("four_epochs"))
    tr.prepare(run, RunConfig(**{**ONE_CHUNK, "epochs": 4}), progress=lambda *_: None)
    tr.fixed_point_run(run)
    setup(run, None, progress=lambda *_: None, fold_fan_in=1)
    prove_all(run)
    public = tmp_path / "public"
    shutil.copytree(run.public, public)
    edit_manifest(public, lambda m: m["chunks"].pop())
    (public / "proofs" / "chunk_00001.json").unlink()
    rehash(public)
    fold_or_skip(public, 1)
    report, failed = checks(public)
    assert {"schedule", "final"} <= failed, [str(f) for f in report.failures]


THREE_CHUNKS = {**SMALL, "epochs": 3, "steps_per_proof": 2}


@pytest.mark.fold_full
def test_two_level_fold_with_a_forged_level1_accumulator(tmp_path_factory):
    """Three chunk proofs at fan-in 2: level 1 folds chunks [0, 1] and [2], level 2 folds both level-1
    proofs. Chunk 2's proof is forged (its output claims the run ended where the chunk started) and
    folded anyway: the level-1 node over it carries an accumulator that fails the pairing, and level 2
    passes it through as plain instances (ezkl 22.3.0 has no accumulator_indices). verify_aggr accepts
    the run proof; the decider, run on every accumulator in the tree, rejects it at `pairing`
    (accumulator 2 of 3: the top one, then the level-1 nodes in order). By default the verifier cannot
    passes it through as plain instances (...). The default verifier derives the level-2 vk (its own samples at
    level 0 and 1: the bundle's vk byte for byte, `vk`) and rejects the run proof at `pairing` too."""
    run = RunDir(tmp_path_factory.mktemp("three_chunks"))
    tr.prepare(run, RunConfig(**THREE_CHUNKS), progress=lambda *_: None)
    tr.fixed_point_run(run)
    setup(run, None, progress=lambda *_: None, fold_fan_in=2)
    prove_all(run)
    chunk = run.public / "proofs" / "chunk_00002.json"
    p = json.loads(chunk.read_text())
    p["instances"][0][-1] = p["instances"][0][0]
    chunk.write_text(json.dumps(p))
    edit_manifest(run.public, lambda m: m["final"].update(commitment=p["instances"][0][0]))
    rehash(run.public)
    tree = fold_or_skip(run.public, 2, keep_keys=False)  # three logrows-22 keys: 53 GB kept, 35 GB one level at a time
    assert [[n["children"] for n in level] for level in tree["levels"]] == [[[0, 1], [2]], [[0, 1]]]
    assert {n["logrows"] for level in tree["levels"] for n in level} == {22}  # the 1-child node too: no SRS downsizing
    top = run.public / tree["levels"][-1][0]["proof"]
    from zkpot.circuits import pipeline

    assert pipeline.verify_aggr(top, run.public / tree["levels"][-1][0]["vk"], 22, run.public / "kzg.srs")
    report, failed = checks(run.public, bind=False)
    print("--trust-bundle-keys:", [str(f) for f in report.failures])
    assert "pairing" in failed and any("accumulator 2 of 3" in str(f) for f in report.failures), failed
    report, failed = checks(run.public)
    print("default:", [str(f) for f in report.failures], report.warnings)
    assert "pairing" in failed and any("accumulator 2 of 3" in str(f) for f in report.failures), failed
    assert any(n == "vk" and "2 level(s)" in d for n, d in report.passed), report.passed


def test_fold_refuses_what_does_not_fit(run_a):
    from zkpot.spec.artifacts import ArtifactError
    from zkpot.prover.fold import check_memory

    with pytest.raises(ArtifactError, match=r"needs about \d+ GB.*larger machine"):
        check_memory(64)  # logrows 27: far beyond any machine here
    with pytest.raises(ArtifactError, match="setup --fold-fan-in"):
        fold(run_a.public, 4)  # its proofs were made with a logrows-15 SRS: another tau than a fold needs
    with pytest.raises(ValueError, match="fan-in 1 folds a single proof"):
        fold(run_a.public, 1)


def test_fold_refuses_an_srs_larger_than_its_tree(tmp_path):
    """Every node of a fan-in-F tree is at logrows_for(F), and the SRS must be exactly that big:
    ezkl cuts a larger one down on every load (a serial FFT over 2^k points, 45+ min from 22 to 21)."""
    import struct

    from zkpot.spec.artifacts import ArtifactError
    from zkpot.prover.fold import check_srs

    big = tmp_path / "k22.srs"  # sparse: only logrows_of's header and size matter here
    with open(big, "wb") as f:
        f.write(struct.pack("<I", 22))
        f.truncate(4 + (128 << 22) + 256)
    check_srs(big, 2)
    with pytest.raises(ArtifactError, match="needs exactly 21 .*cut a larger one down"):
        check_srs(big, 1)
    with pytest.raises(ArtifactError, match="needs exactly 23 .*smaller SRS cannot hold"):
        check_srs(big, 3)


def test_fold_refuses_a_key_the_disk_cannot_hold(tmp_path, monkeypatch):
    import shutil as sh

    real = sh.disk_usage
    monkeypatch.setattr("zkpot.prover.fold.shutil.disk_usage", lambda p: real(p)._replace(free=3 << 30))
    with pytest.raises(DiskSpaceError, match=r"logrows 21 needs about 9.4 GB of disk, .* has 3.0 GB free"):
        check_disk(21, tmp_path / "not" / "made" / "yet")
    with pytest.raises(DiskSpaceError, match="logrows 22 needs about 18.2 GB"):
        check_disk(22, tmp_path)
    monkeypatch.setattr("zkpot.prover.fold.shutil.disk_usage", lambda p: real(p)._replace(free=10 << 30))
    check_disk(21, tmp_path)


def test_fold_without_keeping_keys(folded, tmp_path, monkeypatch):
    """--no-keep-keys: the level's proving key is deleted once the level is folded, its vk kept.
    The cache is the session's, hard-linked (the original links survive); the copy's level vk is
    removed so the resumed fold fetches the key (its node is kept, not re-proved)."""
    from zkpot.spec import cache as cache_mod

    session = cache_mod.root()
    cache = linked_cache(tmp_path / "cache", ("aggregation", "circuits", "srs-seen"))
    public = tmp_path / "public"
    shutil.copytree(folded.public, public)
    (public / "fold" / "level1_fanin1.vk").unlink()
    node = sha256_file(public / "fold" / "level1_00000.json")
    monkeypatch.setenv("ZKPOT_CACHE", str(cache))
    fold(public, 1, keep_keys=False, srs=folded.srs)
    level_vk = (public / "fold" / "level1_fanin1.vk").read_bytes()
    # the entry the fold used, by its key (the session's cache may hold entries of older code with the same vk)
    used = key_entry([public / "proofs" / "chunk_00000.json"], logrows_for(1), folded.srs)
    assert used.parent == cache / "aggregation"
    assert (used / "vk.key").read_bytes() == level_vk and not (used / "pk.key").exists()
    assert (session / "aggregation" / used.name / "pk.key").exists()  # only this cache's link went
    assert sha256_file(public / "fold" / "level1_00000.json") == node
    report, failed = checks(public)
    assert report.ok, failed


def test_cli_binds_the_folded_bundles_keys(folded):
    """`zkpot verify` on a folded bundle derives the step vk, then the aggregation vk (the fold's own
    key is in this machine's cache by now, under the id the derived sample proof gives)."""
    from tests.test_cli import zkpot

    r = zkpot("verify", folded.public, "--allow-insecure-dev-srs")
    assert r.returncode == 6, r.stdout + r.stderr
    rows = [line for line in r.stdout.splitlines() if line.strip("│ ").startswith("vk ")]
    assert len(rows) == 2 and all("pass" in row for row in rows), r.stdout  # step vk, then aggregation vk


def test_fold_nodes_are_ready_once_their_inputs_exist():
    """What the Ray executor submits while chunks are still being proved (5 chunks, fan-in 2)."""
    from zkpot.prover.fold import ready
    from zkpot.spec.fold_plan import plan

    levels = plan(5, 2)  # level 1: [0,1] [2,3] [4]; level 2: [0,1] [2]; level 3: [0,1]
    have = lambda made: lambda d, i: (d, i) in made
    assert ready(levels, have({(0, 0), (0, 3)})) == []
    assert ready(levels, have({(0, 0), (0, 1), (0, 4)})) == [(1, 0), (1, 2)]  # chunks 2, 3 still proving
    assert ready(levels, have({(0, 0), (0, 1), (0, 4), (1, 0), (1, 2)})) == [(2, 1)]
    everything = {(d, i) for d, n in ((0, 5), (1, 3), (2, 2), (3, 1)) for i in range(n)}
    assert ready(levels, have(everything - {(3, 0)})) == [(3, 0)] and ready(levels, have(everything)) == []


def test_ray_folds_as_proofs_arrive(ray_folded):
    """The session's fold (ray_folded) folded its one node on Ray, as the chunk proof arrived; its run
    proof carries that chunk proof's hashes after the 16 accumulator limbs, and verifies."""
    rd, nodes = ray_folded
    assert nodes == [(1, 0)] and rd.proof(0).exists()
    run_proof = json.loads((rd.public / "fold" / "level1_00000.json").read_text())["instances"][0]
    assert run_proof[16:] == json.loads(rd.proof(0).read_text())["instances"][0]
    report, failed = checks(rd.public)
    assert report.ok, failed


def test_ray_refuses_a_cluster_that_cannot_fold(folded, tmp_path, monkeypatch):
    """A cluster without the `zkpot_fold` resource is refused before any proving."""
    import ray

    from zkpot.spec.artifacts import ArtifactError

    rd = RunDir(tmp_path / "run")
    shutil.copytree(folded.root, rd.root)
    shutil.rmtree(rd.public / "proofs")
    shutil.rmtree(rd.public / "fold")
    rd.manifest.unlink()
    monkeypatch.setenv("RAY_memory_monitor_refresh_ms", "0")
    ray.init(**RAY_ARGS)
    try:
        with pytest.raises(ArtifactError, match="no node of the Ray cluster offers the resource 'zkpot_fold'"):
            prove_all(rd, executor="ray", fold_fan_in=1)
        assert not rd.proof(0).exists()
    finally:
        ray.shutdown()


# ---- the run proof on an EVM (pyrevm), compiled with solcjs (installed by .ci/run) ----

@pytest.fixture(scope="session")
def on_chain(folded, tmp_path_factory):
    """`publish --evm` of the folded run, its run-proof verifier and ZkpotRun deployed in one EVM."""
    import time

    from zkpot.prover.publish import publish
    from tests.chain import Chain, abi_args, require_solc

    require_solc()
    start = time.perf_counter()
    pkg = tmp_path_factory.mktemp("evm") / "pkg"
    meta = publish(folded.root, pkg, evm=True, say=lambda *_: None)
    seconds = time.perf_counter() - start
    evm = meta["evm"]
    chain = Chain()
    verifier, verifier_size = chain.deploy(pkg / evm["bytecode"])
    claims = evm["wrapper"]["constructor"]
    words = lambda verifier, c: abi_args(int(verifier, 16), int(c["base"], 16), int(c["final"], 16),
                                         c["steps_per_proof"], c["fan_in"], array=[int(b, 16) for b in c["batches"]],
                                         after=[int(w, 16) for w in c["g2"] + c["s_g2"]])
    run, run_size = chain.deploy(pkg / evm["wrapper"]["bytecode"], words(verifier, claims))
    print(f"\nEVM: publish --evm (render + solcjs) {seconds:.0f} s; deployed code: verifier {verifier_size:,} bytes, "
          f"ZkpotRun {run_size:,} bytes (limit 24,576)")
    deploy_run = lambda edit: chain.deploy(pkg / evm["wrapper"]["bytecode"], words(verifier, {**claims, **edit(claims)}))[0]
    return dict(chain=chain, verifier=verifier, run=run, meta=meta, sizes=(verifier_size, run_size), deploy_run=deploy_run)


def calldata(proof, tmp_path) -> bytes:
    return bytes(ezkl.encode_evm_calldata(str(proof), str(tmp_path / "calldata.bin")))


def test_evm_verifier_accepts_the_run_proof(on_chain, folded, tmp_path):
    """The run proof's calldata, as ezkl encodes it, verifies on the verifier and on ZkpotRun; both fit
    mainnet's code-size limit. Gas is the transaction's (21,000 base and calldata included)."""
    from tests.chain import CODE_LIMIT

    chain, good = on_chain["chain"], calldata(folded.public / "fold" / "level1_00000.json", tmp_path)
    ok, gas, _ = chain.call(on_chain["verifier"], good)
    ok_run, gas_run, _ = chain.call(on_chain["run"], good)  # same interface: the same calldata
    print(f"\nEVM: run proof verified, gas {gas:,} (verifier), {gas_run:,} (ZkpotRun: verifier and claims); "
          f"calldata {len(good):,} bytes")
    assert ok and ok_run
    evm, (verifier_size, run_size) = on_chain["meta"]["evm"], on_chain["sizes"]
    assert (evm["deployed_bytes"], evm["wrapper"]["deployed_bytes"]) == (verifier_size, run_size)  # solc's count = pyrevm's
    assert verifier_size <= CODE_LIMIT and run_size <= CODE_LIMIT and evm["deployable"]


@pytest.mark.parametrize("which,index,check", [("proof", 200, ""), ("instance", 3, ""), ("instance", 16, "base"),
                                               ("instance", 22, "final")],
                         ids=["proof byte", "accumulator limb", "base", "final"])
def test_evm_rejects_a_tampered_run_proof(on_chain, folded, tmp_path, which, index, check):
    """One byte of the proof, or of one instance (16 accumulator limbs, then H(state_in), 4 batches, H(salt_out),
    H(state_out)): the verifier refuses, and ZkpotRun names the claim the instance breaks before it asks."""
    from tests.chain import flip

    bad = flip(calldata(folded.public / "fold" / "level1_00000.json", tmp_path), which, index)
    assert not on_chain["chain"].call(on_chain["verifier"], bad)[0]
    ok, _, said = on_chain["chain"].call(on_chain["run"], bad)
    assert not ok and (said == check if check else "output: 0x }" in said), said  # (the verifier reverts with no data)


def test_evm_rejects_the_fold_of_a_forged_chunk(on_chain, forged, tmp_path):
    """ezkl.verify_aggr accepts this fold (test_folded_invalid_chunk_fails_at_the_pairing); the EVM verifier
    pairs the run proof's accumulator with its own and refuses it. (The proof itself is well formed: only
    the accumulator is wrong, so this is the pairing's doing.)"""
    bad = calldata(forged / "fold" / "level1_00000.json", tmp_path)
    ok, gas, _ = on_chain["chain"].call(on_chain["verifier"], bad)
    print(f"\nEVM: the fold of a forged chunk proof is refused after {gas:,} gas")
    assert not ok


@pytest.mark.parametrize("edit,check", [
    (lambda c: {"base": c["final"]}, "base"),
    (lambda c: {"final": c["base"]}, "final"),
    (lambda c: {"batches": c["batches"][1:] + c["batches"][:1]}, "schedule"),
], ids=["base", "final", "schedule"])
def test_evm_run_contract_checks_the_claims(on_chain, folded, tmp_path, edit, check):
    """A ZkpotRun deployed with other claims refuses the valid run proof, naming the claim."""
    claims = on_chain["meta"]["evm"]["wrapper"]["constructor"]
    assert {**claims, **edit(claims)} != claims
    other = on_chain["deploy_run"](edit)
    good = calldata(folded.public / "fold" / "level1_00000.json", tmp_path)
    assert on_chain["chain"].call(on_chain["verifier"], good)[0]
    assert on_chain["chain"].call(other, good)[::2] == (False, check)


def test_publish_evm_refuses_a_tree_that_is_not_the_fan_ins(folded_copy, tmp_path):
    from tests.test_cli import zkpot

    edit_manifest(folded_copy, lambda m: m["fold"]["levels"].append(m["fold"]["levels"][0]))
    rehash(folded_copy)
    r = zkpot("publish", folded_copy, "--out", tmp_path / "pkg", "--evm")
    assert r.returncode == 2 and "is not the fan-in-1 tree" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "pkg").exists()


def accumulator_call(instances: list[str], at: int) -> bytes:
    """Calldata of ZkpotRun.accumulatorPairs(uint256[] instances, uint256 at)."""
    from tests.chain import selector

    words = [64, at, len(instances), *(int.from_bytes(bytes.fromhex(h), "little") for h in instances)]
    return selector("accumulatorPairs(uint256[],uint256)") + b"".join(w.to_bytes(32, "big") for w in words)


def test_evm_pairs_the_accumulators_a_deeper_tree_passes_through(on_chain, folded, forged):
    """ZkpotRun pairs every accumulator below the top node (a deeper tree passes them through as plain instances,
    which the ezkl verifier never pairs). Its pairing, on real accumulators: the honest run proof's holds; the fold
    of a forged chunk proof (a valid aggregate whose accumulator is wrong) fails; so do a changed limb, a limb of
    more than 68 bits and the point at infinity. (A 2-level tree on chain: bench/fold.py.)"""
    chain, run = on_chain["chain"], on_chain["run"]
    good = json.loads((folded.public / "fold" / "level1_00000.json").read_text())["instances"][0]
    bad = json.loads((forged / "fold" / "level1_00000.json").read_text())["instances"][0]
    pairs = lambda instances, at=0: chain.call(run, accumulator_call(instances, at))[0]
    assert pairs(good) and pairs(["00" * 32] * 3 + good, at=3)
    assert not pairs(bad)
    changed = [*good]
    changed[5] = (int.from_bytes(bytes.fromhex(good[5]), "little") ^ 1).to_bytes(32, "little").hex()
    assert not pairs(changed)
    wide = [*good]
    wide[0] = (int.from_bytes(bytes.fromhex(good[0]), "little") + (1 << 68)).to_bytes(32, "little").hex()
    assert not pairs(wide)
    assert not pairs(["00" * 32] * 16 + good[16:])


def test_shapes_bound_the_samples_a_verifier_makes():
    """A node's vk is a function of its shape; every level of any fan-in tree has at most two shapes (full
    groups, and the last), so deriving the run proof's vk takes at most two sample aggregates per level."""
    from zkpot.spec.fold_plan import plan, shapes

    assert shapes(plan(5, 2)) == [["(c,c)", "(c,c)", "(c)"], ["((c,c),(c,c))", "((c))"], ["(((c,c),(c,c)),((c)))"]]
    for n in range(1, 40):
        for fan_in in range(2, 6):
            assert all(len(set(level)) <= 2 for level in shapes(plan(n, fan_in))), (n, fan_in)


def test_run_vk_derivation_makes_one_sample_per_shape(tmp_path, monkeypatch):
    """derived_run_vk's order of work, with ezkl replaced by recorders (the real thing: the fold_full
    2-level test and bench/fold.py): one chunk sample, one sample aggregate per shape below the top, each
    over its children's samples, the top set up over its own, nothing again once cached."""
    from zkpot.circuits import derive, pipeline
    from zkpot.verifier import rebuild
    from zkpot.spec.fold_plan import plan

    monkeypatch.setenv("ZKPOT_CACHE", str(tmp_path / "cache"))
    calls = []
    monkeypatch.setattr(derive, "derived_dir", lambda claims, onnx: tmp_path / "cache" / "circuits" / "x")
    (tmp_path / "cache" / "circuits" / "x").mkdir(parents=True)
    monkeypatch.setattr(rebuild, "available_gb", lambda: 1e3)
    monkeypatch.setattr(rebuild, "pk_gb", lambda logrows: 0.0)  # (no key is written here: the disk check is not this test's)

    def chunk_sample(claims, onnx, srs, srs_sha256, tmp, say):
        calls.append(("chunk",))
        out = tmp / "c.json"
        out.write_text(json.dumps({"protocol": "c"}))
        return out

    def setup_aggregate(children, vk, pk, logrows, srs):
        calls.append(("setup", tuple(json.loads(c.read_text())["protocol"] for c in children)))
        vk.write_text("vk"), pk.write_text("pk")

    def aggregate(children, out, pk, logrows, srs, transcript):
        assert transcript == "poseidon"
        out.write_text(json.dumps({"protocol": "(" + ",".join(json.loads(c.read_text())["protocol"] for c in children) + ")"}))

    def top_setup(stage, fn, samples, vk, pk, logrows, split, srs):
        calls.append(("top", tuple(json.loads(open(s).read())["protocol"] for s in samples)))
        open(vk, "w").write("top vk")

    monkeypatch.setattr(rebuild, "_chunk_sample", chunk_sample)
    monkeypatch.setattr(pipeline, "setup_aggregate", setup_aggregate)
    monkeypatch.setattr(pipeline, "aggregate", aggregate)
    monkeypatch.setattr(pipeline, "call", top_setup)
    srs = tmp_path / "kzg.srs"
    srs.write_text("srs")
    vk = rebuild.derived_run_vk({}, srs, lambda: srs, "ab" * 32, plan(5, 2), 23)
    assert vk.read_text() == "top vk"
    assert calls == [("chunk",), ("setup", ("c", "c")), ("setup", ("c",)), ("setup", ("(c,c)", "(c,c)")),
                     ("setup", ("(c)",)), ("top", ("((c,c),(c,c))", "((c))"))]
    calls.clear()
    assert rebuild.derived_run_vk({}, srs, lambda: pytest.fail("cached: no SRS needed"), "ab" * 32, plan(5, 2), 23) == vk
    assert calls == []
