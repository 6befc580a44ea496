"""Several data owners, one run (a clean room), on real proofs: the README's three-owner example run
through the CLI once (alice 2 batches, bob 1, carol 1; 1 epoch = 4 step proofs), then a cheating
trainer's attacks on copies of its bundle, each rejected at the check `owners` (or `manifest` for a
malformed statement), and bad handoffs refused by `zkpot train` in one line with exit code 2."""
from __future__ import annotations

import json
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import ezkl
import pytest

from zkpot.prover import signing
from tests.adversarial.helpers import failures, felt, manifest
from tests.conftest import edit_manifest, expected_exit, rehash
from zkpot.spec import protocol as P
from zkpot.spec.owners import statement_bytes
from zkpot.verifier.verify import verify_bundle

REPO = Path(__file__).resolve().parents[1]
ROWS = {"alice": 8, "bob": 4, "carol": 4, "dave": 4}   # dave: a non-member with data and a key of his own


def zkpot(*args, cwd: Path, stdout=None):
    r = subprocess.run([sys.executable, "-m", "zkpot.cli", *map(str, args)], capture_output=stdout is None,
                       stdout=stdout, text=True, cwd=cwd)
    assert "Traceback" not in (r.stdout or "") + (r.stderr or ""), r.stderr
    return r


def readme_commands() -> list[str]:
    """The README's three-owner bash block, comment lines left out."""
    text = (REPO / "README.md").read_text()
    section = text.split("checks that the run used exactly each named owner's signed batches", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def run_line(line: str, cwd: Path):
    """One line of the example: `zkpot ARGS [> FILE]`."""
    words = shlex.split(line)
    assert words[0] == "zkpot", line
    if ">" in words:
        i = words.index(">")
        with open(cwd / words[i + 1], "w") as f:
            return zkpot(*words[1:i], cwd=cwd, stdout=f)
    return zkpot(*words[1:], cwd=cwd)


def write_csvs(root: Path) -> None:
    """Each owner's own rows: 8 breast-cancer features and the label, disjoint slices."""
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    at = 0
    for name, n in ROWS.items():
        lines = [",".join([f"f{i}" for i in range(8)] + ["label"])]
        lines += [",".join(f"{v:.4f}" for v in d.data[r, :8]) + f",{int(d.target[r])}" for r in range(at, at + n)]
        (root / f"{name}.csv").write_text("\n".join(lines) + "\n")
        at += n


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    """the README's three-owner example, line by line through the CLI; the last line (verify) must say VALID."""
    root = tmp_path_factory.mktemp("clean_room")
    write_csvs(root)
    for line in readme_commands():
        r = run_line(line, root)
        assert r.returncode == expected_exit(line), f"{line}\n{r.stdout}\n{r.stderr}"
    assert "VALID" in r.stdout and "owners" in r.stdout, r.stdout
    assert run_line("zkpot keys new dave.key > dave.pub", root).returncode == 0
    r = zkpot("owner", "commit", "dave.csv", "dave", "--key", "dave.key", "--name", "dave", "--batch-size", 4, cwd=root)
    assert r.returncode == 0, r.stderr
    r = zkpot("owner", "commit", "dave.csv", "dave3", "--key", "dave.key", "--name", "dave", "--batch-size", 3, cwd=root)
    assert r.returncode == 0 and "1 of your 4 rows fill no batch of 3" in r.stderr, r.stderr  # (said, not dropped silently)
    pub = {n: bytes.fromhex((root / f"{n}.pub").read_text().split()[0]) for n in ROWS}
    return SimpleNamespace(root=root, public=root / "run" / "public", pub=pub,
                           owners=json.loads((root / "run" / "public" / "manifest.json").read_text())["dataset"]["owners"])


@pytest.fixture
def bundle(room, tmp_path) -> Path:
    dst = tmp_path / "public"
    shutil.copytree(room.public, dst)
    return dst


def named(room, *who) -> list[bytes]:
    return [room.pub[n] for n in (who or ("alice", "bob", "carol"))]


def owner_doc(room, name: str) -> dict:
    return json.loads((room.root / name / "public" / "owner.json").read_text())


def signed_by(room, key: str, statement: dict) -> dict:
    """`statement` signed with `key`'s secret key file: a well-formed owner document."""
    pk, pop, sig = signing.sign(room.root / f"{key}.key", statement_bytes(statement), P.OWNER_DOMAIN)
    return {"statement": statement, "public_key": pk.hex(), "proof_of_possession": pop.hex(), "signature": sig.hex(),
            "scheme": owner_doc(room, "alice")["scheme"]}


def set_owners(public: Path, owners) -> None:
    edit_manifest(public, lambda m: m["dataset"].__setitem__("owners", owners))
    rehash(public)


def set_batches(public: Path, batches: list[str]) -> None:
    """The dataset re-committed to other batch commitments (root, counts and manifest in step), re-sealed."""
    root = ezkl.poseidon_hash(batches)[0]
    (public / "dataset.json").write_text(json.dumps({"batch_commitments": batches, "root": root}))

    def fix(m):
        m["dataset"]["root"] = root
        m["run"]["num_batches"] = len(batches)

    edit_manifest(public, fix)
    rehash(public)


def rejected(public: Path, owners: list[bytes] | None) -> tuple[set, str]:
    """(check, chunk) of every failure (as helpers.failures), and the text of the `owners` one."""
    report = verify_bundle(public, allow_insecure_dev_srs=True, owners=owners)
    assert not report.ok, "accepted: " + str(report.passed)
    said = [str(f) for f in report.failures if f.check in ("owners", "manifest")]
    return {(f.check, f.chunk) for f in report.failures}, " ".join(said)


def batches_of(public: Path) -> list[str]:
    return json.loads((public / "dataset.json").read_text())["batch_commitments"]


def dave_batch(room) -> str:
    from zkpot.prover.commit import commitment

    handoff = json.loads((room.root / "dave" / "private" / "handoff.json").read_text())
    return commitment(handoff["batches"][0])


# --- the honest run ------------------------------------------------------------------------------

def test_three_owners_valid_with_every_key_named(room):
    report = verify_bundle(room.public, allow_insecure_dev_srs=True, owners=named(room))
    assert report.ok, report.failures
    line = dict(report.passed)["owners"]
    for name, n in (("alice", 2), ("bob", 1), ("carol", 1)):
        assert name in line and room.pub[name].hex()[:16] in line and f"{n} batch(es)" in line
    assert [o["statement"]["num_batches"] for o in room.owners] == [2, 1, 1]
    assert manifest(room.public)["run"]["num_batches"] == 4


def test_without_owner_keys_a_warning_and_no_owners_claim(room):
    report = verify_bundle(room.public, allow_insecure_dev_srs=True)
    assert report.ok and "owners" not in dict(report.passed)
    assert any("none named with --owner" in w and room.pub["bob"].hex()[:16] in w for w in report.warnings)


def test_owner_files_private_and_public(room):
    for name in ("alice", "bob", "carol"):
        assert stat.S_IMODE((room.root / name / "private" / "handoff.json").stat().st_mode) == 0o600
        assert owner_doc(room, name) in room.owners
    assert [o["public_key"] for o in room.owners] == [room.pub[n].hex() for n in ("alice", "bob", "carol")]


def test_trainer_used_the_owners_salts_not_its_own(room):
    """dataset.json's commitments are the owners' own (their salts), in owner order."""
    from zkpot.prover.commit import commitment

    mine = []
    for name in ("alice", "bob", "carol"):
        handoff = json.loads((room.root / name / "private" / "handoff.json").read_text())
        mine += [commitment(v) for v in handoff["batches"]]
    assert batches_of(room.public) == mine


# --- a cheating trainer ----------------------------------------------------------------------------

def test_non_member_as_a_fourth_owner(room, bundle):
    """Dave's own, validly signed statement added to the owners (his batch would need proofs too)."""
    set_owners(bundle, room.owners + [owner_doc(room, "dave")])
    assert rejected(bundle, named(room)) == ({("owners", None)}, "owners: the owners signed for 5 batches (2 + 1 + 1 + 1), "
                                             "the dataset commits to 4: a batch of no owner, or an owner's batch dropped")
    assert failures(bundle, owners=named(room, "alice", "bob", "carol", "dave")) == {("owners", None)}


def test_non_member_batch_as_extra_commitment(room, bundle):
    set_batches(bundle, batches_of(bundle) + [dave_batch(room)])
    checks, said = rejected(bundle, named(room))
    assert ("owners", None) in checks and "signed for 4 batches (2 + 1 + 1), the dataset commits to 5" in said


def test_owner_left_out_of_the_list(room, bundle):
    """The run trained on carol's batch, but the manifest names alice and bob only: carol's batch is
    nobody's (a non-member's data hidden the same way)."""
    set_owners(bundle, room.owners[:2])
    checks, said = rejected(bundle, named(room, "alice", "bob"))
    assert checks == {("owners", None)} and "signed for 3 batches (2 + 1), the dataset commits to 4" in said


@pytest.mark.parametrize("edit, said", [
    ("drop alice's second", "signed for 4 batches (2 + 1 + 1), the dataset commits to 3"),
    ("alice's first twice (for bob's)", "owner 1 ('bob: clinic B, 2026 intake'): batches 2.. do not hash to the root it signed"),
    ("alice's two swapped", "owner 0 ('alice: clinic A, 2026 intake'): batches 0.. do not hash to the root it signed"),
    ("dave's for carol's", "owner 2 ('carol: clinic C, 2026 intake'): batches 3.. do not hash to the root it signed")])
def test_owner_batch_dropped_repeated_moved_or_replaced(room, bundle, edit, said):
    """The dataset re-committed (the proofs are the honest run's, so `schedule` fails too): `owners`
    names the owner whose signed batches are not the run's."""
    b = batches_of(bundle)
    new = {"drop alice's second": [b[0], b[2], b[3]],
           "alice's first twice (for bob's)": [b[0], b[1], b[0], b[3]],
           "alice's two swapped": [b[1], b[0], b[2], b[3]],
           "dave's for carol's": [b[0], b[1], b[2], dave_batch(room)]}[edit]
    set_batches(bundle, new)
    checks, text = rejected(bundle, named(room))
    assert ("owners", None) in checks and said in text


def test_owners_reordered(room, bundle):
    set_owners(bundle, [room.owners[1], room.owners[0], room.owners[2]])
    checks, said = rejected(bundle, named(room))
    assert checks == {("owners", None)} and "owner 0 ('bob: clinic B, 2026 intake'): batches 0.. do not hash" in said


@pytest.mark.parametrize("field", ["public_key", "proof_of_possession", "signature"])
def test_alice_root_signed_by_someone_else(room, bundle, field):
    """Dave signs alice's statement: his key, his proof of possession or his signature in her entry."""
    owners = json.loads(json.dumps(room.owners))
    owners[0][field] = signed_by(room, "dave", owners[0]["statement"])[field]
    set_owners(bundle, owners)
    checks, said = rejected(bundle, named(room))
    assert checks == {("owners", None)}
    assert ("invalid proof of possession" if field != "signature" else "the signature does not verify") in said


def test_alice_root_signed_by_dave_entirely(room, bundle):
    """A complete, valid entry by dave for alice's statement: not the key the verifier named."""
    owners = json.loads(json.dumps(room.owners))
    owners[0] = signed_by(room, "dave", owners[0]["statement"])
    set_owners(bundle, owners)
    checks, said = rejected(bundle, named(room))
    assert checks == {("owners", None)} and f"{room.pub['dave'].hex()[:16]}…, 2 batch(es)) is not an owner you named" in said
    assert verify_bundle(bundle, allow_insecure_dev_srs=True, owners=named(room, "dave", "bob", "carol")).ok


STATEMENT_CHANGES = {"name": "mallory", "num_batches": 1, "batch_size": 8, "features": 7, "label_width": 2, "scale": 7}


@pytest.mark.parametrize("field", [*STATEMENT_CHANGES, "root"])
def test_statement_field_changed_signature_kept(room, bundle, field):
    """Every statement field changed, the signature kept; root: alice's data swapped for another
    commitment (dave's root) under her key."""
    owners = json.loads(json.dumps(room.owners))
    owners[0]["statement"][field] = STATEMENT_CHANGES.get(field) or owner_doc(room, "dave")["statement"]["root"]
    set_owners(bundle, owners)
    checks, said = rejected(bundle, named(room))
    assert checks == {("owners", None)} and "the signature does not verify on the statement" in said


@pytest.mark.parametrize("field", ["batch_size", "features", "label_width", "scale", "root", "num_batches"])
def test_statement_field_changed_and_resigned_by_its_owner(room, bundle, field):
    """Alice really signed another statement (another layout, another root): it does not cover this run."""
    owners = json.loads(json.dumps(room.owners))
    st = dict(owners[0]["statement"])
    st[field] = STATEMENT_CHANGES.get(field) or owner_doc(room, "dave")["statement"]["root"]
    owners[0] = signed_by(room, "alice", st)
    set_owners(bundle, owners)
    checks, said = rejected(bundle, named(room))
    assert checks == {("owners", None)}
    assert {"root": "batches 0.. do not hash to the root it signed", "num_batches": "signed for 3 batches (1 + 1 + 1)"}.get(
        field, f"signed batches with {field} {st[field]}, the run's is") in said


def test_one_key_for_two_owners(room, bundle):
    owners = json.loads(json.dumps(room.owners))
    owners[2] = signed_by(room, "alice", owners[2]["statement"])
    set_owners(bundle, owners)
    assert failures(bundle, owners=named(room)) == {("owners", None)}
    assert rejected(bundle, None) == ({("owners", None)}, "owners: one key signs for two owners: each owner's key must be its own")


@pytest.mark.parametrize("keys, said", [(("alice", "bob"), "carol: clinic C, 2026 intake ("),
                                       (("alice", "bob", "carol", "dave"), " you named signed no statement in this run"),
                                       (("alice", "bob", "dave"), "is not an owner you named with --owner")])
def test_named_keys_must_be_exactly_the_owners(room, keys, said):
    checks, text = rejected(room.public, named(room, *keys))
    assert checks == {("owners", None)} and said in text


def test_owner_named_for_a_bundle_without_owners(room, bundle):
    edit_manifest(bundle, lambda m: m["dataset"].pop("owners"))
    rehash(bundle)
    assert verify_bundle(bundle, allow_insecure_dev_srs=True).ok
    assert rejected(bundle, named(room)) == ({("owners", None)}, "owners: --owner was given, but the bundle names no "
                                                                 "data owners (dataset.owners)")


MALFORMED = {
    "empty list": lambda o: [],
    "too many": lambda o: o * 22,
    "not a list": lambda o: "alice",
    "statement field missing": lambda o: [{**o[0], "statement": {k: v for k, v in o[0]["statement"].items() if k != "scale"}}, *o[1:]],
    "extra field": lambda o: [{**o[0], "note": "x"}, *o[1:]],
    "other format": lambda o: [{**o[0], "statement": {**o[0]["statement"], "format": "zkpot/data-owner-0"}}, *o[1:]],
    "other scheme": lambda o: [{**o[0], "scheme": "ed25519"}, *o[1:]],
    "key not hex": lambda o: [{**o[0], "public_key": "zz" * 48}, *o[1:]],
    "short signature": lambda o: [{**o[0], "signature": o[0]["signature"][:-2]}, *o[1:]],
    "root not a felt": lambda o: [{**o[0], "statement": {**o[0]["statement"], "root": "f" * 64}}, *o[1:]],
    "count a bool": lambda o: [{**o[0], "statement": {**o[0]["statement"], "num_batches": True}}, *o[1:]],
    "count zero": lambda o: [{**o[0], "statement": {**o[0]["statement"], "num_batches": 0}}, *o[1:]],
    "name too long": lambda o: [{**o[0], "statement": {**o[0]["statement"], "name": "a" * 65}}, *o[1:]],
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_owner_statements(room, bundle, case):
    set_owners(bundle, MALFORMED[case](json.loads(json.dumps(room.owners))))
    assert failures(bundle, owners=named(room)) == {("manifest", None)}


def test_verify_cli_names_the_check(room, bundle):
    set_owners(bundle, [room.owners[1], room.owners[0], room.owners[2]])
    r = zkpot("verify", bundle, "--allow-insecure-dev-srs", "--owner", "alice.pub", "--owner", "bob.pub",
              "--owner", "carol.pub", cwd=room.root)
    assert r.returncode == 1 and "owners" in r.stdout and "INVALID" in r.stdout, r.stdout


# --- bad input: one line, exit code 2 ----------------------------------------------------------------

def _handoff(room, name="alice") -> dict:
    return json.loads((room.root / name / "private" / "handoff.json").read_text())


def _tampered(room, tmp_path, fn) -> Path:
    h = _handoff(room)
    fn(h)
    path = tmp_path / "handoff.json"
    path.write_text(json.dumps(h))
    return path


BAD_HANDOFFS = {
    "not json": (lambda h: None, "not valid JSON"),
    "a batch's feature changed": (lambda h: h["batches"][1].__setitem__(0, felt(3)), "do not hash to the root"),
    "a batch dropped": (lambda h: h["batches"].pop(), "batch vectors"),
    "a batch's salt word changed": (lambda h: h["batches"][0].__setitem__(-1, felt(5)), "do not hash to the root"),
    "statement root changed": (lambda h: h["owner"]["statement"].__setitem__("root", felt(7)), "signature does not verify"),
    "signature of another statement": (lambda h: h["owner"].__setitem__("signature", h["owner"]["proof_of_possession"]),
                                       "signature does not verify"),
    "owner field missing": (lambda h: h["owner"].pop("signature"), "must be an object with exactly"),
    "not a handoff": (lambda h: h.pop("format"), "not an owner handoff"),
}


@pytest.mark.parametrize("case", BAD_HANDOFFS)
def test_train_refuses_bad_handoff_in_one_line(room, tmp_path, case):
    fn, message = BAD_HANDOFFS[case]
    path = tmp_path / "bad.json"
    if case == "not json":
        path.write_text("{not json")
    else:
        path = _tampered(room, tmp_path, fn)
    r = zkpot("train", tmp_path / "run", "--owner-data", path, "--owner-data", room.root / "bob/private/handoff.json",
              "--batch-size", 4, "--epochs", 1, cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "run" / "public" / "step.onnx").exists()


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "8"], "batch_size 4, the run's is 8"),
    (["--scale", "7"], "scale 8, the run's is 7"),
    (["--feature-bound", "0.5"], "outside the run's --feature-bound 0.5"),
    (["--loss", "ce"], "one-hot"),
    (["--data", "alice.csv"], "drop --data"),
    (["--rows", "4"], "drop --rows"),
    (["--owner-data", "alice/private/handoff.json"], "already signs another handoff"),
])
def test_train_refuses_handoffs_that_do_not_fit(room, tmp_path, args, message):
    r = zkpot("train", tmp_path / "run", "--owner-data", "alice/private/handoff.json", "--owner-data",
              "bob/private/handoff.json", *args, *([] if "--batch-size" in args else ["--batch-size", "4"]),
              cwd=room.root)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_owner_with_another_label_width_refused(room, tmp_path):
    r = zkpot("owner", "commit", "carol.csv", tmp_path / "carol2", "--key", "carol.key", "--name", "c", "--batch-size",
              4, "--loss", "ce", "--outputs", "3", cwd=room.root)
    assert r.returncode == 0, r.stderr
    r = zkpot("train", tmp_path / "run", "--owner-data", "alice/private/handoff.json", "--owner-data",
              tmp_path / "carol2/private/handoff.json", "--batch-size", 4, cwd=room.root)
    assert r.returncode == 2 and "label_width 3, the run's is 1" in r.stderr, r.stderr


@pytest.mark.parametrize("args, message", [
    (["owner", "commit", "alice.csv", "x", "--key", "missing.key", "--name", "a"], "key file not found"),
    (["owner", "commit", "missing.csv", "x", "--key", "alice.key", "--name", "a"], "dataset not found"),
    (["owner", "commit", "alice.csv", "x", "--key", "alice.key", "--name", ""], "--name must be"),
    (["owner", "commit", "bob.csv", "x", "--key", "bob.key", "--name", "b", "--batch-size", "8"], "cannot fill one batch"),
    (["verify", "run/public", "--owner", "nothex"], "--owner nothex: neither a public key"),
    (["verify", "run/public", "--owner", "ab" * 48], "not a valid BLS12-381 public key"),
])
def test_owner_cli_bad_input_is_one_line(room, args, message):
    r = zkpot(*args, cwd=room.root)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


# --- every field of an owner's entry, any value ----------------------------------------------------

from hypothesis import HealthCheck, given, settings, strategies as hs  # noqa: E402

VALUES = hs.one_of(hs.none(), hs.booleans(), hs.integers(-2, 1 << 70), hs.floats(allow_nan=True), hs.text(max_size=70),
                   hs.lists(hs.integers(0, 9), max_size=3), hs.dictionaries(hs.text(max_size=3), hs.integers(0, 3), max_size=2),
                   hs.integers(0, (1 << 254) - 1).map(felt), hs.binary(min_size=48, max_size=96).map(bytes.hex))
FIELDS = [(k,) for k in P.OWNER_DOC] + [("statement", k) for k in P.OWNER_STATEMENT]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(owner=hs.integers(0, 2), path=hs.sampled_from(FIELDS), value=VALUES)
def test_any_changed_owner_field_is_rejected(room, owner, path, value):
    """Whatever an owner's entry field becomes (any type, any value), the statement check refuses it at
    `manifest` (its shape) or `owners` (its signature, its key, its slice), never with another error."""
    from zkpot.spec.claims import check_shape
    from zkpot.spec.errors import Rejected
    from zkpot.verifier.owners import check_owners

    m = json.loads((room.public / "manifest.json").read_text())
    doc = m["dataset"]["owners"][owner]
    where = doc if len(path) == 1 else doc["statement"]
    if where[path[-1]] == value and type(where[path[-1]]) is type(value):
        return
    where[path[-1]] = value
    with pytest.raises(Rejected) as e:
        check_shape(m)
        check_owners(m, batches_of(room.public), named(room))
    assert e.value.check in ("manifest", "owners")
