"""Solidity verifiers rendered by ezkl, compiled only if a solc is at hand.

Two cases, by what the bundle's proofs are:

* an unfolded bundle: the step circuit's verifier (create_evm_verifier). It checks proofs made
  with the EVM (Keccak) transcript, ezkl's "single" proofs; the bundle's step proofs use the
  Poseidon transcript ("for-aggr", so that they can be folded) and it does NOT accept them.
* a folded bundle: the run proof's verifier (create_evm_verifier_aggr; the top aggregate is
  made with the EVM transcript). It checks the run proof and folds the KZG accumulator the proof
  carries (instances 0..15, the inner proofs' deferred pairing) into its own final pairing, so a
  fold of an invalid chunk proof is rejected on chain (tests/test_fold.py). Beside it ZkpotRun.sol
  checks the proof's public hashes against the run's claims, as the off-chain verifier does, and
  pairs every accumulator a deeper tree passes through as plain instances (which the verifier
  never pairs), so a tree of any depth is checked whole on chain.

ezkl 22.3.0's create_evm_verifier* write the Solidity source first, then compile it with a solc
that they download (svm); offline the download fails after the source is written. They run in a
child process because ezkl's async runtime can abort the interpreter at exit after this call.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from zkpot.spec.artifacts import ArtifactError, atomic_path, read_json
from zkpot.spec.bundle import path_in
from zkpot.spec.felts import felt_to_int
from zkpot.spec.fold_plan import ACC_INSTANCES, check_recorded, run_instances
from zkpot.spec.layout import chunk_instances, srs_g2_of
from zkpot.spec.schedule import expected_chunks

CHILD = """
import asyncio, json, sys, ezkl
async def main():
    return await getattr(ezkl, sys.argv[1])(*json.loads(sys.argv[2]))
try:
    ok = asyncio.run(main())
    print("ZKPOT-EVM ok" if ok else "ZKPOT-EVM failed", flush=True)
except Exception as e:
    print("ZKPOT-EVM error " + (str(e).strip().splitlines() or [type(e).__name__])[0], flush=True)
"""

VERIFIES = ("proofs of this circuit made with the EVM transcript (ezkl 'single' proofs); the bundle's step "
            "proofs use the Poseidon transcript ('for-aggr', for folding) and are NOT accepted by this contract")
RUN_VERIFIES = ("the run proof (the fold's top aggregate, EVM transcript): the proof and the KZG accumulator "
                "it carries (instances 0..15, paired on chain); ZkpotRun also pairs every accumulator of the nodes "
                "below the top (passed through as plain instances) and checks the proof's public hashes against "
                "the run's base, chain, final and schedule (constructor arguments)")
INSTANCES = ("per node of the fold tree, top down: its 16 accumulator limbs, then each child's instances in order; "
             "per chunk proof: H(state_in), H(batch_1..S), H(salt_out), H(state_out)")
WRAPPER = Path(__file__).with_name("ZkpotRun.sol")
CODE_LIMIT = 24_576  # bytes of deployed code per contract on Ethereum mainnet (EIP-170)


def find_solc() -> tuple[str, list[str]] | None:
    """(name, command prefix) of a Solidity compiler on PATH: native solc, else solcjs (npm 'solc')."""
    if shutil.which("solc"):
        return "solc", [shutil.which("solc")]
    if shutil.which("solcjs"):
        return "solcjs", [shutil.which("solcjs")]
    return None


def compile_contract(sol: Path, contract: str, out: Path) -> tuple[str, int]:
    """Compile `contract` of `sol` into out/<stem>.abi.json and out/<stem>.bin (creation code);
    returns the compiler and version, and the size of the code it deploys (EIP-170 caps it at 24,576 bytes).
    Standard JSON, which solc and solcjs read alike and which alone gives solcjs's deployed code."""
    name, cmd = find_solc()
    version = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=60).stdout.strip().splitlines()
    request = {"language": "Solidity", "sources": {sol.name: {"content": sol.read_text()}},
               "settings": {"optimizer": {"enabled": True, "runs": 200}, "outputSelection": {
                   sol.name: {contract: ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}}}}
    r = subprocess.run([*cmd, "--standard-json"], input=json.dumps(request), capture_output=True, text=True, timeout=900)
    try:
        answer = json.loads(r.stdout[r.stdout.index("{"):])
    except ValueError:
        answer = {"errors": [{"severity": "error", "message": (r.stderr.strip().splitlines() or ["no output"])[-1]}]}
    errors = [e.get("message", "?") for e in answer.get("errors", []) if e.get("severity") == "error"]
    made = answer.get("contracts", {}).get(sol.name, {}).get(contract)
    if errors or not made:
        raise ArtifactError(f"{name} could not compile {sol.name}: {(errors or [contract + ' not in the output'])[0].splitlines()[0]}")
    with atomic_path(out / f"{sol.stem}.abi.json") as t:
        t.write_text(json.dumps(made["abi"], indent=1) + "\n")
    with atomic_path(out / f"{sol.stem}.bin") as t:
        t.write_text(made["evm"]["bytecode"]["object"] + "\n")
    return f"{name} {version[-1] if version else '?'}", len(made["evm"]["deployedBytecode"]["object"]) // 2


def _compile(sol: Path, out: Path) -> tuple[str, Path, Path]:
    """The step verifier, compiled file to file (solcjs's standard JSON gave no output for it, measured);
    returns (compiler and version, abi file, bytecode file)."""
    name, cmd = find_solc()
    version = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=60).stdout.strip().splitlines()
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run([*cmd, "--optimize", "--abi", "--bin", "-o", tmp, sol.name], cwd=sol.parent,
                           capture_output=True, text=True, timeout=600)
        abi, binary = sorted(Path(tmp).glob("*.abi")), sorted(Path(tmp).glob("*.bin"))
        if r.returncode != 0 or len(abi) != 1 or len(binary) != 1:
            raise ArtifactError(f"{name} could not compile {sol.name}: {(r.stderr.strip().splitlines() or ['no output'])[-1]}")
        with atomic_path(out / "Verifier.abi.json") as t:
            t.write_text(json.dumps(json.loads(abi[0].read_text()), indent=1) + "\n")
        with atomic_path(out / "Verifier.bin") as t:
            t.write_text(binary[0].read_text().strip() + "\n")
    return f"{name} {version[-1] if version else '?'}", out / "Verifier.abi.json", out / "Verifier.bin"



def _render(fn: str, args: list, sol: Path) -> str:
    """Run ezkl's `fn(*args)` in a child; the Solidity source must exist afterwards. Returns the child's status."""
    r = subprocess.run([sys.executable, "-c", CHILD, fn, json.dumps(args, default=str)], capture_output=True, text=True,
                       timeout=900)
    status = next((ln for ln in r.stdout.splitlines() if ln.startswith("ZKPOT-EVM")), "ZKPOT-EVM error child crashed")
    if not sol.is_file() or sol.stat().st_size == 0:
        raise ArtifactError(f"ezkl could not render the Solidity verifier: {status.removeprefix('ZKPOT-EVM ')}")
    return status


def render(vk: Path, settings: Path, srs: Path, out: Path, say=print) -> dict:
    """Write out/Verifier.sol (and ABI and bytecode when a solc is available); returns the package's "evm" entry."""
    out.mkdir(parents=True, exist_ok=True)
    sol, abi = out / "Verifier.sol", out / "Verifier.abi.json"
    status = _render("create_evm_verifier", [vk, settings, sol, abi, srs], sol)
    entry = {"solidity": "evm/Verifier.sol", "verifies": VERIFIES, "compiled_with": None}
    if status == "ZKPOT-EVM ok" and abi.is_file():
        entry.update(abi="evm/Verifier.abi.json", compiled_with="ezkl's solc (svm)")
    elif find_solc():
        abi.unlink(missing_ok=True)
        entry["compiled_with"], _, _ = _compile(sol, out)
        entry.update(abi="evm/Verifier.abi.json", bytecode="evm/Verifier.bin")
    else:
        abi.unlink(missing_ok=True)
        say("no solc available (ezkl cannot download one offline, none on PATH): evm/Verifier.sol is rendered "
            "but not compiled; compile it with solc 0.8.x (e.g. `npm install solc` gives solcjs)")
    return entry


def check_tree(m: dict) -> None:
    """Refuse, before any work, a tree that is not the one the manifest's fan-in gives, and a run ZkpotRun.sol
    cannot check (a DP-SGD run: its noise commitments and beacon challenges are checked off chain only)."""
    if "dp" in m["run"]:
        raise ArtifactError("publish --evm: a DP-SGD run's challenges come from a drand round, which ZkpotRun.sol does "
                            "not check: verify it with `zkpot verify`")
    try:
        check_recorded(m["fold"], len(m["chunks"]))
    except (KeyError, TypeError, ValueError) as e:
        raise ArtifactError(f"publish --evm: the manifest's fold tree: {e}") from None


def run_claims(m: dict, batch_commitments: list[str], srs: Path) -> dict:
    """ZkpotRun's constructor arguments (uint256 as 0x hex): the claims the run proof's hashes must match, the
    tree's fan-in, and the G2 points of the bundle's SRS that every passed-through accumulator is paired with."""
    word = lambda felt: hex(felt_to_int(felt))
    steps = [b for chunk in expected_chunks(m, len(batch_commitments)) for _, b in chunk]
    eip197 = lambda p: [hex(p[1]), hex(p[0]), hex(p[3]), hex(p[2])]  # (x.c1, x.c0, y.c1, y.c0)
    g2, s_g2 = srs_g2_of(srs)
    return {"base": word(m["base"]["commitment"]), "final": word(m["final"]["commitment"]),
            "steps_per_proof": int(m["run"]["steps_per_proof"]), "fan_in": int(m["fold"]["fan_in"]),
            "batches": [word(batch_commitments[b]) for b in steps], "g2": eip197(g2), "s_g2": eip197(s_g2)}


def _instances_settings(m: dict, public: Path, out: Path) -> Path:
    """A settings file that tells ezkl's renderer how many instances the run proof has besides its own
    accumulator (it counts them only from settings, which know no inner accumulators): the chunk circuit's
    settings with that count as its one instance vector."""
    settings = read_json(path_in(public, m["circuit"]["settings"]))
    S = int(m["run"]["steps_per_proof"])
    count = run_instances(len(m["chunks"]), int(m["fold"]["fan_in"]), chunk_instances(S)) - ACC_INSTANCES
    settings.update(model_instance_shapes=[], module_sizes={**settings["module_sizes"], "polycommit": [],
                                                             "poseidon": [0, [count]]})
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(settings))
    return out


def render_run(public: Path, m: dict, out: Path, say=print) -> dict:
    """Write the run proof's verifier and ZkpotRun (sources, and ABI and bytecode when a solc is available)
    into `out`; returns the package's "evm" entry. `public` is a checked, folded bundle."""
    check_tree(m)
    out.mkdir(parents=True, exist_ok=True)
    top = m["fold"]["levels"][-1][0]
    sol, abi = out / "Verifier.sol", out / "Verifier.abi.json"
    with tempfile.TemporaryDirectory(prefix="zkpot-evm-") as tmp:
        settings = _instances_settings(m, public, Path(tmp) / "instances.json")
        _render("create_evm_verifier_aggr", [[settings], path_in(public, top["vk"]), sol, abi, int(top["logrows"]),
                                             path_in(public, m["srs"]["file"]), False], sol)
    abi.unlink(missing_ok=True)  # (written only by ezkl's own compile, which runs solc 0.8.20)
    shutil.copyfile(WRAPPER, out / WRAPPER.name)
    dataset = read_json(path_in(public, m["dataset"]["file"]))
    entry = {"solidity": "evm/Verifier.sol", "verifies": RUN_VERIFIES, "run_proof": top["proof"], "instances": INSTANCES,
             "wrapper": {"solidity": f"evm/{WRAPPER.name}", "contract": WRAPPER.stem,
                         "constructor": {"verifier": "the Verifier's address",
                                         **run_claims(m, dataset["batch_commitments"],
                                                    path_in(public, m["srs"]["file"]))}},
             "compiled_with": None}
    if find_solc():
        entry["compiled_with"], size = compile_contract(sol, "Halo2Verifier", out)
        _, wrapper_size = compile_contract(out / WRAPPER.name, WRAPPER.stem, out)
        entry.update(abi="evm/Verifier.abi.json", bytecode="evm/Verifier.bin", deployed_bytes=size,
                     deployable=size <= CODE_LIMIT)
        entry["wrapper"].update(abi=f"evm/{WRAPPER.stem}.abi.json", bytecode=f"evm/{WRAPPER.stem}.bin",
                                deployed_bytes=wrapper_size)
        if size > CODE_LIMIT:
            say(f"evm/Verifier.bin deploys {size:,} bytes of code, over the {CODE_LIMIT:,}-byte limit of Ethereum "
                "mainnet (EIP-170): it deploys only on a chain without that limit")
    else:
        say("no solc available (ezkl cannot download one offline, none on PATH): evm/*.sol are rendered but not "
            "compiled; compile them with solc 0.8.x (e.g. `npm install solc` gives solcjs)")
    return entry
