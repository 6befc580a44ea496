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
