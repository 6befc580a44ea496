"""ZkpotRun.sol on its own, in pyrevm, in seconds: the fold tree it walks is the verifier's for every tree
shape, and its on-chain decider accepts exactly the accumulators the off-chain one does (accumulators built
here with a known s, as tests/test_decider.py). The run proof itself on chain, with ezkl's verifier:
tests/test_fold.py (one level, in CI) and bench/fold.py (two levels)."""
from __future__ import annotations

import pytest
from py_ecc import optimized_bn128 as bn

from tests.chain import Chain, abi_args, require_solc, selector
from tests.test_decider import G2, S_G2, acc
from zkpot.prover.evm import WRAPPER, compile_contract
from zkpot.spec.fold_plan import ACC_INSTANCES, plan, run_instances
from zkpot.spec.layout import chunk_instances
from zkpot.verifier.prove import unfold

S = 2  # SGD steps per chunk proof
YES = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;
/// Stands in for the run proof's verifier, to test ZkpotRun's own checks (the real one: tests/test_fold.py).
contract Yes { function verifyProof(bytes calldata, uint256[] calldata) external pure returns (bool) { return true; } }
"""


def eip197(p) -> list[int]:
    x, y = bn.normalize(p)
    return [x.coeffs[1], x.coeffs[0], y.coeffs[1], y.coeffs[0]]


@pytest.fixture(scope="module")
def evm(tmp_path_factory):
    require_solc()
    out = tmp_path_factory.mktemp("zkpotrun")
    compile_contract(WRAPPER, WRAPPER.stem, out)
    (out / "Yes.sol").write_text(YES)
    compile_contract(out / "Yes.sol", "Yes", out)
    chain = Chain()
    yes, _ = chain.deploy(out / "Yes.bin")

    def deploy(chunks: int, fan_in: int) -> str:
        batches = [1000 + i for i in range(chunks * S)]
        args = abi_args(int(yes, 16), 1, 2, S, fan_in, array=batches, after=eip197(G2) + eip197(S_G2))
        return chain.deploy(out / f"{WRAPPER.stem}.bin", args)[0]
    return chain, deploy


def call(chain, addr, signature: str, *words: int) -> int:
    _, _, out = chain.call(addr, selector(signature) + b"".join(w.to_bytes(32, "big") for w in words))
    return int(out, 16) if len(out) == 64 else -1  # (-1: it reverted)


def run_instances_of(chunks: int, fan_in: int, bad_acc: int | None = None) -> list[str]:
    """A run proof's instances for this tree with every chunk's hashes as the run claims them (base 1,
    batches 1000.., final 2, chained) and valid accumulators (accumulator `bad_acc`, in walk order, not)."""
    levels, out, accs = plan(chunks, fan_in), [], [0]
    felt = lambda v: v.to_bytes(32, "little").hex()

    def walk(depth: int, index: int) -> None:
        if depth == 0:
            state_in = 1 if index == 0 else 500 + index
            state_out = 2 if index == chunks - 1 else 501 + index
            out.extend(felt(v) for v in [state_in, *(1000 + index * S + i for i in range(S)), 7, state_out])
            return
        k = accs[0] = accs[0] + 1
        out.extend(acc(k + 1, error=bn.G1 if k - 1 == bad_acc else None))
        for child in levels[depth - 1][index]:
            walk(depth - 1, child)

    walk(len(levels), 0)
    return out


def verify_call(instances: list[str]) -> bytes:
    """verifyProof(bytes proof, uint256[] instances) with a 1-byte proof."""
    n = len(instances)
    words = [64, 96 + 32, 1, int.from_bytes(b"\x01" + b"\0" * 31, "big"), n,
             *(int.from_bytes(bytes.fromhex(h), "little") for h in instances)]
    return selector("verifyProof(bytes,uint256[])") + b"".join(w.to_bytes(32, "big") for w in words)


@pytest.mark.parametrize("chunks,fan_in", [(1, 1), (2, 2), (3, 2), (4, 2), (5, 2), (7, 3), (9, 2)])
def test_the_contract_walks_the_verifiers_tree(evm, chunks, fan_in):
    """instanceCount, each chunk's offset and each accumulator's are what spec/fold_plan and the verifier's
    unfold give; the top accumulator (the ezkl verifier's own) is not among those the contract pairs."""
    chain, deploy = evm
    addr = deploy(chunks, fan_in)
    levels = plan(chunks, fan_in)
    positions = [f"{i:064x}" for i in range(run_instances(chunks, fan_in, S + 3))]
    leaves, accs = unfold(positions, [[{"children": g} for g in level] for level in levels], chunk_instances(S))
    assert call(chain, addr, "instanceCount()") == len(positions)
    assert [call(chain, addr, "leafAt(uint256)", c) for c in range(chunks)] == [int(x[0], 16) for x in leaves]
    assert [call(chain, addr, "innerAccAt(uint256)", a) for a in range(len(accs) - 1)] == [int(x[0], 16) for x in accs[1:]]
    assert call(chain, addr, "innerAccAt(uint256)", len(accs) - 1) == -1  # (no more)
    assert int(accs[0][0], 16) == 0 and len(accs) == sum(len(level) for level in levels)


def test_a_wrong_fan_in_is_refused_at_deployment(evm):
    chain, deploy = evm
    with pytest.raises(Exception):
        deploy(3, 1)


@pytest.mark.parametrize("chunks,fan_in", [(4, 2), (5, 2)])
def test_every_passed_through_accumulator_is_paired(evm, chunks, fan_in):
    """With the run's hashes right and a verifier that accepts anything, ZkpotRun accepts valid accumulators
    and names `accumulator` for an invalid one at any node below the top; an invalid top accumulator is the
    verifier's to refuse (here: accepted by the stand-in)."""
    chain, deploy = evm
    addr = deploy(chunks, fan_in)
    nodes = sum(len(level) for level in plan(chunks, fan_in))
    assert chain.call(addr, verify_call(run_instances_of(chunks, fan_in)))[0]
    for bad in range(1, nodes):
        assert chain.call(addr, verify_call(run_instances_of(chunks, fan_in, bad_acc=bad)))[::2] == (False, "accumulator")
    assert chain.call(addr, verify_call(run_instances_of(chunks, fan_in, bad_acc=0)))[0]


def test_the_run_claims_are_checked_in_a_deep_tree(evm):
    chain, deploy = evm
    addr = deploy(5, 2)
    good = run_instances_of(5, 2)
    leaves, _ = unfold(good, [[{"children": g} for g in level] for level in plan(5, 2)], chunk_instances(S))
    at = {h: i for i, h in enumerate(good)}
    for name, index in [("base", at[leaves[0][0]]), ("chain", at[leaves[3][0]]), ("schedule", at[leaves[4][1]]),
                        ("final", at[leaves[4][-1]])]:
        bad = [*good]
        bad[index] = (12345).to_bytes(32, "little").hex()
        assert chain.call(addr, verify_call(bad))[::2] == (False, name), name
    assert chain.call(addr, verify_call(good[:-1]))[::2] == (False, "instances: not this run's shape")


@pytest.mark.parametrize("case", ["valid", "lhs off by G1", "another s", "limb over 68 bits", "infinity"])
def test_the_on_chain_decider_agrees_with_the_off_chain_one(evm, case):
    from zkpot.verifier import decider

    chain, deploy = evm
    addr = deploy(1, 1)
    a = acc(5, error=bn.G1 if case == "lhs off by G1" else None)
    if case == "another s":
        a = decider.limbs(bn.multiply(bn.G1, 5 * 99)) + decider.limbs(bn.multiply(bn.G1, 5))
    if case == "limb over 68 bits":
        a[1] = (int.from_bytes(bytes.fromhex(a[1]), "little") + (1 << 68)).to_bytes(32, "little").hex()
    if case == "infinity":
        a = ["00" * 32] * ACC_INSTANCES
    words = [64, 0, len(a), *(int.from_bytes(bytes.fromhex(h), "little") for h in a)]
    ok = chain.call(addr, selector("accumulatorPairs(uint256[],uint256)") + b"".join(w.to_bytes(32, "big") for w in words))[0]
    try:
        off_chain = decider.decide_all([a], G2, S_G2) is None
    except decider.DeciderError:
        off_chain = False
    assert ok == off_chain == (case == "valid")
