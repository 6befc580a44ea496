"""Whoever can write the verifier's cache must not choose its verdict (spec/cache.py: seals).

Each attack writes into a cache a verifier has filled (as a shared CI cache, a pre-warmed image or a
prover's folder handed to the verifier would), then verifies a bundle that only the planted file makes
pass. Before the cache was sealed, the first two gave VALID (exit 0, no warning)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import edit_manifest
from zkpot.spec import cache
from zkpot.spec import protocol as P
from zkpot.spec.errors import BadInput
from zkpot.verifier.verify import verify_bundle


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("ZKPOT_CACHE", str(path))
    return path


def filled(run, own_cache, tmp_path):
    """A copy of the run's bundle, verified VALID once in `own_cache` (from scratch: the full SRS given)."""
    public = tmp_path / "public"
    shutil.copytree(run.public, public)
    report = verify_bundle(public, allow_insecure_dev_srs=True, srs=run.srs)
    assert report.ok, report.failures
    return public


def test_a_planted_step_graph_is_derived_again(run_a, run_lr, own_cache, tmp_path):
    """The lr-0.25 bundle relabelled lr 0.5, and the cache's derivation for the lr-0.5 claims replaced by the
    lr-0.25 run's (its step graph, and the settings and vk filed under that graph): compared against the
    planted files, the bundle would pass `run`, `circuit` and `vk` (VALID before the cache was sealed)."""
    filled(run_a, own_cache, tmp_path)
    ours = (run_a.public / P.STEP_ONNX).read_bytes()
    planted = [f for f in own_cache.rglob(P.STEP_ONNX) if f.read_bytes() == ours]
    assert len(planted) == 1
    theirs = (run_lr.public / P.STEP_ONNX).read_bytes()
    planted[0].write_bytes(theirs)
    under = planted[0].parent / hashlib.sha256(theirs).hexdigest()[:32]
    under.mkdir()
    (under / P.SETTINGS).write_bytes((run_lr.public / P.SETTINGS).read_bytes())
    srs_sha = json.loads((run_lr.public / P.MANIFEST).read_text())["srs"]["sha256"]
    (under / f"vk-{srs_sha[:32]}.key").write_bytes((run_lr.public / P.VK).read_bytes())
    public = tmp_path / "relabelled"
    shutil.copytree(run_lr.public, public)
    edit_manifest(public, lambda m: m["run"]["optimizer"].update(lr=0.5))
    report = verify_bundle(public, allow_insecure_dev_srs=True, srs=run_lr.srs)
    assert {f.check for f in report.failures} == {"run"}, (report.verdict, report.cannot_check)
    assert planted[0].read_bytes() == ours  # derived again, and sealed


def test_a_cached_srs_origin_is_never_read(run_a, own_cache, tmp_path):
    """The cached record of the dev SRS relabelled a ceremony file, the manifest too: without a flag, a
    dev SRS would pass as ceremony. The edited record is not this user's (CANNOT CHECK HERE until the
    full SRS is hashed again); hashed again, the origin comes from the hash list, and the label fails."""
    public = filled(run_a, own_cache, tmp_path)
    [record] = own_cache.glob("srs-seen/*/srs.json")
    record.write_text(json.dumps({**json.loads(record.read_text()), "origin": "ceremony"}))
    edit_manifest(public, lambda m: (m.update(insecure_dev_srs=False), m["srs"].update(origin="ceremony")))
    report = verify_bundle(public)
    assert report.verdict == P.CANNOT_CHECK and "never hashed" in report.cannot_check
    report = verify_bundle(public, srs=run_a.srs)
    assert {f.check for f in report.failures} == {"srs"} and "insecure-dev" in str(report.failures[0])


def test_every_cached_file_planted(run_a, own_cache, tmp_path):
    """Every file of the filled cache (seals included) overwritten: nothing planted is used, the next
    verification (the full SRS hashed again) derives each file anew and is VALID."""
    public = filled(run_a, own_cache, tmp_path)
    files = [f for f in own_cache.rglob("*") if f.is_file()]
    assert {f.parts[len(own_cache.parts)] for f in files} >= {"circuits", "srs-seen"}
    for f in files:
        f.write_bytes(b"planted")
    assert verify_bundle(public, allow_insecure_dev_srs=True).verdict == P.CANNOT_CHECK
    assert verify_bundle(public, allow_insecure_dev_srs=True, srs=run_a.srs).ok
    assert not [f for f in files if f.read_bytes() == b"planted"]


def test_a_seal_is_bound_to_its_place(own_cache):
    a, b = cache.entry("circuits", claims=1) / "vk.key", cache.entry("circuits", claims=2) / "vk.key"
    a.write_bytes(b"vk of claims 1")
    assert cache.sealed(a) is None
    cache.seal(a)
    assert cache.sealed(a) == b"vk of claims 1"
    shutil.copy(a, b)
    shutil.copy(a.with_name("vk.key.seal"), b.with_name("vk.key.seal"))
    assert cache.sealed(b) is None  # moved to another key's entry: not sealed there


@pytest.mark.parametrize("where", ["", "circuits"])
def test_a_cache_others_can_write_is_refused(bundle, own_cache, where):
    (own_cache / where).mkdir(parents=True, exist_ok=True)
    os.chmod(own_cache / where, 0o777)
    with pytest.raises(BadInput, match="can be written by another user"):
        verify_bundle(bundle, allow_insecure_dev_srs=True)
    r = subprocess.run([sys.executable, "-m", "zkpot.cli", "verify", str(bundle), "--allow-insecure-dev-srs"],
                       capture_output=True, text=True, env={**os.environ, "ZKPOT_CACHE": str(own_cache)})
    assert r.returncode == 2 and "chmod go-w" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
