"""The benchmark's plumbing (no timings asserted): knob overrides reach ezkl's run args, a worker
phase runs in its own process and reports its peak RSS."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_run_args_overrides_keep_zkpot_visibility():
    code = (
        "from bench.worker import _patch_run_args\n"
        "from zkpot.circuits import pipeline\n"
        "_patch_run_args({'run_args': {'base': 'ezkl-default', 'decomp_base': 32, 'decomp_legs': 5}})\n"
        "ra = pipeline.run_args(8)\n"
        "print(ra.num_inner_cols, ra.decomp_base, ra.decomp_legs, ra.input_scale, ra.param_scale,"
        " str(ra.input_visibility), str(ra.output_visibility), str(ra.param_visibility))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert out[:5] == ["2", "32", "5", "8", "8"]  # ezkl's default columns, our decomposition and scale
    assert [v.lower().split("/")[0] for v in out[5:]] == ["hashed", "hashed", "fixed"]
    assert 32 ** 5 >= 2 ** 25  # 24-bit salt words fit the input range check


def test_worker_reports_peak_rss(tmp_path):
    from bench.common import bench_env, worker

    # verify of a missing proof: cheap, exercises the subprocess protocol end to end
    (tmp_path / "run" / "public").mkdir(parents=True)
    out = worker("verify", {"run": str(tmp_path / "run")}, bench_env(tmp_path))
    assert out["ok"] is False and out["peak_rss_mb"] > 0
    json.dumps(out)
