"""`--steps-per-proof auto`: the largest chunk the memory budget proves, chosen from the public circuit."""
from __future__ import annotations

import math

import pytest

from zkpot.prover import sizing, train as tr
from zkpot.prover.config import RunConfig
from zkpot.prover.run import RunDir
from tests.conftest import SMALL


def circuit(rows_of, calls: list):
    """A stand-in for the derivation: the rows of an S-step chunk, and the logrows ezkl would pick."""
    def derive_at(S: int) -> tuple[int, int]:
        calls.append(S)
        rows = rows_of(S)
        return rows, max(15, math.ceil(math.log2(rows + 64)))
    return derive_at


REFERENCE = lambda S: 3_286 + 20_584 * S  # noqa: E731  (the logreg reference: 23,870 rows at S=1, 44,454 at 2)


@pytest.mark.parametrize("budget", [0.7, 1.4, 2.7, 5.4, 11.0, 22.0, 100.0])
def test_the_largest_divisor_that_fits(budget):
    calls = []
    derive_at = circuit(REFERENCE, calls)
    S, k = sizing.choose(70, derive_at, budget)
    assert 70 % S == 0 and derive_at(S)[1] == k and sizing.prove_gb(k) <= budget and k <= sizing.MAX_LOGROWS
    for bigger in (d for d in sizing.divisors(70) if d > S):
        k_bigger = derive_at(bigger)[1]
        assert sizing.prove_gb(k_bigger) > budget or k_bigger > sizing.MAX_LOGROWS, f"{bigger} steps fit too"


def test_few_derivations():
    """Sizes predicted not to fit are not derived: S = 1, 2, then the candidates from the top that fit."""
    calls = []
    assert sizing.choose(70, circuit(REFERENCE, calls), 11.0) == (14, 19)
    assert calls == [1, 2, 14]


def test_a_prediction_that_was_too_optimistic():
    """Rows that grow faster than the two-point line: the derived circuit is what counts, next divisor down."""
    calls = []  # 2.7 GB proves logrows 17 (131,072 rows); 5 steps are predicted at 119,350 but take 139,350
    S, k = sizing.choose(70, circuit(lambda S: 23_870 * S + (20_000 if S >= 5 else 0), calls), 2.7)
    assert (S, k) == (2, 16) and calls == [1, 2, 5, 2]


def test_one_step_that_does_not_fit():
    with pytest.raises(sizing.SizingError, match=r"one SGD step needs logrows 18 .* 1.0 GB budget"):
        sizing.choose(70, circuit(lambda S: 200_000 * S, []), 1.0)


def test_auto_on_a_real_run(tmp_path):
    """The SMALL run (4 SGD steps) fits one chunk: with the budget its 4-step circuit needs, auto picks 4,
    and its step graph and settings are exactly those of an explicit --steps-per-proof 4 (what the
    verifier derives); with less than one step needs, it refuses in one line."""
    from zkpot.spec.artifacts import read_json

    auto, fixed = RunDir(tmp_path / "auto"), RunDir(tmp_path / "fixed")
    tr.prepare(fixed, RunConfig(**{**SMALL, "steps_per_proof": 4}), progress=lambda *_: None)
    k4 = read_json(fixed.settings)["run_args"]["logrows"]
    said = []
    tr.prepare(auto, RunConfig(**{**SMALL, "steps_per_proof": sizing.AUTO}), progress=said.append,
               memory_gb=sizing.prove_gb(k4))
    assert RunConfig.load(auto.config).steps_per_proof == 4
    assert auto.onnx.read_bytes() == fixed.onnx.read_bytes()
    assert auto.settings.read_bytes() == fixed.settings.read_bytes()
    assert any(f"steps per proof: 4 (logrows {k4}" in s for s in said), said
    with pytest.raises(sizing.SizingError, match=r"one SGD step needs logrows \d+ .* 0.1 GB budget"):
        tr.prepare(RunDir(tmp_path / "small"), RunConfig(**{**SMALL, "steps_per_proof": sizing.AUTO}),
                   progress=lambda *_: None, memory_gb=0.1)


def test_preregistration_needs_a_number(tmp_path):
    from zkpot.prover.preregister import preregister

    with pytest.raises(ValueError, match="auto needs the run's step count"):
        preregister(RunConfig(**{**SMALL, "steps_per_proof": sizing.AUTO}), 8, 1, tmp_path / "reg")
    assert not (tmp_path / "reg").exists()
