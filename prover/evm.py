"""The step circuit's Solidity verifier, rendered by ezkl, compiled only if a solc is at hand.

What it verifies, honestly: ezkl's EVM verifier checks proofs made with the EVM (Keccak)
transcript, ezkl's "single" proofs. The bundle's step proofs use the Poseidon transcript
("for-aggr") so that they can be folded, and this contract does not accept them. It applies to a
"single" proof of the same circuit made with the same proving key (`ezkl.prove(..., "single")`),
or, once folding lands, the aggregate circuit gets its own verifier (create_evm_verifier_aggr).

ezkl 22.3.0's create_evm_verifier writes the Solidity source first, then compiles it with a solc
that it downloads (svm); offline the download fails after the source is written. It runs in a
child process because ezkl's async runtime can abort the interpreter at exit after this call.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from circuits.artifacts import ArtifactError, atomic_path

CHILD = """
import asyncio, sys, ezkl
async def main():
    return await ezkl.create_evm_verifier(*sys.argv[1:6])
try:
    ok = asyncio.run(main())
    print("ZKPOT-EVM ok" if ok else "ZKPOT-EVM failed", flush=True)
except Exception as e:
    print("ZKPOT-EVM error " + (str(e).strip().splitlines() or [type(e).__name__])[0], flush=True)
"""

VERIFIES = ("proofs of this circuit made with the EVM transcript (ezkl 'single' proofs); the bundle's step "
            "proofs use the Poseidon transcript ('for-aggr', for folding) and are NOT accepted by this contract")


def find_solc() -> tuple[str, list[str]] | None:
    """(name, command prefix) of a Solidity compiler on PATH: native solc, else solcjs (npm 'solc')."""
    if shutil.which("solc"):
        return "solc", [shutil.which("solc")]
    if shutil.which("solcjs"):
        return "solcjs", [shutil.which("solcjs")]
    return None


def _compile(sol: Path, out: Path) -> tuple[str, Path, Path]:
    """Compile with the solc found; returns (compiler and version, abi file, bytecode file)."""
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


def render(vk: Path, settings: Path, srs: Path, out: Path, say=print) -> dict:
    """Write out/Verifier.sol (and ABI and bytecode when a solc is available); returns the package's "evm" entry."""
    out.mkdir(parents=True, exist_ok=True)
    sol, abi = out / "Verifier.sol", out / "Verifier.abi.json"
    r = subprocess.run([sys.executable, "-c", CHILD, str(vk), str(settings), str(sol), str(abi), str(srs)],
                       capture_output=True, text=True, timeout=900)
    status = next((ln for ln in r.stdout.splitlines() if ln.startswith("ZKPOT-EVM")), "ZKPOT-EVM error child crashed")
    if not sol.is_file() or sol.stat().st_size == 0:
        raise ArtifactError(f"ezkl could not render the Solidity verifier: {status.removeprefix('ZKPOT-EVM ')}")
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
