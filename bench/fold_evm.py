"""A folded run's proof on chain, any depth: publish --evm, deploy Verifier and ZkpotRun in pyrevm (tests/chain.py,
the test extras), verify the run proof on both; then one limb of the first accumulator below the top changed.

    python bench/fold_evm.py RUN PKG     # RUN: a folded run (e.g. bench/fold.py --keep's), PKG: a new directory

Prints code sizes and gas. (The tests do the same on the CI's one-level fold: tests/test_fold.py -k evm.)
"""
import json
import sys
import time
from pathlib import Path

import ezkl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from zkpot.prover.publish import publish
from zkpot.spec.fold_plan import plan
from zkpot.verifier.prove import unfold
from tests.chain import Chain, abi_args, flip

root, pkg = Path(sys.argv[1]), Path(sys.argv[2])
t0 = time.perf_counter()
meta = publish(root, pkg, evm=True, say=lambda *a: print(*a))
print(f"publish --evm: {time.perf_counter() - t0:.0f} s")
evm = meta["evm"]
c = evm["wrapper"]["constructor"]
chain = Chain()
verifier, vsize = chain.deploy(pkg / evm["bytecode"])
args = abi_args(int(verifier, 16), int(c["base"], 16), int(c["final"], 16), c["steps_per_proof"], c["fan_in"],
                array=[int(b, 16) for b in c["batches"]], after=[int(w, 16) for w in c["g2"] + c["s_g2"]])
run, rsize = chain.deploy(pkg / evm["wrapper"]["bytecode"], args)
m = json.loads((root / "public" / "manifest.json").read_text())
top = root / "public" / m["fold"]["levels"][-1][0]["proof"]
cd = bytes(ezkl.encode_evm_calldata(str(top), str(pkg / "calldata.bin")))
ok_v, gas_v, _ = chain.call(verifier, cd)
ok_r, gas_r, said = chain.call(run, cd)
print(f"deployed: Verifier {vsize:,} bytes, ZkpotRun {rsize:,} bytes; run proof: Verifier {ok_v} ({gas_v:,} gas), ZkpotRun {ok_r} ({gas_r:,} gas) {said if not ok_r else ''}")
instances = json.loads(top.read_text())["instances"][0]
S = m["run"]["steps_per_proof"]
_, accs = unfold(instances, [[{"children": g} for g in lv] for lv in plan(len(m["chunks"]), m["fold"]["fan_in"])], S)
inner = instances.index(accs[1][0])
print(f"{len(instances)} instances, {len(accs)} accumulators; first inner accumulator at {inner}")
bad = flip(cd, "instance", inner + 1)
print("inner accumulator limb changed: Verifier", chain.call(verifier, bad)[0], "| ZkpotRun", chain.call(run, bad)[::2])
