"""What the verifier reads from a hostile bundle, beyond its claims: JSON nested past Python's recursion
limit, a fold tree with an infinite fan-in, a manifest or file linked out of the bundle. Each must end in
INVALID at a named check (exit 1), bounded in time, never an internal error (exit 3)."""
from __future__ import annotations

import json
import os

import pytest

from tests.adversarial.test_bad_input import zkpot
from tests.conftest import edit_manifest, rehash
from zkpot.spec import protocol as P
from zkpot.verifier.verify import verify_bundle

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("name,check", [("manifest.json", "manifest"), ("settings.json", "circuit"),
                                        ("dataset.json", "schedule"), ("proofs/chunk_00000.json", "proofs")])
def test_json_nested_past_the_recursion_limit_is_rejected(bundle, name, check):
    (bundle / name).write_bytes(DEEP)
    if name != "manifest.json":
        rehash(bundle)  # re-sealed: the file hashes hold, the parser must not fall over
    report = verify_bundle(bundle, allow_insecure_dev_srs=True)
    assert report.verdict == "INVALID" and check in {f.check for f in report.failures}, report.failures


def test_deep_json_through_the_cli_is_exit_1_not_3(bundle):
    (bundle / "manifest.json").write_bytes(DEEP)
    r = zkpot("verify", bundle, "--allow-insecure-dev-srs")
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr, (r.returncode, r.stderr[-1000:])


@pytest.mark.parametrize("fan_in", ["Infinity", "-Infinity", "NaN", 10**400, "1e400", 1.5, True])
def test_a_fold_tree_with_an_impossible_fan_in_is_rejected(bundle, fan_in):
    """The tree's files present and sealed, so the verifier reaches the tree itself."""
    (bundle / "fold").mkdir()
    for name in ("level1_00000.json", "level1_fanin4.vk"):
        (bundle / "fold" / name).write_text("{}")
    m = json.loads((bundle / "manifest.json").read_text())
    m["fold"] = {"fan_in": fan_in, "levels": [[{"proof": "fold/level1_00000.json", "children": [0, 1, 2, 3],
                                                "logrows": 21, "vk": "fold/level1_fanin4.vk"}]]}
    m["files"].update({"fold/level1_00000.json": "", "fold/level1_fanin4.vk": ""})
    (bundle / "manifest.json").write_text(json.dumps(m).replace('"Infinity"', "Infinity").replace('"-Infinity"', "-Infinity")
                                          .replace('"NaN"', "NaN").replace('"1e400"', "1e400"))
    rehash(bundle)
    report = verify_bundle(bundle, allow_insecure_dev_srs=True)
    assert report.verdict == "INVALID" and {f.check for f in report.failures} == {"manifest"}, report.failures


@pytest.mark.parametrize("name", ["manifest.json", "settings.json", "proofs/chunk_00000.json"])
def test_a_link_anywhere_in_the_bundle_is_refused(bundle, tmp_path, name):
    """A link to an identical copy outside the bundle: the bytes would pass, the file is not the bundle's."""
    outside = tmp_path / "elsewhere"
    outside.write_bytes((bundle / name).read_bytes())
    os.unlink(bundle / name)
    os.symlink(outside, bundle / name)
    report = verify_bundle(bundle, allow_insecure_dev_srs=True)
    assert report.verdict == "INVALID" and {f.check for f in report.failures} & {"manifest", "files"}, report.failures


@pytest.mark.parametrize("section", list(P.MANIFEST_KEYS) + ["chunks.0", "run.model"])
def test_a_field_the_format_does_not_define_is_rejected(bundle, section):
    """Found: "dp_epsilon": 1 in a manifest was accepted and echoed under `claims` beside VALID. Every
    section of the manifest takes exactly its fields."""
    def add(m):
        doc = m
        for part in filter(None, section.split(".")):
            doc = doc[int(part)] if isinstance(doc, list) else doc[part]
        doc["dp_epsilon"] = 1

    edit_manifest(bundle, add)
    report = verify_bundle(bundle, allow_insecure_dev_srs=True)
    assert report.verdict == "INVALID" and {f.check for f in report.failures} == {"manifest"}, report.failures
    assert "dp_epsilon" in str(report.failures[0])


def test_a_file_table_of_many_names_is_not_hashed(bundle):
    """20,000 extra names in the file table, each a hard link to one proof: no check reads them, so none is
    hashed (the verification costs what the claimed run costs, not what the table lists)."""
    m = json.loads((bundle / "manifest.json").read_text())
    src = bundle / m["chunks"][0]["proof"]
    for i in range(20_000):
        os.link(src, bundle / "proofs" / f"extra_{i:05d}.json")
        m["files"][f"proofs/extra_{i:05d}.json"] = m["files"][m["chunks"][0]["proof"]]
    (bundle / "manifest.json").write_text(json.dumps(m))
    report = verify_bundle(bundle, allow_insecure_dev_srs=True)
    assert report.ok and "(10 files)" in dict(report.passed)["files"], report.passed[:1]


def test_two_names_for_one_file_are_refused(bundle):
    """Chunk 1's proof a hard link to chunk 0's (the manifest sealing that content for both)."""
    m = json.loads((bundle / "manifest.json").read_text())
    a, b = (bundle / m["chunks"][c]["proof"] for c in (0, 1))
    b.unlink()
    os.link(a, b)
    rehash(bundle)
    report = verify_bundle(bundle, allow_insecure_dev_srs=True)
    assert {f.check for f in report.failures} == {"files"} and "one file (hard links)" in str(report.failures[0])


@pytest.mark.parametrize("hidden,why", [([10**9], "layer widths"), ([10**5, 10**5], "parameters"),
                                        ([1] * 65, "layer widths"), (["8"], "layer widths")])
def test_a_model_too_large_to_build_is_refused_before_it_is_built(bundle, hidden, why):
    """An mlp whose hidden layers would not fit in memory claimed: refused from the claims' arithmetic, before
    any model is built (it was allocated first)."""
    edit_manifest(bundle, lambda m: m["run"]["model"].update(
        name="mlp", kwargs={**m["run"]["model"]["kwargs"], "hidden": hidden}))
    report = verify_bundle(bundle, allow_insecure_dev_srs=True)
    assert {f.check for f in report.failures} == {"run"} and why in str(report.failures[0]), report.failures


def test_a_file_that_changes_after_it_was_hashed_changes_nothing(bundle, monkeypatch):
    """A prover's file system serving other bytes on a second read: once the proofs are hashed, every
    file of the bundle is replaced by garbage. The verification reads only its private copy of what it
    hashed (before, ezkl re-read the bundle's path: the garbage)."""
    from zkpot.circuits import pipeline

    real, seen = pipeline.verify, []

    def verify(proof, *rest):
        if not seen:
            for f in bundle.rglob("*"):
                if f.is_file():
                    f.write_bytes(b"swapped after hashing")
        seen.append(proof)
        return real(proof, *rest)

    monkeypatch.setattr(pipeline, "verify", verify)
    report = verify_bundle(bundle, allow_insecure_dev_srs=True)
    assert report.ok and len(seen) == 4 and not any(str(p).startswith(str(bundle)) for p in seen), report.failures
