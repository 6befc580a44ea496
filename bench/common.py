"""Shared by the benches (run.py, tune.py, fold.py): subprocess measurements, the machine, result files."""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


class WorkerError(RuntimeError):
    pass


def bench_env(work: Path | None) -> dict:
    """The workers' environment. With `work`, keys are cached in the bench's work dir (deleted with
    it) and dev SRS files shared with zkpot's cache; without, zkpot's own cache is used (the fold
    bench: aggregation keys are one-off costs of a circuit, as in real use)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if work is None:
        return env
    cache = work / "cache"
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)   # (owner-only whatever the umask: spec/cache.py)
    shared = Path(os.environ.get("ZKPOT_CACHE", Path.home() / ".cache" / "zkpot")) / "srs-dev"
    shared.mkdir(parents=True, exist_ok=True)
    if not (cache / "srs-dev").exists():
        (cache / "srs-dev").symlink_to(shared)
    env["ZKPOT_CACHE"] = str(cache)
    return env


def worker(phase: str, spec: dict, env: dict, timeout: float = 3600) -> dict:
    """Run one measurement in a fresh process; its own getrusage gives the peak RSS."""
    p = subprocess.run([sys.executable, "-m", "bench.worker", phase, json.dumps(spec)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=timeout)
    for line in p.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            return json.loads(line[len("BENCH_RESULT "):])
    tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
    raise WorkerError(f"{phase} failed (exit {p.returncode}): {' | '.join(tail)}")


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    from importlib.metadata import version

    return {"nproc": os.cpu_count(), "ram_gib": round(mem_gib, 1), "cpu": cpu, "platform": platform.platform(),
            "python": platform.python_version(), "ezkl": version("ezkl"), "torch": version("torch"),
            "loadavg_at_start": load}


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def save(name: str, data: dict, markdown: str) -> None:
    """Write bench/results/NAME.json and NAME.md, and print the table."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    j, m = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    j.write_text(json.dumps(data, indent=2) + "\n")
    m.write_text(markdown)
    print(markdown)
    print(f"written {j} and {m}")


def machine_md(m: dict, shared_note: str | None) -> str:
    lines = [f"- machine: {m['nproc']} cores, {m['ram_gib']} GiB RAM, {m['cpu']}",
             f"- {m['platform']}, Python {m['python']}, ezkl {m['ezkl']}, torch {m['torch']}",
             f"- load average at start: {m['loadavg_at_start']}"]
    if shared_note:
        lines.append(f"- **{shared_note}**")
    return "\n".join(lines) + "\n"


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z")
