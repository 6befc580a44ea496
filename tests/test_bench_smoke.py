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


def test_dp_bench_split_and_membership_audit():
    """bench/dp.py's held-out split (equal halves, whole batches) and its loss-threshold attack, on known losses."""
    from bench.dp import mia, split

    (Xt, yt), (Xh, yh) = split(10, 16, None, 0)
    assert Xt.shape == Xh.shape == (272, 10) and len(yt) == len(yh) == 272
    m = mia([0.1, 0.2, 0.3, 0.4], [0.3, 0.5, 0.6, 0.7])   # threshold 0.25: TPR 2/4, FPR 0
    assert (m["advantage"], m["best_advantage"], m["auc"]) == (0.5, 0.75, 14.5 / 16)
    assert mia([0.1, 0.2], [0.1, 0.2])["advantage"] == 0.0 and mia([0.1, 0.2], [0.1, 0.2])["auc"] == 0.5


def test_dp_bench_quick_runs_end_to_end(tmp_path):
    """`python bench/dp.py --quick --prove none` (~30 s): a non-private and a SIGMA 1 run of a tiny logreg, each by
    zkpot in fixed point and in float (torch, opacus), the verifier's epsilon, the audit, the results files."""
    import pytest

    pytest.importorskip("opacus")
    subprocess.run([sys.executable, "bench/dp.py", "--quick", "--prove", "none", "--results", str(tmp_path)], cwd=ROOT,
                   capture_output=True, text=True, check=True, timeout=600)
    data = json.loads((tmp_path / "dp-quick.json").read_text())
    plain, dp = data["levels"]
    assert (plain["sigma"], dp["sigma"]) == (None, 1.0)
    for g in (plain, dp):
        (run,) = g["runs"]
        assert "error" not in run, run
        for side in ("fixed", "float"):
            assert 0.5 <= run[side]["held_out_accuracy"] <= 1 and -1 <= run[side]["mia"]["advantage"] <= 1
    eps = dp["epsilon"]
    assert 0 < eps["verifier"]["epsilon"] < 100 and eps["verifier"]["delta"] == 1e-5 and eps["opacus_rdp_poisson"] > 0
    assert "| logreg 8-1 | SIGMA 1 |" in (tmp_path / "dp-quick.md").read_text()
