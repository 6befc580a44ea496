"""A DP-SGD run end to end on real proofs (issue 26): `zkpot train --dp-clip --dp-noise` with a local drand beacon,
proved, and verified VALID with the epsilon the verifier derives; then every attack of the issue, each rejected at
its named check (verifier/dp.py, verifier/derive.py, verifier/commit.py).

The beacon is tests/beacon_local.py's (a key from a fixed seed, rounds signed as drand signs them): the verifier
trusts it only when told (--beacon HASH), as a user would name a chain other than drand's mainnet ones."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import ezkl
import pytest

from tests.beacon_local import LocalBeacon
from tests.conftest import SMALL, edit_manifest, rehash
from zkpot.prover import dp as prover_dp
from zkpot.prover import train as tr
from zkpot.prover.config import RunConfig
from zkpot.prover.keys import setup
from zkpot.prover.prove import prove_all
from zkpot.prover.run import RunDir
from zkpot.prover.signing import new_key
from zkpot.spec import dp as dp_spec
from zkpot.spec.layout import param_count
from zkpot.verifier import dp as verifier_dp
from zkpot.verifier.verify import verify_bundle

BEACON, OTHER = LocalBeacon(), LocalBeacon(seed=b"another beacon")
ROUND = 7   # the witness attests while round 6 is the latest
DP = dict(dp_clip=1.0, dp_noise=1.0, dp_delta=1e-5)


def witness_key(root: Path) -> Path:
    key = root / "witness.key"
    if not key.exists():
        new_key(key)
    return key


def dp_run(root: Path, **overrides) -> RunDir:
    """prepare (the noise committed), a witness's attestation while round 6 is the latest, round 7 recorded, then
    the steps, setup and proofs: `zkpot train`, `zkpot dp attest`, `zkpot train --beacon-...`, setup, prove."""
    rd = RunDir(root / "run")
    tr.prepare(rd, RunConfig(**{**SMALL, **DP, **overrides}), progress=lambda *_: None)
    att = prover_dp.attest(json.loads(rd.noise_root.read_text()), BEACON.info(), BEACON.round(ROUND - 1), witness_key(root))
    tr.record_beacon(rd, BEACON.info(), BEACON.round(ROUND), [att])
    tr.fixed_point_run(rd)
    setup(rd, None, progress=lambda *_: None)
    prove_all(rd)
    return rd


def readme_line(line: str, cwd: Path) -> str | None:
    """A README line as the test runs it: drand's HTTP API replaced by the local beacon's files (latest = round 6,
    the next = round 7), and `verify` told to trust the local chain; None when the line is done here."""
    files = {"https://api.drand.sh/info > chain.json": ("chain.json", BEACON.info()),
             "https://api.drand.sh/public/latest > latest.json": ("latest.json", BEACON.round(ROUND - 1)),
             "https://api.drand.sh/public/latest > round.json": ("round.json", BEACON.round(ROUND))}
    for tail, (name, doc) in files.items():
        if line.endswith(tail):
            (cwd / name).write_text(json.dumps(doc))
            return None
    assert "curl" not in line and "sleep" not in line, line
    return line + f" --beacon {BEACON.hash}" if line.startswith("zkpot verify") else line


@pytest.fixture(scope="module")
def run_dp(tmp_path_factory) -> RunDir:
    """The README's DP-SGD block, line by line (tests/test_readme.py's runner): train (the noise committed), a
    witness's attestation, train with the round (4 steps of the built-in rows' logistic regression, 8 features,
    batches of 8, C = 1, SIGMA = 1), setup, prove, verify (exit 6 on the dev SRS, epsilon printed)."""
    from tests.test_readme import REPO, bash_block
    from tests.test_readme import run as run_line

    cwd = tmp_path_factory.mktemp("readme_dp")
    lines = bash_block(REPO / "README.md", "## Differential privacy")
    assert [line.split()[1] for line in lines if line.startswith("zkpot")] == \
        ["train", "keys", "dp", "train", "setup", "prove", "verify"]
    for line in lines:
        line = readme_line(line, cwd)
        if line is not None:
            r = run_line(line, cwd)
    assert "VALID ON AN INSECURE DEV SRS" in r.stdout and "epsilon" in r.stdout, r.stdout
    return RunDir(cwd / "runs" / "dp")


@pytest.fixture
def dp_bundle(run_dp, tmp_path) -> Path:
    dst = tmp_path / "public"
    shutil.copytree(run_dp.public, dst)
    return dst


def witness_of(public: Path) -> bytes:
    return bytes.fromhex(json.loads((public / "manifest.json").read_text())["beacon"]["attestations"][0]["public_key"])


def verify(public: Path, chains=(BEACON.hash,), witnesses=None):
    return verify_bundle(public, allow_insecure_dev_srs=True, beacons=list(chains),
                         witnesses=[witness_of(public)] if witnesses is None else witnesses)


def failed_at(report) -> list[str]:
    return [f.check for f in report.failures]


# --- VALID, with the epsilon the claims give ---------------------------------------------------------------------

def test_a_dp_run_verifies_with_the_epsilon_derived_from_its_claims(run_dp):
    named = ["--beacon", BEACON.hash, "--witness", witness_of(run_dp.public).hex()]
    r = subprocess.run([sys.executable, "-m", "zkpot.cli", "verify", str(run_dp.public), "--allow-insecure-dev-srs",
                        *named, "--json"], capture_output=True, text=True)
    assert r.returncode == 6, r.stdout + r.stderr   # every claim bound (on the tests' dev SRS)
    doc = json.loads(r.stdout)
    passed = {c["check"] for c in doc["checks"] if c["result"] == "pass"}
    assert {"run", "vk", "proofs", "schedule", "beacon", "noise", "challenge", "order", "epsilon"} <= passed
    p = doc["privacy"]
    assert any("covert channel" in w for w in doc["warnings"])   # what epsilon assumes of the prover's rounding
    m = json.loads((run_dp.public / "manifest.json").read_text())
    assert "epsilon" not in json.dumps(m)   # nothing to read: the verifier derives it
    assert (p["clip"], p["noise"], p["delta"], p["epochs"]) == (1.0, 1.0, 1e-5, 1)
    assert p == verifier_dp.privacy(m["run"]) and 0 < p["epsilon"] < 100
    text = subprocess.run([sys.executable, "-m", "zkpot.cli", "verify", str(run_dp.public), "--allow-insecure-dev-srs",
                           *named], capture_output=True, text=True).stdout
    assert f"epsilon {p['epsilon']:.4g}" in " ".join(text.split()), text
    shown = subprocess.run([sys.executable, "-m", "zkpot.cli", "inspect", str(run_dp.public)], capture_output=True,
                           text=True, env={**os.environ, "COLUMNS": "300"}).stdout
    assert f"drand round {ROUND}" in shown and "1 attestation(s)" in shown, shown


def test_the_proofs_carry_each_steps_noise_commitment_and_challenge(run_dp):
    """What the verifier reads from the proofs is what the prover committed: H(v | salt) and H(r) of each step."""
    from zkpot.prover.commit import load_or_create_master_key
    from zkpot.prover.train import beacon_round
    from zkpot.spec.beacon import commitment_root
    from zkpot.spec.layout import challenge_at, noise_at

    m = json.loads((run_dp.public / "manifest.json").read_text())
    n, scale = param_count(m["run"]["layout"]["shapes"]), m["run"]["scale"]
    commitments = prover_dp.noise_commitments(load_or_create_master_key(run_dp.master_key), len(m["chunks"]), n, scale)
    root = commitment_root(commitments)
    for c, chunk in enumerate(m["chunks"]):
        inst = json.loads((run_dp.public / chunk["proof"]).read_text())["instances"][0]
        assert inst[noise_at(0)] == commitments[c]
        r = prover_dp.challenge_felts(beacon_round(run_dp), root, c, n, scale)
        assert inst[challenge_at(0)] == ezkl.poseidon_hash(r)[0]


# --- attacks on the claims: another circuit -----------------------------------------------------------------------

def test_noise_left_out_is_another_circuit(bundle):
    """A plain SGD run's proofs (no clipping, no noise) under DP claims: the derived circuit is not theirs."""
    edit_manifest(bundle, lambda m: (m["run"].update(dp=dict(clip=1.0, noise=1.0, delta=1e-5)),
                                     m.update(beacon={"chain": BEACON.info(), "round": BEACON.round(ROUND),
                                                      "attestations": []})))
    assert failed_at(verify(bundle, witnesses=[]))[:1] == ["run"]


@pytest.mark.parametrize("field, value", [("clip", 2.0), ("clip", 0.5), ("noise", 0.5), ("noise", 4.0)])
def test_clipping_or_noise_other_than_proved_is_another_circuit(dp_bundle, field, value):
    edit_manifest(dp_bundle, lambda m: m["run"]["dp"].update({field: value}))
    assert failed_at(verify(dp_bundle))[:1] == ["run"]


def test_dp_claims_dropped_from_the_manifest_are_another_circuit(dp_bundle):
    """The DP proofs claimed as a plain run: its circuit is not the plain step either."""
    edit_manifest(dp_bundle, lambda m: (m["run"].pop("dp"), m.pop("beacon")))
    assert failed_at(verify(dp_bundle, witnesses=[]))[:1] == ["run"]


@pytest.mark.parametrize("where", ["run.dp", "run", "top"])
def test_an_epsilon_written_into_the_manifest_is_refused(dp_bundle, where):
    """A smaller epsilon claimed anywhere: the format has no such field, and the report's is derived."""
    def plant(m):
        {"run.dp": m["run"]["dp"], "run": m["run"], "top": m}[where]["epsilon"] = 0.01
    edit_manifest(dp_bundle, plant)
    assert failed_at(verify(dp_bundle)) == ["manifest"]


def test_another_delta_gives_another_epsilon_never_the_claimed_one(run_dp):
    m = json.loads((run_dp.public / "manifest.json").read_text())
    tight = verifier_dp.privacy({**m["run"], "dp": {**m["run"]["dp"], "delta": 1e-9}})
    assert tight["epsilon"] > verifier_dp.privacy(m["run"])["epsilon"]


# --- attacks on the challenge -------------------------------------------------------------------------------------

def test_a_challenge_from_another_round_is_rejected(dp_bundle):
    edit_manifest(dp_bundle, lambda m: m["beacon"].update(round=BEACON.round(ROUND + 1)))
    assert failed_at(verify(dp_bundle)) == ["challenge"]


def test_a_challenge_from_another_key_is_rejected(dp_bundle):
    """Another chain (a key the trainer may hold): not trusted unless named; named, its round gives other r."""
    edit_manifest(dp_bundle, lambda m: m["beacon"].update(chain=OTHER.info(), round=OTHER.round(ROUND)))
    assert failed_at(verify(dp_bundle)) == ["beacon"]
    assert failed_at(verify(dp_bundle, chains=(BEACON.hash, OTHER.hash))) == ["challenge"]


def test_a_round_signed_by_another_key_is_rejected(dp_bundle):
    edit_manifest(dp_bundle, lambda m: m["beacon"].update(round=OTHER.round(ROUND)))
    assert failed_at(verify(dp_bundle)) == ["beacon-signature"]


def test_the_local_beacon_is_not_trusted_by_default(run_dp):
    assert failed_at(verify(run_dp.public, chains=())) == ["beacon"]


# --- the order: the noise committed before the round ----------------------------------------------------------------

def test_without_a_named_witness_the_order_is_not_bound(run_dp):
    """The attestation's signature holds, but its key is nobody the verifier named: UNBOUND, never VALID."""
    r = verify(run_dp.public, witnesses=[])
    assert not r.failures and r.verdict == "PROOFS VERIFY, CLAIMS NOT BOUND" and r.unbound[0].startswith("order")


def test_a_witness_named_who_did_not_attest_is_rejected(run_dp, tmp_path):
    from zkpot.prover.signing import public_key

    stranger = public_key(witness_key(tmp_path))
    assert failed_at(verify(run_dp.public, witnesses=[stranger])) == ["order"]


def test_an_attestation_signed_later_than_the_round_before_is_rejected(dp_bundle, tmp_path):
    """A witness that saw round 7 already: the trainer could have known the challenge when committing."""
    m = json.loads((dp_bundle / "manifest.json").read_text())
    noise = {"format": prover_dp.NOISE_ROOT_FORMAT, "noise_root": m["beacon"]["attestations"][0]["statement"]["noise_root"]}
    late = prover_dp.attest(noise, BEACON.info(), BEACON.round(ROUND), witness_key(tmp_path))
    edit_manifest(dp_bundle, lambda d: d["beacon"].update(attestations=[late]))
    assert failed_at(verify(dp_bundle, witnesses=[bytes.fromhex(late["public_key"])])) == ["order"]


def test_an_attestation_of_another_root_or_forged_is_rejected(dp_bundle, tmp_path):
    m = json.loads((dp_bundle / "manifest.json").read_text())
    other = prover_dp.attest({"format": prover_dp.NOISE_ROOT_FORMAT, "noise_root": "ab" * 32}, BEACON.info(),
                             BEACON.round(ROUND - 1), witness_key(tmp_path))
    edit_manifest(dp_bundle, lambda d: d["beacon"].update(attestations=[other]))
    assert failed_at(verify(dp_bundle, witnesses=[bytes.fromhex(other["public_key"])])) == ["order"]
    forged = json.loads(json.dumps(m["beacon"]["attestations"][0]))
    forged["statement"]["after_round"] = ROUND   # (so that round 8 would do): the signature no longer holds
    edit_manifest(dp_bundle, lambda d: d["beacon"].update(attestations=[forged]))
    assert failed_at(verify(dp_bundle)) == ["order"]


def test_every_field_of_the_beacon_section_changed_is_rejected(dp_bundle):
    """Each field of the chain's info and of the round, changed (a string's last hex digit flipped, a number + 1):
    rejected at a beacon check, never VALID."""
    m = json.loads((dp_bundle / "manifest.json").read_text())
    for part in ("chain", "round"):
        for key, value in m["beacon"][part].items():
            if isinstance(value, dict):
                changed = {k: v + "x" for k, v in value.items()}
            elif isinstance(value, int):
                changed = value + 1
            else:
                changed = value[:-1] + ("0" if value[-1] != "0" else "1")
            edit_manifest(dp_bundle, lambda d: d["beacon"][part].update({key: changed}))
            got = failed_at(verify(dp_bundle))
            assert got and got[0].startswith(("beacon", "challenge")), (part, key, got)
            edit_manifest(dp_bundle, lambda d: d["beacon"][part].update({key: value}))
    assert not verify(dp_bundle).failures


# --- attacks on the noise: proofs a cheating trainer makes ---------------------------------------------------------

def test_noise_reused_in_two_steps_is_rejected(tmp_path, monkeypatch):
    """A trainer that draws one v (and salt) for every step: its proofs verify, the noise check refuses them."""
    real = prover_dp.noise_felts
    monkeypatch.setattr(prover_dp, "noise_felts", lambda master, step, n, scale: real(master, 0, n, scale))
    rd = dp_run(tmp_path, epochs=1)
    r = verify(rd.public)
    assert failed_at(r) == ["noise"] and "steps 0 and 1" in r.failures[0].args[0]


def test_noise_committed_after_the_challenge_is_rejected(tmp_path, monkeypatch):
    """A trainer that learnt r, then changed its noise: r is no longer the one the commitments give."""
    from zkpot.spec.beacon import commitment_root

    real = prover_dp.challenge_felts
    earlier = "2a" + "00" * 31   # the commitment it had made before changing step 0's noise

    def challenge_before_the_change(round_, root, step, n, scale):   # (the published commitments' root unused)
        return real(round_, commitment_root([earlier, earlier[:-2] + "01"]), step, n, scale)

    monkeypatch.setattr(prover_dp, "challenge_felts", challenge_before_the_change)
    rd = dp_run(tmp_path, epochs=1)
    assert failed_at(verify(rd.public)) == ["challenge"]


def test_per_example_gradients_of_another_batch_are_rejected(dp_bundle):
    """The dataset committing to the batches in another order (a proof then uses a batch other than committed)."""
    d = json.loads((dp_bundle / "dataset.json").read_text())
    d["batch_commitments"].reverse()
    d["root"] = ezkl.poseidon_hash(d["batch_commitments"])[0]
    (dp_bundle / "dataset.json").write_text(json.dumps(d))
    edit_manifest(dp_bundle, lambda m: m["dataset"].update(root=d["root"]))
    rehash(dp_bundle)
    assert failed_at(verify(dp_bundle))[:1] == ["schedule"]


def test_the_sensitivity_bound_covers_the_fixed_point_clipping():
    """spec/dp.sensitivity_quanta: twice C plus sqrt(P) quanta (docs/dp.md), in quanta at the scale."""
    assert dp_spec.sensitivity_quanta(1.0, 9, 8) == 2 * 256 + 6


def test_a_dp_run_of_a_small_mlp_verifies_with_its_epsilon(tmp_path):
    """The issue's second model: an MLP (8 features, 4 hidden, 41 parameters), DP-SGD, 2 steps on real proofs."""
    rd = dp_run(tmp_path, model="mlp", hidden=[4], epochs=1)
    r = verify(rd.public)
    assert r.verdict == "VALID ON AN INSECURE DEV SRS", [str(f) for f in r.failures] + r.unbound
    m = json.loads((rd.public / "manifest.json").read_text())
    assert param_count(m["run"]["layout"]["shapes"]) == 41 and r.privacy == verifier_dp.privacy(m["run"])
    assert 0 < r.privacy["epsilon"] < 100
