"""The batched KZG decider on accumulators built here with a known s: it must accept exactly the
sets in which every accumulator holds, name the first that does not, and not be fooled by invalid
accumulators whose errors cancel under equal weights."""
import pytest
from py_ecc import optimized_bn128 as bn

from zkpot.verifier import decider

S = 0x1234567890ABCDEF  # the "trapdoor" of this test's G2 points
G2, S_G2 = bn.G2, bn.multiply(bn.G2, S)


def acc(k: int, error=None) -> list[str]:
    """lhs = s*P (+ error), rhs = P for P = k*G1: valid iff error is None."""
    p = bn.multiply(bn.G1, k)
    lhs = bn.multiply(p, S)
    return decider.limbs(lhs if error is None else bn.add(lhs, error)) + decider.limbs(p)


def test_every_valid_accumulator_passes_in_one_equation():
    assert decider.decide_all([acc(k) for k in range(2, 7)], G2, S_G2) is None


@pytest.mark.parametrize("bad", range(3))
def test_the_invalid_accumulator_is_named(bad):
    accs = [acc(k) for k in range(2, 5)]
    accs[bad] = acc(2 + bad, error=bn.G1)
    assert decider.decide_all(accs, G2, S_G2) == bad


def test_errors_that_cancel_under_equal_weights_are_caught():
    """lhs_0 off by +D and lhs_1 off by -D: their plain sum satisfies the pairing, a random combination does not."""
    d = bn.multiply(bn.G1, 777)
    accs = [acc(3, error=d), acc(5, error=bn.neg(d))]
    assert decider.decide_all(accs, G2, S_G2) == 0


def test_another_srs_fails():
    assert decider.decide_all([acc(3)], G2, bn.multiply(bn.G2, S + 1)) == 0


def test_limbs_round_trip():
    p, q = bn.multiply(bn.G1, 5), bn.multiply(bn.G1, 7)
    lhs, rhs = decider.accumulator(decider.limbs(p) + decider.limbs(q))
    assert bn.eq(lhs, p) and bn.eq(rhs, q)
