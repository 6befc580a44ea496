"""Key packages: a published, signed package verifies with its bundle; every way of swapping a file,
a key or a signer is rejected with a message naming the file or the key; the verifier's own derivation
catches a vk that belongs to another circuit (another learning rate)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from py_ecc.bls import G2ProofOfPossession as bls
from py_ecc.bls.g2_primitives import G1_to_pubkey, pubkey_to_G1
from py_ecc.optimized_bls12_381 import G1 as BLS_G1, add, multiply, neg

from zkpot.spec.artifacts import ArtifactError, sha256_file
from zkpot.prover import signing
from zkpot.prover.publish import cosign, publish
from tests.conftest import edit_manifest, make_run, rehash
from zkpot.spec.errors import Rejected
from zkpot.spec.bundle import load_manifest
from zkpot.spec.canonical import canonical_json
from zkpot.verifier.vouch import check_package
from zkpot.spec.signature import signing_message
from zkpot.verifier.verify import verify_bundle


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    for name in ("alice", "bob", "carol"):
        signing.new_key(d / f"{name}.key")
    return {name: d / f"{name}.key" for name in ("alice", "bob", "carol")}


def pk(keys, *names) -> list[bytes]:
    return [signing.public_key(keys[n]) for n in names]


@pytest.fixture(scope="session")
def signed_pkg(run_a, keys, tmp_path_factory) -> Path:
    """Run A's package, signed by alice and bob (one aggregate signature)."""
    out = tmp_path_factory.mktemp("pkg") / "pkg"
    publish(run_a.root, out, [keys["alice"], keys["bob"]], say=lambda *_: None)
    return out


@pytest.fixture
def pkg(signed_pkg, tmp_path) -> Path:
    """A fresh copy to attack."""
    return Path(shutil.copytree(signed_pkg, tmp_path / "pkg"))


@pytest.fixture(scope="session")
def run_lr(tmp_path_factory):
    """Another circuit: same model and shapes, learning rate 0.25 (one batch, one epoch: one proof)."""
    return make_run(tmp_path_factory.mktemp("run_lr"), lr=0.25, rows=4, epochs=1)


def check(pkg: Path, public: Path, named: list[bytes]) -> tuple[str, str]:
    return check_package(pkg, public, load_manifest(public), named)


def reject(pkg: Path, public: Path, named: list[bytes]) -> str:
    with pytest.raises(Rejected) as e:
        check(pkg, public, named)
    return str(e.value)


def reseal(pkg: Path, fn=lambda meta: None) -> bytes:
    """What a forger can do without the keys: edit package.json and recompute every sha256 in it."""
    meta = json.loads((pkg / "package.json").read_text())
    fn(meta)
    meta["files"] = {name: sha256_file(pkg / name) for name in meta["files"]}
    raw = canonical_json(meta)
    (pkg / "package.json").write_bytes(raw)
    return raw


def set_signatures(pkg: Path, signers: list[tuple[bytes, bytes]], signature: bytes) -> None:
    raw = (pkg / "package.json").read_bytes()
    doc = json.loads((pkg / "signatures.json").read_text())
    doc.update(package_sha256=hashlib.sha256(raw).hexdigest(), aggregate_signature=signature.hex(),
               signers=[{"public_key": p.hex(), "proof_of_possession": pop.hex()} for p, pop in signers])
    (pkg / "signatures.json").write_bytes(canonical_json(doc))


# --- an honest package -------------------------------------------------------------------------

def test_published_package_verifies(signed_pkg, run_a, keys):
    files = sorted(p.relative_to(signed_pkg).as_posix() for p in signed_pkg.rglob("*"))
    assert files == ["package.json", "settings.json", "signatures.json", "step.onnx", "vk.key"]
    meta = json.loads((signed_pkg / "package.json").read_text())
    m = load_manifest(run_a.public)
    assert meta["base"] == {"commitment": m["base"]["commitment"], "salt": m["base"]["salt"]}
    assert meta["srs"] == {"sha256": m["srs"]["sha256"], "logrows": m["srs"]["logrows"], "origin": "insecure-dev"}
    assert set(meta["published_with"]) == {"zkpot", "ezkl", "py_ecc"} and meta["versions"]["ezkl"] == "22.3.0"
    summary, signed_by = check(signed_pkg, run_a.public, pk(keys, "alice", "bob"))
    assert "bundle matches the package" in summary and "2 named key(s)" in signed_by


def test_cli_verify_with_package_and_publishers(signed_pkg, run_a, keys, tmp_path):
    (tmp_path / "bob.pub").write_text(pk(keys, "bob")[0].hex() + "\n")
    r = zkpot("verify", run_a.public, "--allow-insecure-dev-srs", "--package", signed_pkg,
              "--publisher", pk(keys, "alice")[0].hex(), "--publisher", tmp_path / "bob.pub")
    assert r.returncode == 6 and "VALID" in r.stdout and "publisher" in r.stdout, r.stdout + r.stderr
    r = zkpot("verify", run_a.public, "--allow-insecure-dev-srs", "--package", signed_pkg,
              "--publisher", pk(keys, "alice")[0].hex())
    assert r.returncode == 1 and "is not a publisher you named" in r.stdout


# --- any byte of any file -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["step.onnx", "settings.json", "vk.key", "package.json", "signatures.json"])
@pytest.mark.parametrize("where", [0, 0.5, -1])
def test_changing_any_byte_of_any_file_is_rejected(pkg, run_a, keys, name, where):
    data = bytearray((pkg / name).read_bytes())
    i = int(where * len(data)) if where != -1 else len(data) - 1
    data[i] ^= 0x01
    (pkg / name).write_bytes(bytes(data))
    msg = reject(pkg, run_a.public, pk(keys, "alice", "bob"))
    assert name in msg or (name == "signatures.json" and "sign" in msg), msg


def test_added_or_missing_file_is_rejected(pkg, run_a, keys):
    (pkg / "extra.txt").write_text("hi")
    assert "extra.txt is in the package but not listed" in reject(pkg, run_a.public, pk(keys, "alice", "bob"))
    (pkg / "extra.txt").unlink()
    (pkg / "vk.key").unlink()
    assert "vk.key is missing" in reject(pkg, run_a.public, pk(keys, "alice", "bob"))


def test_resealed_package_is_rejected_by_the_signature(pkg, run_a, run_lr, keys):
    """Another circuit's vk with package.json's hashes recomputed: the publishers never signed that."""
    shutil.copyfile(run_lr.vk, pkg / "vk.key")
    reseal(pkg)
    assert "signatures.json signs another package.json" in reject(pkg, run_a.public, pk(keys, "alice", "bob"))
    doc = json.loads((pkg / "signatures.json").read_text())
    set_signatures(pkg, [(bytes.fromhex(s["public_key"]), bytes.fromhex(s["proof_of_possession"])) for s in doc["signers"]],
                   bytes.fromhex(doc["aggregate_signature"]))
    assert "aggregate signature does not verify on package.json" in reject(pkg, run_a.public, pk(keys, "alice", "bob"))
    (pkg / "signatures.json").unlink()
    assert "unsigned" in reject(pkg, run_a.public, pk(keys, "alice", "bob"))


def test_unsigned_package_checks_files_only(run_a, tmp_path):
    publish(run_a.public, tmp_path / "p", say=lambda *_: None)
    summary, signed_by = check(tmp_path / "p", run_a.public, [])
    assert "bundle matches" in summary and signed_by == ""


# --- keys and signers ---------------------------------------------------------------------------

def test_signed_with_another_key_is_rejected(pkg, run_a, keys):
    raw = reseal(pkg, lambda meta: meta["base"].update(commitment="0" * 64))
    p, pop, sig = signing.sign(keys["carol"], raw)
    set_signatures(pkg, [(p, pop)], sig)
    msg = reject(pkg, run_a.public, pk(keys, "alice", "bob"))
    assert f"signer {p.hex()[:16]}… is not a publisher you named" in msg
    alice = pk(keys, "alice")[0]                      # carol's signature, alice's key listed
    set_signatures(pkg, [(alice, bls.PopProve(signing.load_secret(keys["carol"])))], sig)
    assert f"signer {alice.hex()[:16]}…: invalid proof of possession" in reject(pkg, run_a.public, [alice])


def test_naming_another_publisher_is_rejected(pkg, run_a, keys):
    alice, bob, carol = pk(keys, "alice", "bob", "carol")
    assert f"signer {bob.hex()[:16]}… is not a publisher you named" in reject(pkg, run_a.public, [alice, carol])
    assert f"publisher {carol.hex()[:16]}… did not sign" in reject(pkg, run_a.public, [alice, bob, carol])
    assert "name the ones you trust with --publisher" in reject(pkg, run_a.public, [])


def test_cosigners_aggregate_and_a_missing_signature(run_a, keys, tmp_path):
    """alice publishes, bob co-signs with his own key file; both must be in the one aggregate."""
    out = tmp_path / "p"
    publish(run_a.root, out, [keys["alice"]], say=lambda *_: None)
    alice, bob = pk(keys, "alice", "bob")
    assert f"publisher {bob.hex()[:16]}… did not sign this package (missing co-signature)" in reject(out, run_a.public, [alice, bob])
    cosign(out, keys["bob"])
    assert "2 named key(s)" in check(out, run_a.public, [alice, bob])[1]
    with pytest.raises(ArtifactError, match="already signed"):
        cosign(out, keys["bob"])
    raw = (out / "package.json").read_bytes()
    pops = {n: bls.PopProve(signing.load_secret(keys[n])) for n in ("alice", "bob")}
    for only in ("alice", "bob"):                  # both listed, one signature left out of the aggregate
        set_signatures(out, [(alice, pops["alice"]), (bob, pops["bob"])], signing.sign(keys[only], raw)[2])
        assert "aggregate signature does not verify" in reject(out, run_a.public, [alice, bob])


def test_rogue_key_is_rejected_by_proof_of_possession(pkg, run_a, keys):
    """pk_R = x·G − pk_A: x alone signs "for A and R" and FastAggregateVerify accepts; the PoP does not."""
    alice = pk(keys, "alice")[0]
    x = 424242
    rogue = G1_to_pubkey(add(multiply(BLS_G1, x), neg(pubkey_to_G1(alice))))
    raw = reseal(pkg, lambda meta: meta["base"].update(commitment="0" * 64))
    sig = bls.Sign(x, signing_message(raw))
    assert bls.FastAggregateVerify([alice, rogue], signing_message(raw), sig)   # the attack works without PoP
    set_signatures(pkg, [(alice, bls.PopProve(signing.load_secret(keys["alice"]))), (rogue, bls.PopProve(x))], sig)
    assert f"signer {rogue.hex()[:16]}…: invalid proof of possession" in reject(pkg, run_a.public, [alice, rogue])


# --- the package against the bundle -------------------------------------------------------------

def test_bundle_of_another_circuit_is_rejected(signed_pkg, run_lr, keys):
    assert "the bundle's step.onnx differs from the package's step.onnx" in reject(signed_pkg, run_lr.public, pk(keys, "alice", "bob"))


def test_bundle_with_another_base_salt_is_rejected(signed_pkg, bundle, keys):
    edit_manifest(bundle, lambda m: m["base"]["salt"].reverse())
    rehash(bundle)
    assert "base commitment or its salt differs" in reject(signed_pkg, bundle, pk(keys, "alice", "bob"))


def test_folded_bundle_publishes_its_aggregation_vk(bundle, tmp_path):
    """A folded bundle's aggregation vk goes into the package and must match the bundle's (no real fold here:
    the package check reads only the tree's vk names and files)."""
    vk = "fold/level1_fanin1.vk"
    (bundle / "fold").mkdir()
    (bundle / vk).write_bytes(b"aggregation vk")
    (bundle / "fold" / "level1_00000.json").write_text("{}")   # (every file the tree names is in the table)
    edit_manifest(bundle, lambda m: m.update(fold={"fan_in": 1, "levels": [[
        {"proof": "fold/level1_00000.json", "children": [0], "logrows": 21, "vk": vk}]]},
        files={**m["files"], vk: "", "fold/level1_00000.json": ""}))
    rehash(bundle)
    meta = publish(bundle, tmp_path / "p", say=lambda *_: None)
    assert meta["aggregation"] == {"fan_in": 1, "vks": {vk: 21}} and vk in meta["files"]
    assert vk in check(tmp_path / "p", bundle, [])[0]
    (bundle / vk).write_bytes(b"another aggregation vk")
    rehash(bundle)
    assert f"the bundle's {vk} differs from the package's" in reject(tmp_path / "p", bundle, [])


# --- keys on disk -------------------------------------------------------------------------------

def test_key_files(tmp_path, keys):
    assert stat.S_IMODE(keys["alice"].stat().st_mode) == 0o600
    with pytest.raises(ArtifactError, match="refusing to overwrite"):
        signing.new_key(keys["alice"])
    with pytest.raises(ArtifactError, match="inside a public/ directory"):
        signing.new_key(tmp_path / "public" / "sub" / "k.key")
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "package.json").write_text("{}")
    with pytest.raises(ArtifactError, match="bundle or package directory"):
        signing.new_key(tmp_path / "p" / "k.key")
    leaked = tmp_path / "leaked.key"
    shutil.copyfile(keys["alice"], leaked)
    os.chmod(leaked, 0o644)
    with pytest.raises(ArtifactError, match="readable by others"):
        signing.load_secret(leaked)


def zkpot(*args):
    r = subprocess.run([sys.executable, "-m", "zkpot.cli", *map(str, args)], capture_output=True, text=True)
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    return r


def test_cli_keys_and_bad_input(run_a, tmp_path):
    r = zkpot("keys", "new", tmp_path / "k.key")
    assert r.returncode == 0
    assert zkpot("keys", "show", tmp_path / "k.key").stdout == r.stdout
    (tmp_path / "bad.key").write_text("not json")
    os.chmod(tmp_path / "bad.key", 0o600)
    for args, message in [
        (["keys", "show", tmp_path / "bad.key"], "not a zkpot BLS secret key file"),
        (["publish", run_a.root, "--out", tmp_path / "p", "--sign", tmp_path / "bad.key"], "not a zkpot BLS secret key file"),
        (["publish", run_a.root, "--out", tmp_path], "exists"),
        (["verify", run_a.public, "--package", tmp_path, "--publisher", "abcd"], "not a BLS12-381 public key"),
        (["verify", run_a.public, "--publisher", tmp_path / "k.key"], "--publisher needs --package"),
    ]:
        r = zkpot(*args)
        assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) <= 3, (args, r.stderr)
    assert not (tmp_path / "p").exists()


# --- the vk is derived, not read ------------------------------------------------------------------

def test_vk_of_another_circuit_is_rejected_by_default(run_a, run_lr, tmp_path):
    """A run trained with lr 0.25 claims lr 0.5: step.onnx, settings and the manifest say 0.5, the vk
    and the proofs are the 0.25 circuit's. By default the vk derived from the claims differs: INVALID
    at `vk` (exit 1), before any proof is read. With --trust-bundle-keys the bundle's vk is used, under
    the derived settings, and the verdict is never VALID."""
    forged = Path(shutil.copytree(run_lr.public, tmp_path / "public"))
    for name in ("step.onnx", "settings.json", "kzg.srs"):  # (with the SRS the claimed circuit's logrows needs)
        shutil.copyfile(run_a.public / name, forged / name)
    srs = json.loads(run_a.manifest.read_text())["srs"]
    edit_manifest(forged, lambda m: (m["run"]["optimizer"].update(lr=0.5), m.update(srs=srs)))
    rehash(forged)
    assert not verify_bundle(forged, allow_insecure_dev_srs=True, bind=False).ok
    assert [(f.check, f.chunk) for f in verify_bundle(forged, allow_insecure_dev_srs=True).failures] == [("vk", None)]
    r = zkpot("verify", forged, "--allow-insecure-dev-srs")
    assert r.returncode == 1 and "INVALID" in r.stdout and "vk.key is not the key" in " ".join(r.stdout.split()), r.stdout
    r = zkpot("verify", forged, "--allow-insecure-dev-srs", "--trust-bundle-keys")
    assert r.returncode in (1, 5) and ("INVALID" in r.stdout or "CLAIMS NOT BOUND" in r.stdout), r.stdout  # never VALID


# --- EVM ----------------------------------------------------------------------------------------

def test_publish_evm_without_solc_says_so(run_a, tmp_path):
    env = {**os.environ, "PATH": os.path.dirname(sys.executable)}
    r = subprocess.run([sys.executable, "-m", "zkpot.cli", "publish", run_a.root, "--out", tmp_path / "p", "--evm"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "no solc available" in r.stderr, r.stderr
    meta = json.loads((tmp_path / "p" / "package.json").read_text())
    assert meta["evm"]["compiled_with"] is None and "NOT accepted" in meta["evm"]["verifies"]
    assert "evm/Verifier.sol" in meta["files"] and "contract Halo2Verifier" in (tmp_path / "p" / "evm" / "Verifier.sol").read_text()


def test_evm_verifier_accepts_a_single_proof_and_not_the_bundles(run_lr, tmp_path):
    """The Solidity verifier, compiled (solcjs, installed by .ci/run) and run in an in-process EVM (pyrevm): it
    accepts an EVM-transcript ('single') proof of the published circuit, rejects a tampered one, and rejects
    the bundle's Poseidon-transcript ('for-aggr') proof, which is why the package says what it verifies."""
    import ezkl

    from tests.chain import Chain, flip, require_solc

    require_solc()
    meta = publish(run_lr.root, tmp_path / "p", evm=True, say=lambda *_: None)
    assert meta["evm"]["compiled_with"] and "evm/Verifier.bin" in meta["files"]
    single = tmp_path / "single.json"
    assert ezkl.prove(str(run_lr.witness(0)), str(run_lr.compiled), str(run_lr.pk), str(single), "single", str(run_lr.srs))
    chain = Chain()
    addr, size = chain.deploy(tmp_path / "p" / "evm" / "Verifier.bin")
    good = bytes(ezkl.encode_evm_calldata(str(single), str(tmp_path / "cd.bin")))
    ok, gas, _ = chain.call(addr, good)
    print(f"\nEVM: step-circuit verifier {size:,} bytes deployed, a single proof verified with {gas:,} gas")
    assert ok
    assert not chain.call(addr, flip(good, "instance", 0))[0]     # the first public hash
    assert not chain.call(addr, bytes(ezkl.encode_evm_calldata(str(run_lr.proof(0)), str(tmp_path / "cd2.bin"))))[0]
