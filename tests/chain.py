"""An in-process EVM (pyrevm) for the Solidity verifiers: deploy, call, and measure gas and code size."""
from __future__ import annotations

import re
from pathlib import Path

import pyrevm

from zkpot.prover.evm import CODE_LIMIT, find_solc

ME = "0x" + "11" * 20


def require_solc() -> None:
    """CI installs solcjs (.ci/run), so a missing compiler is a failure here, never a skip."""
    assert find_solc(), "no solc/solcjs on PATH: `bash .ci/run` installs solcjs (README set-up), or `npm install -g solc@0.8.20`"


class Chain:
    """One EVM with a funded account; contract size limit lifted so that an oversized verifier is measured, not refused."""

    def __init__(self):
        self.evm = pyrevm.EVM(env=pyrevm.Env(cfg=pyrevm.CfgEnv(limit_contract_code_size=1 << 20)))
        self.evm.set_balance(ME, 10**22)

    def deploy(self, bin_file: Path, args: bytes = b"") -> tuple[str, int]:
        """(address, deployed code size in bytes) of the contract compiled into bin_file, with ABI-encoded args."""
        initcode = bytes.fromhex(Path(bin_file).read_text().strip()) + args
        addr = self.evm.deploy(ME, initcode, gas=30_000_000)
        # (pyrevm pads the code it analysed with zeros; solc's code ends in its metadata's length, 0x0033)
        return addr, len(bytes(self.evm.get_code(addr)).rstrip(b"\0"))

    def call(self, addr: str, calldata: bytes) -> tuple[bool, int, str]:
        """(returned true, gas used, what it said): a revert is (False, gas, the revert's text)."""
        try:
            out = bytes(self.evm.message_call(ME, addr, calldata, gas=30_000_000))
        except RuntimeError as e:
            return False, self.evm.result.gas_used if self.evm.result else 0, reason(str(e))
        return out == (1).to_bytes(32, "big"), self.evm.result.gas_used, out.hex()


def reason(revert: str) -> str:
    """The text of a Solidity require's Error(string) in pyrevm's revert message; else the message."""
    out = re.search(r"output: 0x([0-9a-f]*)", revert)
    data = bytes.fromhex(out.group(1)) if out else b""
    if data[:4] != bytes.fromhex("08c379a0"):
        return revert
    size = int.from_bytes(data[36:68], "big")
    return data[68 : 68 + size].decode(errors="replace")


def abi_args(*words: int, array: list[int], after: list[int] = ()) -> bytes:
    """ABI encoding of (uint256/address words..., uint256[] array, static words `after` (uint256[k] inline))."""
    head = [*words, 32 * (len(words) + 1 + len(after)), *after]
    return b"".join(w.to_bytes(32, "big") for w in [*head, len(array), *array])


def selector(signature: str) -> bytes:
    """A function's 4-byte selector: keccak-256 of its signature."""
    from Crypto.Hash import keccak

    return keccak.new(data=signature.encode(), digest_bits=256).digest()[:4]


def flip(calldata: bytes, which: str, index: int) -> bytes:
    """ezkl's verifyProof(bytes proof, uint256[] instances) calldata with one byte of the proof, or the low
    byte of one instance, changed."""
    cd = bytearray(calldata)
    proof_at, instances_at = 4 + int.from_bytes(cd[4:36], "big"), 4 + int.from_bytes(cd[36:68], "big")
    cd[proof_at + 32 + index if which == "proof" else instances_at + 32 * (index + 2) - 1] ^= 1
    return bytes(cd)
