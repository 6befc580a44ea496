"""Clamp every lookup's input in a traced step where its function saturates (spec/lookups.py).

A pass over the make_fx graph, after the backward is traced (so the clamps have no gradient of their
own and change no value: the clamped function is constant beyond them in fixed point):

    sigmoid(x), tanh(x), erf(x)   ->  f(clamp(x, lo, hi))
    exp(x), x <= 0 by construction ->  exp(max(x, lo))
    softmax(x, dim)               ->  softmax(max(x - amax(x, dim), lo), dim)     (ezkl's exp(x - max))

With domains=True (a DP step, models/dp.py), its noise transform's lookups are clamped to their domains:

    log(x), cos(x)                ->  f(clamp(x, lo, hi))        (spec/lookups.domain)

A clamp is two ReLUs (lo + relu(x - lo), hi - relu(hi - x)): ezkl compares by range checks, no table.
An exp whose input may be positive has no bound in the claims: refused, naming what to do instead.
"""
from __future__ import annotations

import torch
from torch.fx import GraphModule, Node

from zkpot.spec.lookups import domain, saturation

aten = torch.ops.aten
SATURATING = {aten.sigmoid.default: "Sigmoid", aten.tanh.default: "Tanh", aten.erf.default: "Erf"}
EXP = (aten.exp.default, aten.exp_.default)
SOFTMAX = (aten._softmax.default,)
DOMAINS = {aten.log.default: "Ln", aten.cos.default: "Cos"}


class UnboundedExp(ValueError):
    """An exp of a value the claims do not bound above."""


def bound_lookups(gm: GraphModule, scale: int, domains: bool = False) -> GraphModule:
    """gm with every lookup's input clamped to spec/lookups.saturation at `scale`; `domains`: every log's and
    cos's to spec/lookups.domain (a DP step's noise transform, the only place these may occur)."""
    g = gm.graph
    for node in list(g.nodes):
        if node.op != "call_function":
            continue
        if domains and node.target in DOMAINS:
            lo, hi = domain(DOMAINS[node.target], scale)
            with g.inserting_before(node):
                node.replace_input_with(node.args[0], _at_most(g, _at_least(g, node.args[0], lo), hi))
        elif node.target in SATURATING:
            lo, hi = saturation(SATURATING[node.target], scale)
            with g.inserting_before(node):
                node.replace_input_with(node.args[0], _at_most(g, _at_least(g, node.args[0], lo), hi))
        elif node.target in EXP:
            if not _nonpositive(node.args[0]):
                raise UnboundedExp("the step takes exp of a value that may be positive: its lookup table would be "
                                   "unbounded. Exp is supported of non-positive inputs (exp(-x*x), exp(-relu(x))); "
                                   "end a model at its logits or use Softmax / Sigmoid instead")
            lo, _ = saturation("Exp", scale)
            with g.inserting_before(node):
                clamped = _at_least(g, node.args[0], lo)
                new = g.call_function(aten.exp.default, (clamped,))  # (exp_ made out-of-place: its input is fresh)
            node.replace_all_uses_with(new)
            g.erase_node(node)
        elif node.target in SOFTMAX:
            x, dim = node.args[0], node.args[1]
            lo, _ = saturation("Exp", scale)
            with g.inserting_before(node):
                shifted = g.call_function(aten.sub.Tensor, (x, g.call_function(aten.amax.default, (x, [dim], True))))
                node.replace_input_with(x, _at_least(g, shifted, lo))
    g.lint()
    gm.recompile()
    return gm


def _at_least(g, x: Node, lo: float) -> Node:
    """max(x, lo) = lo + relu(x - lo)."""
    r = g.call_function(aten.relu.default, (g.call_function(aten.sub.Tensor, (x, lo)),))
    return g.call_function(aten.add.Tensor, (r, lo))


def _at_most(g, x: Node, hi: float) -> Node:
    """min(x, hi) = hi - relu(hi - x)."""
    r = g.call_function(aten.relu.default, (g.call_function(aten.rsub.Scalar, (x, hi)),))
    return g.call_function(aten.rsub.Scalar, (r, hi))


# --- sign by construction: the few shapes a traced loss or activation gives exp -----------------------

def _nonpositive(n) -> bool:
    if isinstance(n, (int, float)):
        return n <= 0
    if not isinstance(n, Node) or n.op != "call_function":
        return False
    t, a = n.target, n.args
    if t is aten.neg.default:
        return _nonnegative(a[0])
    if t is aten.sub.Tensor and len(a) == 2 and _is_max_with_zero(a[1], a[0]):
        return True  # a - max(a, 0) = min(a, 0)
    if t is aten.mul.Tensor:
        return (_nonnegative(a[0]) and _nonpositive(a[1])) or (_nonpositive(a[0]) and _nonnegative(a[1]))
    if t is aten.add.Tensor:
        return _nonpositive(a[0]) and _nonpositive(a[1])
    return False


def _nonnegative(n) -> bool:
    if isinstance(n, (int, float)):
        return n >= 0
    if not isinstance(n, Node) or n.op != "call_function":
        return False
    t, a = n.target, n.args
    if t in (aten.relu.default, aten.exp.default, aten.abs.default, aten.sigmoid.default, aten._softmax.default):
        return True
    if t is aten.clamp_min.default:
        return isinstance(a[1], (int, float)) and a[1] >= 0
    if t is aten.neg.default:
        return _nonpositive(a[0])
    if t is aten.mul.Tensor:
        return a[0] is a[1] or (_nonnegative(a[0]) and _nonnegative(a[1])) or (_nonpositive(a[0]) and _nonpositive(a[1]))
    if t is aten.add.Tensor:
        return _nonnegative(a[0]) and _nonnegative(a[1])
    if t is aten.pow.Tensor_Scalar:
        return isinstance(a[1], int) and a[1] % 2 == 0
    return False


def _is_max_with_zero(b, a) -> bool:
    """b is max(a, 0): clamp_min(a, 0) or relu(a) (of a, or of a node computing the same as a)."""
    return (isinstance(b, Node) and b.op == "call_function" and bool(b.args) and _same(b.args[0], a)
            and (b.target is aten.relu.default or (b.target is aten.clamp_min.default and b.args[1] == 0)))


def _same(x, y) -> bool:
    """x and y compute the same value: one node, or one op of the same arguments (as neg(z) traced twice)."""
    return x is y or (isinstance(x, Node) and isinstance(y, Node) and x.op == y.op == "call_function"
                      and x.target is y.target and x.args == y.args and x.kwargs == y.kwargs)
