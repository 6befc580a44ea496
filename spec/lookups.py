"""Lookup tables as a function of the claims: every table input clamped where its function saturates.

ezkl evaluates exp, sigmoid, tanh and erf by a lookup into one table covering `lookup_range`, in
integers at the lookup's input scale S: out = round(f(x / S) * S). Each of these functions is
constant in fixed point beyond a point that depends on S alone:

    exp(x)     rounds to 0        for x <= -ln(2 S)
    sigmoid(x) rounds to 0 / S    for |x| >= ln(2 S)
    tanh(x)    rounds to -S / S   for |x| >= ln(4 S) / 2
    erf(x)     rounds to -S / S   for |x| >= sqrt(ln(2 S))        (erfc(x) < exp(-x^2) for x > 0)

So the traced step clamps every such input to SATURATION (models/bounded.py): the clamp changes no
output (the same integers come out), and the table needs only the clamped interval, for any private
value whatever. The range is then exact, a function of the scale and of the lookups the circuit
uses: never sampled, and no run within the claims can leave it. Exp's upper end is 0: the clamp
is applied only where the input is non-positive by construction (a loss's exp(-|z|), a softmax after
subtracting its maximum, GELU's exp(-x^2/2)).

A DP step (models/dp.py) also looks up Ln and Cos, in its noise transform (Box-Muller of uniforms u on
the grid of 2^-scale). Neither saturates: their inputs are clamped instead to the DOMAIN the transform
gives them by construction, so the clamp changes no value either, and the table is again a function of
the scale alone (table_range(..., domains=True); any other circuit with an Ln or Cos is refused):

    ln(u)          u in [2^-scale, 1]           (u = 1 - frac(v + r): never 0, ln(0) has no entry)
    cos(2 pi u)    2 pi u in [0, 2 pi]          (2 pi rounded up to the grid)

The bounds hold for every input scale up to 2^(2 * scale) (ezkl feeds a lookup at the graph's scale,
or at a sum of scales after a product); a circuit with a lookup at a larger scale is refused.
"""
from __future__ import annotations

import math

KINDS = ("Exp", "Sigmoid", "Tanh", "Erf")   # ezkl's LookupOp names, as settings.json's required_lookups spell them
DOMAIN_KINDS = ("Ln", "Cos")                # a DP step's noise transform: inputs clamped to domain(kind, scale)


class UnboundedLookup(ValueError):
    """A lookup the claims cannot bound (another function, or an input at a scale beyond the clamps')."""


def max_lookup_scale(scale: int) -> int:
    return 2 ** (2 * scale)


def _outward(x: float, scale: int) -> float:
    """x rounded away from 0 to a multiple of 2^-scale: exactly representable, so the clamp's constant is."""
    q = 2.0 ** -scale
    return math.copysign(math.ceil(abs(x) / q) * q, x)


def saturation(kind: str, scale: int) -> tuple[float, float]:
    """The interval [lo, hi] a `kind` lookup's input is clamped to, at the claims' fixed-point scale."""
    s_max = max_lookup_scale(scale)
    edge = {"Exp": math.log(2 * s_max), "Sigmoid": math.log(2 * s_max), "Tanh": math.log(4 * s_max) / 2,
            "Erf": math.sqrt(math.log(2 * s_max))}[kind]
    edge = _outward(edge, scale)
    return (-edge, 0.0) if kind == "Exp" else (-edge, edge)


def domain(kind: str, scale: int) -> tuple[float, float]:
    """The interval [lo, hi] a DP step's `kind` lookup (DOMAIN_KINDS) has its input clamped to: where its noise
    transform puts it at the claims' fixed-point scale (both ends on the grid of 2^-scale)."""
    if kind == "Ln":
        return 2.0 ** -scale, 1.0
    if kind == "Cos":
        return 0.0, _outward(2 * math.pi, scale)
    raise UnboundedLookup(f"no domain for a {kind} lookup (domains: {', '.join(DOMAIN_KINDS)})")


def table_range(required_lookups: list[dict], scale: int, domains: bool = False) -> tuple[int, int]:
    """ezkl's lookup_range for a circuit using `required_lookups` (settings.json), in integers: the union of
    each lookup's clamped interval at its input scale. (0, 0) for a circuit without lookups. `domains`: the
    circuit is a DP step's, whose Ln and Cos lookups are clamped to their domain (models/bounded.py)."""
    lo, hi = 0, 0
    kinds = KINDS + DOMAIN_KINDS if domains else KINDS
    for lookup in required_lookups:
        ((kind, params),) = lookup.items()
        if kind not in kinds:
            raise UnboundedLookup(f"the circuit needs a {kind} lookup, whose input no claim bounds (bounded: "
                               f"{', '.join(kinds)})")
        s = params["scale"]
        if s > max_lookup_scale(scale) or s != int(s):
            raise UnboundedLookup(f"the circuit looks {kind} up at input scale {s}, beyond the 2^{2 * scale} its "
                               "clamps are exact for")
        a, b = domain(kind, scale) if kind in DOMAIN_KINDS else saturation(kind, scale)
        lo, hi = min(lo, math.floor(a * s)), max(hi, math.ceil(b * s))
    return lo, hi
