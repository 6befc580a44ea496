"""Hypothesis fuzzing of every parser a verifier runs on untrusted input, run in a child process.

    python -m tests.adversarial.fuzz_targets TARGET EXAMPLES BUNDLE SCRATCH [--explore]

TARGET is one of manifest, proof, settings, vk, srs, bundle, package, signatures. The child exits 0 when every example
passed its oracle, 1 (printing hypothesis' falsifying example) when one failed, and dies by a
signal if ezkl took the process down; the input being tried is always on disk in SCRATCH first,
so a crash leaves it behind. Oracles, for every generated or mutated input:

  no traceback   only the verifier's own rejection (Rejected, or False from pipeline.verify) may
                 come out; any other exception, including a Rust panic, fails
  no hang        each example gets PER_EXAMPLE_SECONDS (SIGALRM, which fires between Python
                 calls; a hang inside ezkl's Rust is caught by the parent's timeout)
  no acceptance  an accepted input must mean what the original meant: the same claims (manifest
                 run, base, final, dataset, chunks), the same public hashes of every proof, the
                 same base weights and step.onnx. Evidence bytes that the verifier provably does
                 not read may differ (documented per target below and in docs/attacks.md).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings, strategies as st

PER_EXAMPLE_SECONDS = 60
TARGETS = ("manifest", "proof", "settings", "vk", "srs", "bundle", "package", "signatures")


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang(f"an example took more than {PER_EXAMPLE_SECONDS} s")


# ---------------------------------------------------------------------------------------------
# strategies


FELTISH = st.one_of(
    st.binary(min_size=32, max_size=32).map(lambda b: b.hex()),
    st.sampled_from(["", "0x", "zz" * 32, "ff" * 32, "00" * 32, "0x" + "00" * 32, "1" * 63, "1" * 65]),
)
SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from([0, 1, -1, 2**31, 2**32, 2**63, 2**64, 10**30, 26, 27]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), FELTISH,
)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)


@st.composite
def json_mutation(draw, original):
    """The original JSON object with 1-3 structural edits at random depths: replace a value by
    random JSON, delete a key or element, duplicate or reorder a list, change a number by one."""
    obj = json.loads(json.dumps(original))
    for _ in range(draw(st.integers(1, 3))):
        parent, key = None, None
        node = obj
        while isinstance(node, (dict, list)) and node and (parent is None or draw(st.booleans())):
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            parent, key = node, draw(st.sampled_from(keys))
            node = node[key]
        if parent is None:
            return draw(JSON)
        op = draw(st.sampled_from(["replace", "delete", "duplicate", "reverse", "nudge", "felt"]))
        if op == "replace":
            parent[key] = draw(JSON)
        elif op == "delete":
            del parent[key]
        elif op == "duplicate" and isinstance(node, list) and node:
            node.append(node[draw(st.integers(0, len(node) - 1))])
        elif op == "reverse" and isinstance(node, list):
            node.reverse()
        elif op == "nudge" and isinstance(node, (int, float)) and not isinstance(node, bool):
            parent[key] = node + draw(st.sampled_from([1, -1, 2**32, 0.5]))
        else:
            parent[key] = draw(FELTISH)
    return obj


@st.composite
def byte_mutation(draw, original: bytes, hot: list[tuple[int, int]] | None = None):
    """1-8 byte edits (half of them inside the `hot` ranges when given), or a truncation, or junk appended."""
    kind = draw(st.sampled_from(["points", "points", "points", "truncate", "append", "splice"]))
    data = bytearray(original)
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    if kind == "append":
        return bytes(data) + draw(st.binary(min_size=1, max_size=64))
    if kind == "splice":  # a block copied over another place
        n = draw(st.integers(1, 64))
        a, b = draw(st.integers(0, len(data) - n)), draw(st.integers(0, len(data) - n))
        data[b : b + n] = data[a : a + n]
        return bytes(data)
    for _ in range(draw(st.integers(1, 8))):
        if hot and draw(st.booleans()):
            lo, hi = draw(st.sampled_from(hot))
            i = draw(st.integers(lo, hi - 1))
        else:
            i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.one_of(st.integers(0, 255), st.just(data[i] ^ 1), st.just(data[i] ^ 0x80)))
    return bytes(data)


def json_or_bytes(original_bytes: bytes):
    """Half structural JSON edits (written back as JSON), half raw byte edits of the file."""
    obj = json.loads(original_bytes)
    return st.one_of(
        json_mutation(obj).map(lambda o: json.dumps(o).encode()),
        byte_mutation(original_bytes),
        JSON.map(lambda o: json.dumps(o).encode()),
    )


# ---------------------------------------------------------------------------------------------
# what a bundle means (the claims an acceptance makes)


def meaning(public: Path) -> dict:
    from safetensors.torch import load_file

    m = json.loads((public / "manifest.json").read_text())
    claims = {k: v for k, v in m.items() if k not in ("files", "versions")}
    claims["ezkl"] = m["versions"].get("ezkl")
    instances = [json.loads((public / c["proof"]).read_text())["instances"] for c in m["chunks"]]
    # the base weights as the circuit and the verifier see them: quantized at the run's scale (a
    # change below 2^-scale is the same base state, by design: the commitment is over fixed point)
    import ezkl

    base = {k: [ezkl.float_to_felt(float(x), m["run"]["scale"]) for x in v.reshape(-1).tolist()] + [list(v.shape)]
            for k, v in load_file(str(public / m["base"]["file"])).items()}
    dataset = json.loads((public / m["dataset"]["file"]).read_text())
    onnx = hashlib.sha256((public / m["circuit"]["onnx"]).read_bytes()).hexdigest()
    return {"claims": claims, "instances": instances, "base": base, "dataset": dataset, "onnx": onnx}


def _rejected_only(fn):
    """Run fn; the verifier's own rejection is fine, anything else propagates (the oracle fails)."""
    from zkpot.spec.artifacts import ArtifactError
    from zkpot.spec.errors import Rejected

    try:
        return fn()
    except (Rejected, ArtifactError):
        return None


# ---------------------------------------------------------------------------------------------
# targets: each returns (strategy, check(example)) over a scratch copy of the bundle


def target_manifest(public: Path, scratch: Path):
    """spec/bundle.load_manifest + check_files on the mutated manifest."""
    from zkpot.spec.bundle import check_files, load_manifest

    original = (public / "manifest.json").read_bytes()

    def check(data: bytes):
        (scratch / "manifest.json").write_bytes(data)

        def parse():
            m = load_manifest(scratch)
            check_files(scratch, m)
        _rejected_only(parse)

    return json_or_bytes(original), check


def target_proof(public: Path, scratch: Path):
    """spec/proofs.read_instances and pipeline.verify on a mutated chunk proof.
    May be accepted: the same instances, transcript and proof bytes, with trailing bytes appended
    to the proof (halo2 does not require the transcript to be consumed) or fields ezkl.verify does
    not read (protocol, hex_proof, pretty_public_inputs, timestamp, version, split, commitment)."""
    from zkpot.circuits import pipeline
    from zkpot.spec.proofs import read_instances

    path = scratch / "proofs" / "chunk_00001.json"
    original = (public / "proofs" / "chunk_00001.json").read_bytes()
    orig = json.loads(original)
    words = len(orig["proof"]) // 32
    first_eval = words - len(orig["protocol"]["evaluations"]) - 2
    # byte ranges of each class of proof element: first and last commitment, first and last
    # evaluation, the two opening points
    hot = [(0, 32), (32 * (first_eval - 1), 32 * first_eval), (32 * first_eval, 32 * (first_eval + 1)),
           (32 * (words - 3), 32 * (words - 2)), (32 * (words - 2), 32 * words)]
    proof_json = dict(orig)

    def with_bytes(b: bytes) -> bytes:
        return json.dumps({**proof_json, "proof": list(b), "hex_proof": None}).encode()

    strategy = st.one_of(
        json_or_bytes(original),
        byte_mutation(bytes(orig["proof"]), hot).map(with_bytes),
        json_mutation({"instances": orig["instances"]}).map(lambda o: json.dumps({**proof_json, **o}).encode()
                                                            if isinstance(o, dict) else json.dumps(o).encode()),
    )

    def check(data: bytes):
        path.write_bytes(data)
        inst = _rejected_only(lambda: read_instances(path, "proofs", 4, 1))
        ok = pipeline.verify(path, scratch / "settings.json", scratch / "vk.key", scratch / "kzg.srs")
        assert isinstance(ok, bool)
        if ok and inst is not None:  # (a proof whose instances the verifier cannot read is rejected anyway)
            p = json.loads(data)
            assert inst == orig["instances"][0], "a proof verified for public hashes it was not made for"
            assert p["transcript_type"] == orig["transcript_type"]
            assert p["proof"][: len(orig["proof"])] == orig["proof"], "changed proof bytes verified"

    return strategy, check


def target_settings(public: Path, scratch: Path):
    """The verifier's stages up to the derivation (read the bundle, derive the circuit from the claims)
    on a mutated settings.json, re-sealed as a cheater would. The settings are a function of the
    claims: anything but the derived settings (as JSON) is refused at `circuit`, and ezkl never
    reads the bundle's file."""
    from tests.conftest import rehash
    from zkpot.verifier.derive import derive_circuit
    from zkpot.verifier.read import bind_srs, read_bundle
    from zkpot.verifier.report import Report

    original = (public / "settings.json").read_bytes()
    orig = json.loads(original)

    def check(data: bytes):
        (scratch / "settings.json").write_bytes(data)
        rehash(scratch)
        try:
            b = read_bundle(scratch, False, Report(), Path(tempfile.mkdtemp(dir=scratch.parent)))
            b.srs = bind_srs(b, None, Report())
            derive_circuit(b, "", True, Report(), lambda _: None)
        except Exception as e:
            assert getattr(e, "check", None) == "circuit", f"refused at {getattr(e, 'check', e)!r}, not circuit"
            return
        assert json.loads(data) == orig, "settings other than the derived ones were accepted"

    return json_or_bytes(original), check


def target_vk(public: Path, scratch: Path):
    """verifier/derive.check_vk (the vk's k must be the circuit's), then ezkl.verify (through pipeline.verify)
    reading a mutated vk. ezkl rebuilds the constraint
    system from the settings and reads k, the fixed and permutation commitments from the vk; the
    selector bitmaps after them are redundant for verification, and trailing bytes are not read.
    An accepted vk must therefore agree with the original on every byte before the selectors."""
    from zkpot.circuits import pipeline
    from zkpot.verifier.derive import check_vk

    original = (public / "vk.key").read_bytes()
    orig_logrows = json.loads((public / "settings.json").read_text())["run_args"]["logrows"]
    proof = json.loads((public / "proofs" / "chunk_00001.json").read_text())
    head = 7 + 64 * len(proof["protocol"]["preprocessed"])  # version, k, compress flag, count, points
    hot = [(0, 8), (8, head)]

    def check(data: bytes):
        (scratch / "vk.key").write_bytes(data)
        if _rejected_only(lambda: check_vk(scratch / "vk.key", orig_logrows, "proofs")) is None:
            return  # as in verify_bundle: ezkl never reads a vk whose domain is not the circuit's
        ok = pipeline.verify(scratch / "proofs" / "chunk_00001.json", scratch / "settings.json", scratch / "vk.key", scratch / "kzg.srs")
        assert isinstance(ok, bool)
        if ok:
            assert len(data) >= head and data[:head] == original[:head], "a vk with other commitments verified"

    return byte_mutation(original, hot), check


def target_srs(public: Path, scratch: Path):
    """circuits/srs.identify (header, exact size, sha256, origin) and ezkl.verify with the mutated
    SRS. A KZG verifier reads g[0], [1]_2 and [s]_2 only: an accepted SRS must agree with the
    original there (other points may differ; the file's hash then says it is not the original)."""
    from zkpot.circuits import pipeline, srs as srs_mod

    original = (public / "kzg.srs").read_bytes()
    n = len(original)
    hot = [(0, 4), (4, 68), (n - 256, n - 128), (n - 128, n)]

    def check(data: bytes):
        (scratch / "kzg.srs").write_bytes(data)
        ident = _rejected_only(lambda: srs_mod.identify(scratch / "kzg.srs"))
        if ident is None:
            return
        assert ident["origin"] == srs_mod.INSECURE and len(data) == n
        ok = pipeline.verify(scratch / "proofs" / "chunk_00001.json", scratch / "settings.json", scratch / "vk.key", scratch / "kzg.srs")
        assert isinstance(ok, bool)
        if ok:
            assert data[:68] == original[:68] and data[-256:] == original[-256:], "an SRS with other g[0]/G2 points verified"

    return byte_mutation(original, hot), check


def target_bundle(public: Path, scratch: Path):
    """verify_bundle on a bundle with one file mutated (sometimes two), the manifest re-sealed
    most of the time, as a cheating prover would. Accepted only if it means what the original did."""
    from tests.conftest import rehash
    from zkpot.verifier.verify import verify_bundle

    files = ["manifest.json", "proofs/chunk_00000.json", "proofs/chunk_00003.json", "settings.json", "dataset.json",
             "vk.key", "kzg.srs", "base_model.safetensors", "step.onnx"]
    originals = {f: (public / f).read_bytes() for f in files}
    reference = meaning(public)

    def mutation(name):
        data = originals[name]
        if name.endswith(".json"):
            return json_or_bytes(data)
        return byte_mutation(data)

    strategy = st.tuples(
        st.lists(st.sampled_from(files).flatmap(lambda f: mutation(f).map(lambda d: (f, d))), min_size=1, max_size=2),
        st.booleans() | st.just(True),  # re-seal the manifest (as a cheater would) most of the time
    )

    def check(example):
        edits, seal = example
        for name, data in originals.items():
            (scratch / name).write_bytes(data)
        for name, data in edits:
            (scratch / name).write_bytes(data)
        if seal and not any(name == "manifest.json" for name, _ in edits):  # (a mutated manifest stays as it is)
            rehash(scratch)
        report = verify_bundle(scratch, allow_insecure_dev_srs=True)
        if report.ok:
            assert meaning(scratch) == reference, "a bundle with other claims was accepted"

    return strategy, check


# ---------------------------------------------------------------------------------------------
# key packages (spec/package.py) and their signatures (spec/signature.py)


def _memoised_bls():
    """py_ecc pairings cost ~0.5 s; most mutations leave the signature inputs unchanged, so the same
    pairing would be recomputed thousands of times. Cache results by exact input bytes: every
    distinct input still goes through py_ecc (a memo of a pure function, not a mock)."""
    import functools

    import zkpot.spec.signature as sig

    real = sig.bls
    fav = functools.cache(lambda pks, msg, s: real.FastAggregateVerify(list(pks), msg, s))

    class Memo:
        KeyValidate = staticmethod(real.KeyValidate)
        PopVerify = staticmethod(functools.cache(real.PopVerify))
        FastAggregateVerify = staticmethod(lambda pks, msg, s: fav(tuple(pks), msg, s))

    sig.bls = Memo


def _signed_package(public: Path, scratch: Path) -> tuple[Path, Path, dict]:
    """A package of the bundle signed by one fresh key (outside the bundle), its key file, the manifest."""
    from zkpot.prover import signing
    from zkpot.prover.publish import publish
    from zkpot.spec.bundle import load_manifest

    _memoised_bls()
    key = scratch.parent / f"{scratch.name}-keys" / "alice.key"
    if not key.exists():
        signing.new_key(key)
    pkg = scratch.parent / f"{scratch.name}-pkg"
    if not pkg.exists():
        publish(public, pkg, [key], say=lambda *_: None)
    return pkg, key, load_manifest(public)


def _package_check(public: Path, pkg: Path, work: Path, m: dict, originals: dict, named_arg: str):
    """Write the mutated package into `work`, run the checks `zkpot verify --package --publisher` runs.
    Returns True if accepted; then every signed byte must be the original's."""
    from zkpot.verifier.vouch import check_package
    from zkpot.spec.signature import parse_signatures, read_publisher

    def run():
        named = [read_publisher(named_arg)]
        check_package(work, public, m, named)
        return named
    named = _rejected_only(run)
    if named is None:
        return False
    assert (work / "package.json").read_bytes() == originals["package.json"], "an edited package.json was accepted"
    for name in json.loads(originals["package.json"])["files"]:
        assert (work / name).read_bytes() == originals[name], f"an edited {name} was accepted"
    extra = {p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file()} - set(originals)
    assert not extra, f"a package with unlisted files {extra} was accepted"
    sigs = parse_signatures(json.loads((work / "signatures.json").read_bytes()))
    assert sigs == parse_signatures(json.loads(originals["signatures.json"])), "other signatures were accepted"
    assert named == [bytes.fromhex(json.loads(originals["signatures.json"])["signers"][0]["public_key"])]
    return True


def _reset(work: Path, originals: dict) -> None:
    import shutil as _sh

    _sh.rmtree(work, ignore_errors=True)
    for name, data in originals.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(data)


def target_package(public: Path, scratch: Path):
    """verifier/vouch.check_package (canonical package.json, listed files and their sha256, no
    unlisted file, names, the bundle against the package) on a signed package with one or two
    files mutated or a file added. Accepted only if every signed and listed byte is the original."""
    pkg, key, m = _signed_package(public, scratch)
    originals = {p.relative_to(pkg).as_posix(): p.read_bytes() for p in pkg.rglob("*") if p.is_file()}
    work = scratch / "pkg"
    pub = scratch.parent / f"{scratch.name}-keys" / "alice.pub"
    pub.write_text(json.loads(originals["signatures.json"])["signers"][0]["public_key"] + "\n")

    def mutation(name):
        return json_or_bytes(originals[name]) if name.endswith(".json") else byte_mutation(originals[name])

    edit = st.sampled_from(sorted(originals)).flatmap(lambda f: mutation(f).map(lambda d: (f, d)))
    added = st.tuples(st.sampled_from(["extra.bin", "evm/x.sol", "fold/a.vk", "../outside", ".hidden", "a/../b"]),
                      st.binary(max_size=64))
    strategy = st.lists(st.one_of(edit, edit, added), min_size=1, max_size=2)

    def check(edits):
        _reset(work, originals)
        for name, data in edits:
            target = work / name
            if not target.resolve().is_relative_to(work.resolve()):
                continue  # never write outside the scratch package
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        _package_check(public, pkg, work, m, originals, str(pub))

    return strategy, check


def target_signatures(public: Path, scratch: Path):
    """spec/signature (signatures.json: form, signers, proofs of possession, aggregate signature)
    and read_publisher (a --publisher key file) through check_package. Accepted only if the signers
    and signature are the original's and the named key is the original signer's; fields the check
    does not read (e.g. "scheme") may differ in canonical form."""
    from zkpot.spec.canonical import canonical_json

    pkg, key, m = _signed_package(public, scratch)
    originals = {p.relative_to(pkg).as_posix(): p.read_bytes() for p in pkg.rglob("*") if p.is_file()}
    work = scratch / "pkg"
    pub = scratch.parent / f"{scratch.name}-keys" / "named.pub"
    pk_line = (json.loads(originals["signatures.json"])["signers"][0]["public_key"] + "\n").encode()
    doc = json.loads(originals["signatures.json"])
    sigs = st.one_of(
        json_mutation(doc).map(canonical_json),           # structural edits, still canonical: reach the crypto
        byte_mutation(originals["signatures.json"]),
        JSON.map(lambda o: json.dumps(o).encode()),
    )
    strategy = st.tuples(st.one_of(sigs, st.just(originals["signatures.json"])),
                         st.one_of(st.just(pk_line), byte_mutation(pk_line), st.binary(max_size=200)))

    def check(example):
        sig_bytes, pub_bytes = example
        _reset(work, originals)
        (work / "signatures.json").write_bytes(sig_bytes)
        pub.write_bytes(pub_bytes)
        _package_check(public, pkg, work, m, originals, str(pub))

    return strategy, check


def run(target: str, examples: int, public: Path, scratch: Path, explore: bool = False) -> None:
    """Without `explore` the inputs are a fixed sequence (hypothesis' derandomize): the default
    test run is reproducible and fails only on a regression; with it, every run tries new inputs."""
    scratch.mkdir(parents=True, exist_ok=True)
    shutil.copytree(public, scratch, dirs_exist_ok=True)
    strategy, check = globals()[f"target_{target}"](public, scratch)
    signal.signal(signal.SIGALRM, _alarm)
    count = [0]

    @settings(max_examples=examples, deadline=None, database=None, derandomize=not explore, print_blob=True,
              phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
    @given(strategy)
    def fuzz(example):
        count[0] += 1
        signal.alarm(PER_EXAMPLE_SECONDS)
        try:
            check(example)
        finally:
            signal.alarm(0)

    fuzz()
    print(f"{target}: {count[0]} inputs, no traceback, hang or acceptance", flush=True)


if __name__ == "__main__":
    if len(sys.argv) not in (5, 6) or sys.argv[1] not in TARGETS or sys.argv[5:] not in ([], ["--explore"]):
        sys.exit(f"usage: python -m tests.adversarial.fuzz_targets {{{','.join(TARGETS)}}} EXAMPLES BUNDLE SCRATCH [--explore]")
    run(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), explore=sys.argv[5:] == ["--explore"])
