"""Where a step circuit's rows go: per op, and per run-args variant, side by side in one run.

    python bench/rows.py [--only NAME,NAME] [--out rows]

No proving: each circuit is laid out by ezkl's gen_settings (its debug log gives the rows after
every node) and calibrated like zkpot's own derivation (public samples, so logrows is the real one).
A circuit's height is the larger of its main region (the ops, `total_assignments`) and the Poseidon
module that hashes its inputs and outputs, which sits in columns of its own: rows saved in the
smaller of the two buy nothing.
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, machine_md, now, save  # noqa: E402

# name: (RunConfig overrides, features, run_args overrides, what it shows)
CIRCUITS = {
    "logreg": ({}, 30, "the logreg reference: 30 features, batch 16, scale 8, 1 SGD step"),
    "logreg-S2": ({"steps_per_proof": 2}, 30, "the reference, 2 SGD steps per proof"),
    "mlp": ({"model": "mlp", "hidden": [256, 8], "batch_size": 8}, 30, "MLP 30-256-8-1 (10,001 parameters), batch 8"),
    "ci": ({"batch_size": 4}, 8, "the tests' run: logreg, 8 features, batch 4, 1 SGD step"),
    "ci-S4": ({"batch_size": 4, "steps_per_proof": 4}, 8, "the tests' folded run: 4 SGD steps per proof"),
}
VARIANTS = {
    "shipped": ({}, "zkpot's derivation: hashed inputs and outputs, 1 inner column, the range-check decomposition "
                    "chosen by logrows (circuits/derive.py)"),
    "decomp16384x2": ({"decomp_base": 16384, "decomp_legs": 2}, "range checks in 2 legs of 16384 (zkpot before "
                                                                 "the decomposition was chosen by logrows)"),
    "cols2": ({"num_inner_cols": 2}, "2 inner columns"),
    "cols4": ({"num_inner_cols": 4}, "4 inner columns"),
    "decomp8192x2": ({"decomp_base": 8192, "decomp_legs": 2}, "range checks in 2 legs of 8192 (2^26: the 24-bit salt words fit)"),
    "decomp4096x3": ({"decomp_base": 4096, "decomp_legs": 3}, "range checks in 3 legs of 4096 (2^36)"),
    "polycommit": ({"input_visibility": "polycommit", "output_visibility": "polycommit"},
                   "KZG commitments instead of Poseidon hashes (rejected: see docs/benchmarks.md)"),
    "polycommit-cols2": ({"input_visibility": "polycommit", "output_visibility": "polycommit", "num_inner_cols": 2},
                         "polycommit with 2 inner columns"),
}
DEFAULT = ["logreg/shipped", "logreg/cols2", "logreg/polycommit", "logreg/polycommit-cols2", "logreg-S2/shipped",
           "ci/decomp16384x2", "ci/shipped", "ci-S4/decomp16384x2", "ci-S4/shipped", "mlp/shipped", "mlp/cols2"]


class Rows(logging.Handler):
    """ezkl's layout log: 'laying out N: OP', then the region's rows after node N-1."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines, self.on = [], False

    def emit(self, record):
        msg = record.getMessage()
        if self.on and ("laying out" in msg or msg.startswith("(rows=")):
            self.lines.append(msg)

    def per_op(self) -> dict[str, int]:
        ops, node, prev = {}, None, 0
        for msg in self.lines:
            m = re.match(r"laying out \d+: (.*)", msg)
            if m:
                current = m.group(1)
                continue
            rows = int(re.match(r"\(rows=(\d+)", msg).group(1))
            if node is not None and rows > prev:
                ops[node] = ops.get(node, 0) + rows - prev
            prev, node = rows, kind(current)
        return ops


def kind(op: str) -> str:
    """An op's kind: 'REBASED (div=256.0, ...) (EINSUM mk,k->mn)' -> 'rescale(einsum)'."""
    if op.startswith("REBASED"):
        inner = re.search(r"\) \((\w+)", op)
        return f"rescale({inner.group(1).lower() if inner else '?'})"
    return "input range check" if op == "Input" else op.split(" (")[0].split("(")[0].lower()


def profile(circuit: str, variant: str) -> dict:
    from zkpot.circuits import derive, pipeline
    from zkpot.prover.config import RunConfig
    from zkpot.prover.preregister import claims_of

    cfg_over, features, _ = CIRCUITS[circuit]
    ra_over, _ = VARIANTS[variant]
    claims, _ = claims_of(RunConfig(**cfg_over), features, 1)
    onnx = derive.derived_onnx(claims)
    shipped = pipeline.run_args

    def run_args(scale: int, decomposition=None):
        ra = shipped(scale, *([decomposition] if decomposition else []))
        for k, v in ra_over.items():
            setattr(ra, k, v)
        return ra

    handler = Rows()
    logging.getLogger("ezkl").addHandler(handler)
    pipeline.run_args = run_args
    try:
        with tempfile.TemporaryDirectory() as tmp:
            derive.settings_for(claims, onnx, Path(tmp) / "settings.json")
            s = json.loads((Path(tmp) / "settings.json").read_text())
            handler.on = True  # the layout again, with the decomposition the derivation chose, for its debug log
            pipeline.gen_settings(onnx, Path(tmp) / "layout.json", claims["scale"],
                                  (s["run_args"]["decomp_base"], s["run_args"]["decomp_legs"]))
    finally:
        pipeline.run_args = shipped
        logging.getLogger("ezkl").removeHandler(handler)
    ops = handler.per_op()
    main = int(s["total_assignments"])
    ops["output range check"] = max(0, main - sum(ops.values()))  # after the last node: the outputs' checks
    poseidon = (s.get("module_sizes") or {}).get("poseidon", [0])[0]
    return {"circuit": circuit, "variant": variant, "rows": s["num_rows"], "main": main, "poseidon": poseidon,
            "logrows": s["run_args"]["logrows"], "lookup_range": s["run_args"]["lookup_range"],
            "decomposition": f"{s['run_args']['decomp_base']}x{s['run_args']['decomp_legs']}", "ops": ops}


def markdown(results: list[dict], m: dict, started: str) -> str:
    out = [f"# Rows per step circuit, per run-args variant (`python bench/rows.py`)\n", f"Run {started}.\n",
           machine_md(m, None), "",
           "| circuit | variant | rows | main region | Poseidon | logrows | decomposition | rows vs shipped |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    shipped = {r["circuit"]: r for r in results if r["variant"] == "shipped"}
    for r in results:
        ratio = f"{r['rows'] / shipped[r['circuit']]['rows']:.2f}x" if r["circuit"] in shipped else ""
        out.append(f"| {r['circuit']} | {r['variant']} | {r['rows']:,} | {r['main']:,} | {r['poseidon']:,} | "
                   f"{r['logrows']} | {r['decomposition']} | {ratio} |")
    out += ["", *(f"- {c}: {CIRCUITS[c][2]}" for c in dict.fromkeys(r["circuit"] for r in results)),
            *(f"- {v}: {VARIANTS[v][1]}" for v in dict.fromkeys(r["variant"] for r in results)), ""]
    for r in results:
        if r["variant"] != "shipped":
            continue
        out += [f"## Main region of `{r['circuit']}` (shipped) by op kind\n", "| op | rows | share |", "| --- | --- | --- |"]
        for op, n in sorted(r["ops"].items(), key=lambda kv: -kv[1]):
            if n:
                out.append(f"| {op} | {n:,} | {n / r['main']:.1%} |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help=f"circuit/variant pairs (default: {','.join(DEFAULT)}; "
                                               f"circuits {','.join(CIRCUITS)}; variants {','.join(VARIANTS)})")
    ap.add_argument("--out", default="rows", help="results name under bench/results/")
    args = ap.parse_args()
    pairs = [p.split("/") for p in (args.only.split(",") if args.only else DEFAULT)]
    for c, v in pairs:
        if c not in CIRCUITS or v not in VARIANTS:
            sys.exit(f"unknown circuit/variant {c}/{v}")
    from rich.progress import Progress

    from zkpot.circuits import pipeline  # noqa: F401  (it sets ezkl's logger to ERROR on import)

    # ezkl's Rust logger caches each level the first time it logs: DEBUG from the start, or never
    logging.getLogger("ezkl").setLevel(logging.DEBUG)

    started, results = now(), []
    with Progress() as p:
        task = p.add_task("laying out and calibrating", total=len(pairs))
        for c, v in pairs:
            p.update(task, description=f"{c}/{v}")
            results.append(profile(c, v))
            p.advance(task)
    m = machine()
    save(args.out, {"started": started, "machine": m, "results": results}, markdown(results, m, started))
    print(markdown(results, m, started))


if __name__ == "__main__":
    main()
