"""The cache's key (spec/cache.py): an entry is named by what made it, zkpot's own derivation code included
(a hash of it, not a number bumped by hand), except a dev SRS, which no code of zkpot's makes."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from zkpot.spec import cache

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZKPOT_CACHE", str(tmp_path / "cache"))
    versions = cache.versions
    yield tmp_path / "cache"
    versions.cache_clear()  # (a test's own code hash is not kept for the next test)


@pytest.fixture
def code_moved(own_cache, monkeypatch):
    """Entries before and after the code hash moves: {name: (before, after)}, for a few entries."""
    def ids():
        return {"circuits": cache.entry("circuits", claims={"lr": 0.5}).name,
                "keys": cache.entry("keys", onnx="a" * 64, settings="b" * 64, srs="c" * 64).name,
                "srs-dev": cache.entry("srs-dev", logrows=21).name, "srs-seen": cache.entry("srs-seen", sha256="d" * 64).name,
                "graphs": cache.entry("graphs", sha256="e" * 64).name}

    before = ids()
    assert ids() == before  # stable across calls
    real = cache.code_hash()
    monkeypatch.setattr(cache, "code_hash", lambda: "0" * 64 if real != "0" * 64 else "1" * 64)
    cache.versions.cache_clear()
    after = ids()
    return {name: (before[name], after[name]) for name in before}


def test_an_entry_moves_when_the_code_hash_moves(code_moved):
    assert code_moved["circuits"][0] != code_moved["circuits"][1]
    assert code_moved["keys"][0] == code_moved["keys"][1]  # (ezkl's setup of hashed files: keyed by the pipeline, below)


def test_a_dev_srs_does_not_move_with_the_code_but_with_ezkl(code_moved, monkeypatch):
    """A dev SRS is ezkl.gen_srs(logrows) (minutes at logrows 21): kept across every edit of zkpot, made
    again for another ezkl."""
    assert code_moved["srs-dev"][0] == code_moved["srs-dev"][1]
    assert code_moved["srs-seen"][0] == code_moved["srs-seen"][1]  # (what this machine hashed: kept too)
    assert code_moved["graphs"][0] == code_moved["graphs"][1]      # (named by its own bytes)
    real = cache.versions()
    monkeypatch.setattr(cache, "versions", lambda: {**real, "ezkl": real["ezkl"] + "-other"})
    assert cache.entry("srs-dev", logrows=21).name != code_moved["srs-dev"][0]
    assert set(cache.KEYED_BY) <= set(cache.NAMESPACES)
    assert all(set(v) <= set(cache.VERSIONS) for v in cache.KEYED_BY.values())


def test_the_code_hash_is_stable_and_computed_once():
    cache.code_hash.cache_clear()
    first = cache.code_hash()
    assert cache.code_hash() is first  # (functools.cache: once per process)
    cache.code_hash.cache_clear()
    assert cache.code_hash() == first and len(first) == 64


def entry_in(copy: Path, tmp: Path, namespace: str = "circuits") -> str:
    """The entry of one input in `namespace`, as the zkpot package at copy/zkpot names it (a fresh process)."""
    code = f"from zkpot.spec import cache; print(cache.entry({namespace!r}, claims={{'lr': 0.5}}).name)"
    env = {**os.environ, "PYTHONPATH": str(copy), "ZKPOT_CACHE": str(tmp / "cache")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.strip()


def test_an_edit_to_the_derivation_code_makes_new_entries(tmp_path):
    """No number to bump: an edit to any module derivations are made by (spec, models, circuits, verifier: its
    rebuild.py derives the aggregation files) names new entries; an edit elsewhere (the prover) or the same code
    elsewhere on disk names the same."""
    copy = tmp_path / "site"
    for name in ("__init__.py", "cli.py", "spec", "models", "circuits", "prover", "verifier"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, copy / "zkpot" / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (copy / "zkpot").mkdir(parents=True, exist_ok=True)
            shutil.copy(src, copy / "zkpot" / name)
    same = entry_in(copy, tmp_path)
    assert same == entry_in(copy, tmp_path)  # deterministic across processes
    with open(copy / "zkpot" / "prover" / "prove.py", "a") as f:
        f.write("\n# not a derivation\n")
    assert entry_in(copy, tmp_path) == same
    keys = entry_in(copy, tmp_path, "keys")
    for module in ("models/step.py", "circuits/derive.py", "spec/lookups.py", "verifier/rebuild.py", "circuits/pipeline.py"):
        text = (copy / "zkpot" / module).read_text()
        (copy / "zkpot" / module).write_text(text + "\n# a derivation rule changed\n")
        assert entry_in(copy, tmp_path) != same, module
        # the prover's keys move only with how zkpot calls ezkl (and ezkl)
        assert (entry_in(copy, tmp_path, "keys") != keys) == (module == "circuits/pipeline.py"), module
        (copy / "zkpot" / module).write_text(text)
        assert entry_in(copy, tmp_path) == same, module


def _inputs(ns: str) -> dict:
    return {"circuits": {"claims": {"lr": 0.5}}, "keys": {"onnx": "a" * 64, "settings": "b" * 64, "srs": "c" * 64},
            "aggregation": {"logrows": 21, "srs": "c" * 64, "protocols": [None]}, "srs-seen": {"sha256": "d" * 64},
            "srs-dev": {"logrows": 21}, "graphs": {"sha256": "e" * 64}, "srs-checked": {"sha256": "f" * 64}}[ns]


@pytest.mark.parametrize("moved", cache.VERSIONS)
def test_prune_deletes_what_other_versions_made_and_nothing_else(own_cache, monkeypatch, moved):
    """Every namespace gets an entry under today's versions, then (one version moved, as an upgrade moves it)
    another under the new ones: prune deletes exactly the entries whose versions key them and moved, and
    whatever a namespace holds under the versions of the process that prunes is kept."""
    old = {}
    for ns in cache.NAMESPACES:
        old[ns] = cache.entry(ns, **_inputs(ns))
        (old[ns] / "payload").write_bytes(b"x" * 1000)
    real = cache.versions()
    monkeypatch.setattr(cache, "versions", lambda: {**real, moved: real[moved] + "-next"})
    new = {ns: cache.entry(ns, **_inputs(ns)) for ns in cache.NAMESPACES}
    rows = cache.survey()
    keyed = {ns for ns in cache.NAMESPACES if moved in cache.KEYED_BY.get(ns, cache.VERSIONS)}
    assert {r["namespace"] for r in rows if r["stale"]} == keyed
    assert all(r["stale"] == [old[r["namespace"]]] and r["stale_bytes"] >= 1000 for r in rows if r["namespace"] in keyed)
    assert cache.prune(rows)[0] == len(keyed)
    for ns in cache.NAMESPACES:
        assert new[ns].is_dir()
        assert old[ns].is_dir() == (ns not in keyed)  # (an entry not keyed by the moved version is the same entry)
    assert not any(r["stale"] for r in cache.survey())


def test_prune_counts_unmarked_entries_by_what_keys_them(own_cache):
    """An entry made before zkpot wrote marks: stale where zkpot's code keys it (other code made it, surely),
    kept and counted as unmarked where it may be today's (a dev SRS: minutes to make again)."""
    for ns in ("keys", "srs-dev"):
        (own_cache / ns / ("0" * 32)).mkdir(parents=True)
        (own_cache / ns / ("0" * 32) / "x").write_bytes(b"x")
    rows = {r["namespace"]: r for r in cache.survey()}
    assert [d.name for d in rows["keys"]["stale"]] == ["0" * 32] and rows["keys"]["unmarked"] == 0
    assert rows["srs-dev"]["stale"] == [] and rows["srs-dev"]["unmarked"] == 1


def test_cache_prune_through_the_cli(own_cache):
    """`zkpot cache prune --dry-run` deletes nothing; `zkpot cache prune` deletes the stale entry."""
    stale = own_cache / "keys" / ("0" * 32)
    stale.mkdir(parents=True)
    (stale / "pk.key").write_bytes(b"k" * 4096)
    env = {**os.environ, "ZKPOT_CACHE": str(own_cache)}
    run = lambda *a: subprocess.run([sys.executable, "-m", "zkpot.cli", "cache", *a], env=env, capture_output=True, text=True)
    r = run("prune", "--dry-run")
    assert r.returncode == 0 and "would delete 1 entries" in r.stdout and stale.is_dir(), r.stdout + r.stderr
    r = run("prune")
    assert r.returncode == 0 and "deleted 1 entries" in r.stdout and not stale.exists(), r.stdout + r.stderr
    r = run("info")
    assert r.returncode == 0 and "keys" in r.stdout, r.stdout + r.stderr
