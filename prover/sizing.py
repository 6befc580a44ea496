"""Steps per proof from the memory budget (`--steps-per-proof auto`).

Each chunk proof has a fixed cost (hashing the state in and out, a fold node above it when the run
is folded: ~12 minutes at fan-in 2), so a run wants as few chunks as the prover's memory allows.
A chunk's rows grow linearly with its SGD steps, and proving memory doubles per logrow, so:

    rows(S)  ~ rows(1) + (S - 1) * (rows(2) - rows(1))       two derivations of the public circuit
    S        = the largest divisor of the run's steps whose circuit fits the budget's logrows,
               confirmed by deriving that circuit (else the next divisor down)

Everything here is a function of the public claims and the budget; the private data only gives
the step count (epochs x batches), which is public too.
"""
from __future__ import annotations

from typing import Callable

from zkpot.spec.fold_plan import GB, meminfo
from zkpot.spec.protocol import MAX_LOGROWS

# Peak memory of ezkl 22.3.0's prove at logrows 15, doubling per logrow: 668 MB for the logreg
# reference (bench/results/tune.md: 668, 1301, 2521 MB at logrows 15, 16, 17).
PROVE_GB_AT_15 = 0.668
BUDGET_SHARE = 0.8  # of the machine's RAM: swap makes proving crawl, and the OS needs the rest

AUTO = 0  # RunConfig.steps_per_proof: choose from the budget at `train`


class SizingError(ValueError):
    """No chunk size fits the memory budget."""


def prove_gb(logrows: int) -> float:
    return PROVE_GB_AT_15 * 2.0 ** (logrows - 15)


def default_budget_gb() -> float:
    """A share of this machine's RAM, without swap."""
    return BUDGET_SHARE * meminfo()["MemTotal"] / GB


def max_logrows(budget_gb: float) -> int:
    """The largest logrows a prover with this much memory proves (0: none)."""
    fits = [k for k in range(1, MAX_LOGROWS + 1) if prove_gb(k) <= budget_gb]
    return max(fits, default=0)


def divisors(n: int) -> list[int]:
    return [d for d in range(n, 0, -1) if n % d == 0]


def choose(total_steps: int, derive_at: Callable[[int], tuple[int, int]], budget_gb: float,
           say=lambda message: None) -> tuple[int, int]:
    """(steps per proof, its logrows): the largest divisor of `total_steps` whose chunk circuit fits
    `budget_gb`. `derive_at(S)` gives (rows, logrows) of the public S-step circuit."""
    k_max = max_logrows(budget_gb)
    rows1, k1 = derive_at(1)
    if k1 > k_max:
        raise SizingError(f"one SGD step needs logrows {k1} (~{prove_gb(k1):.1f} GB to prove), more than a "
                          f"{budget_gb:.1f} GB budget proves (--memory-gb): lower the batch size or the bounds")
    if total_steps == 1:
        return 1, k1
    rows2, _ = derive_at(2)
    per_step = max(rows2 - rows1, 1)
    for S in divisors(total_steps):
        if S > 1 and rows1 + (S - 1) * per_step > 2 ** k_max:
            continue  # predicted not to fit: not worth a derivation
        rows, k = (rows1, k1) if S == 1 else derive_at(S)
        say(f"{S} step(s) per proof: {rows} rows, logrows {k} (~{prove_gb(k):.1f} GB to prove)")
        if k <= k_max:
            return S, k
    raise AssertionError("unreachable: one step fits")
