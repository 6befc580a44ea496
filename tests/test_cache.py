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
    assert code_moved["keys"][0] != code_moved["keys"][1]


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


def entry_in(copy: Path, tmp: Path) -> str:
    """The circuits entry of one claim, as the zkpot package at copy/zkpot names it (a fresh process)."""
    code = "from zkpot.spec import cache; print(cache.entry('circuits', claims={'lr': 0.5}).name)"
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
    for module in ("models/step.py", "circuits/derive.py", "spec/lookups.py", "verifier/rebuild.py"):
        text = (copy / "zkpot" / module).read_text()
        (copy / "zkpot" / module).write_text(text + "\n# a derivation rule changed\n")
        assert entry_in(copy, tmp_path) != same, module
        (copy / "zkpot" / module).write_text(text)
        assert entry_in(copy, tmp_path) == same, module
