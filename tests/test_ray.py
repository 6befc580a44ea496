"""The Ray executor on a local Ray instance: a copy of run A (trained and set up locally) proved
through Ray gives the local bundle, commitment for commitment, verifies, and resumes."""
from __future__ import annotations

import json
import os
import shutil

import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")

from zkpot.prover.prove import prove_all  # noqa: E402
from zkpot.prover.run import RunDir  # noqa: E402
from zkpot.verifier.verify import verify_bundle  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    # Ray's own memory monitor kills tasks when the *machine* is above 95% used, which a shared
    # test machine often is; the kernel's OOM killer still guards the real limit.
    os.environ.setdefault("RAY_memory_monitor_refresh_ms", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=300 * 2**20,
             runtime_env={"env_vars": {"RUST_LOG": "error"}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_run(run_a, local_ray, tmp_path_factory) -> RunDir:
    """Run A's directory without its proofs and manifest, proved through the Ray executor."""
    rd = RunDir(tmp_path_factory.mktemp("ray") / "run")
    shutil.copytree(run_a.root, rd.root)
    shutil.rmtree(rd.public / "proofs")
    rd.manifest.unlink()
    seen = []
    prove_all(rd, on_chunk=lambda c, n, s: seen.append((c, n)), executor="ray")
    assert seen[-1] == (4, 4)
    return rd


def _instances(rd: RunDir, c: int) -> list:
    return json.loads(rd.proof(c).read_text())["instances"]


def test_ray_bundle_equals_local_bundle(run_a, ray_run):
    local, remote = json.loads(run_a.manifest.read_text()), json.loads(ray_run.manifest.read_text())
    proofs = {ch["proof"] for ch in local["chunks"]}
    strip = lambda m: {**m, "files": {f: h for f, h in m["files"].items() if f not in proofs}}
    assert strip(remote) == strip(local)  # commitments, chunks, circuit, SRS, every non-proof file
    for c in range(len(local["chunks"])):
        assert _instances(ray_run, c) == _instances(run_a, c)  # same public instances; proof bytes differ (blinding)
    report = verify_bundle(ray_run.public, allow_insecure_dev_srs=True)
    assert report.ok, [str(f) for f in report.failures]


def test_ray_prover_resumes(ray_run):
    kept = {c: ray_run.proof(c).read_bytes() for c in (0, 1, 3)}
    ray_run.proof(2).unlink()
    proved = []
    prove_all(ray_run, on_chunk=lambda c, n, s: proved.append(s), executor="ray")
    assert ray_run.proof(2).exists() and all(ray_run.proof(c).read_bytes() == b for c, b in kept.items())
    assert len([s for s in proved if s > 0]) == 1  # only the missing chunk was proved again
    assert verify_bundle(ray_run.public, allow_insecure_dev_srs=True).ok
