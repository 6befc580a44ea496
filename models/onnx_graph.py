"""A practitioner's ONNX forward graph as a torch module whose every op has a provable backward.

    module = load_module(digest)            the graph registered under its sha256 (register(path))
    module(x)                               x: (B, F), F = the product of the graph input's dims after the batch

The graph is interpreted node by node with torch functional ops, so make_fx over torch.func.grad sees
plain aten ops (models/step.py). Its float initializers of rank >= 1 are the model's parameters (named
after them: "fc1.weight"), BatchNormalization's running statistics and rank-0 scalars are constants. A
graph exported at batch 1 (torch.onnx.export's default) runs per example under torch.func.vmap.

Where torch's backward of an op has no ONNX export or ezkl's tract cannot compile it, the op is
lowered here to one whose backward can (OPS says how; docs/onnx-ops.md is generated from it):
Conv as im2col by strided slices and a matmul, pooling by reshaping into windows, max as b + relu(a - b).
LayerNorm and GELU stay native and are decomposed when the step is traced (step.DECOMPOSITIONS).

The graph the claims name is the file's canonical bytes: external data brought inline, serialized
once (register); its sha256 is run.model.graph, and the bundle carries it as base_model.onnx.
"""
from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

from zkpot.models.lora import MAX_RANK
from zkpot.spec import cache
from zkpot.spec.artifacts import atomic_path
from zkpot.spec.weights import TRANSPOSED

MAX_GRAPH = 256 << 20   # bytes of a graph, inline


class GraphError(ValueError):
    """A graph zkpot cannot train: the message names the op or the shape, and what to do instead."""


# --- the graph the claims name ------------------------------------------------------------------

def canonical_bytes(path: Path, external: bool = True) -> bytes:
    """The model with its external data inline, serialized: what run.model.graph hashes. `external=False`
    (a bundle's graph, which is canonical): no file beside it is read, and a reference to one is refused."""
    path = Path(path)
    if not path.is_file():
        raise GraphError(f"model file not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=external)
    except Exception as e:
        raise GraphError(f"{path}: not a readable ONNX model ({e.__class__.__name__}: {str(e)[:120]})") from None
    if not external and any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        raise GraphError(f"{path.name} refers to external data: a bundle's graph carries its weights inline")
    data = model.SerializeToString()
    if len(data) > MAX_GRAPH:
        raise GraphError(f"{path}: {len(data)} bytes inline, more than the {MAX_GRAPH} zkpot proves")
    return data


def register(path: Path, external: bool = True) -> str:
    """Store the graph's canonical bytes under their sha256 (the cache's graphs namespace); its sha256."""
    data = canonical_bytes(path, external)
    digest = hashlib.sha256(data).hexdigest()
    target = cache.entry("graphs", sha256=digest) / "model.onnx"
    if not (target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == digest):
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
    OnnxModule(onnx.load_from_string(data))  # refused here, before any work, if an op has no mapping
    return digest


def graph_bytes(digest: str) -> bytes:
    """The registered graph with this sha256, re-hashed on every read (the cache is not trusted)."""
    path = cache.entry("graphs", sha256=digest) / "model.onnx"
    data = path.read_bytes() if path.is_file() else b""
    if hashlib.sha256(data).hexdigest() != digest:
        raise GraphError(f"no ONNX graph with sha256 {digest[:16]}… is registered here (zkpot train --model FILE.onnx, "
                         "or the bundle's base_model.onnx, registers it)")
    return data


def load_module(digest: str) -> "OnnxModule":
    return OnnxModule(onnx.load_from_string(graph_bytes(digest)))


# --- the interpreter ----------------------------------------------------------------------------

def _ident(name: str) -> str:
    """An initializer's name as a parameter path: torch's own names stay ("fc1.weight", "0.bias"), other
    characters become "_" (what --train's globs match)."""
    return ".".join(re.sub(r"\W", "_", p) or "_" for p in name.split("."))


def _attrs(node) -> dict:
    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else v
    return out


def _static_dims(value_info, what: str) -> list[int]:
    dims = [d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim]
    if not dims:
        raise GraphError(f"the graph's {what} has no shape")
    dims[0] = 1 if dims[0] is None else dims[0]   # a symbolic batch: run per example
    if any(d is None or d < 1 for d in dims[1:]):
        raise GraphError(f"the graph's {what} {value_info.name!r} has dynamic dimensions {dims}: export it with "
                         "static shapes (torch.onnx.export's default)")
    return dims


class OnnxModule(nn.Module):
    """The graph as an nn.Module: initializers as parameters, nodes evaluated in order (see module docstring)."""

    def __init__(self, model: onnx.ModelProto):
        super().__init__()
        g = model.graph
        inits = {t.name for t in g.initializer}
        inputs = [i for i in g.input if i.name not in inits]
        if len(inputs) != 1 or len(g.output) != 1:
            raise GraphError(f"zkpot trains a graph of one input and one output; this one has {len(inputs)} input(s) "
                             f"and {len(g.output)} output(s)")
        self.input_name, self.output_name = inputs[0].name, g.output[0].name
        self.input_shape = _static_dims(inputs[0], "input")
        self.output_shape = _static_dims(g.output[0], "output")
        if self.input_shape[0] != 1:
            raise GraphError(f"the graph's input has batch {self.input_shape[0]}: export it at batch 1 "
                             "(torch.onnx.export with one example row)")
        # BatchNormalization's running statistics are constants: an initializer only they use (through Identity
        # nodes too: the TorchScript exporter writes a running variance equal to the scale as Identity(bn.weight))
        alias = {n.output[0]: n.input[0] for n in g.node if n.op_type == "Identity"}

        def root(name):
            while name in alias:
                name = alias[name]
            return name

        uses = {(root(v), n.op_type == "BatchNormalization" and i in (3, 4)) for n in g.node if n.op_type != "Identity"
                for i, v in enumerate(n.input)} | {(root(o.name), False) for o in g.output}
        statistics = {v for v, stat in uses if stat} - {v for v, stat in uses if not stat}
        self._param, self._const = {}, {}
        arrays = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        for t in g.initializer:
            a = arrays[t.name]
            if a.dtype.kind == "f" and a.ndim >= 1 and t.name not in statistics:
                *path, leaf = _ident(t.name).split(".")
                if _ident(t.name) in self._param.values() or (not path and leaf in RESERVED):
                    raise GraphError(f"initializer {t.name!r} names the same parameter as another one, or one of "
                                     "the module's own attributes: rename it before exporting")
                owner = self
                for p in path:
                    if not hasattr(owner, p):
                        owner.add_module(p, nn.Module())
                    owner = getattr(owner, p)
                    if not isinstance(owner, nn.Module):
                        raise GraphError(f"initializer {t.name!r}: its path {p!r} clashes with an attribute: rename it")
                owner.register_parameter(leaf, nn.Parameter(torch.from_numpy(a.astype(np.float32).copy())))
                self._param[t.name] = _ident(t.name)
            else:
                self._const[t.name] = a
        self.nodes = []
        for n in g.node:
            at = _attrs(n)
            if n.op_type == "Constant":   # folded now: a static value
                self._const[n.output[0]] = np.asarray(at.get("value", at.get("value_float", at.get("value_floats",
                                                      at.get("value_int", at.get("value_ints"))))))
                continue
            if n.op_type not in OPS:
                raise GraphError(f"ONNX op {n.op_type} (node {n.name or n.output[0]!r}) is not supported: "
                                 f"{REFUSED.get(n.op_type, NEAREST)}")
            ins = list(n.input)
            if n.op_type == "BatchNormalization":
                for i in (3, 4):
                    r = root(ins[i]) if i < len(ins) else ""
                    if r in self._param:   # a value shared with a parameter: the statistic is its value at export
                        self._const[r + ":statistic"], r = arrays[r], r + ":statistic"
                    elif r not in self._const:
                        raise GraphError(f"BatchNormalization (node {n.name or n.output[0]!r}): its running statistic "
                                         f"{r!r} is computed by the graph, not a constant: export the model in eval mode")
                    ins[i] = r
            self.nodes.append((n.op_type, n.name, ins, list(n.output), at))
        self._adapted: dict[str, nn.Module] = {}   # weight initializer -> the layer holding its lora_a, lora_b

    def _adapter_sites(self) -> tuple[dict[str, tuple[str, bool]], dict[str, str]]:
        """Where an adapter can sit: {layer: (weight initializer, out_in)} for each 2-D weight that every node using
        it multiplies its input by, as input 1 of a Gemm (transA 0, alpha 1) or a MatMul, all in one orientation:
        (out, in) (Gemm transB=1, torch's Linear on 2-D input), layer LAYER for a weight named LAYER.weight; or
        (in, out) (MatMul, Gemm transB=0: torch's Linear on 3-D input), layer WEIGHT_T (spec/weights.py: TRANSPOSED).
        And {weight initializer: why not, naming the node and op} for every other parameter."""
        uses: dict[str, list] = {}
        for op, name, ins, outs, at in self.nodes:
            for i, v in enumerate(ins):
                if v in self._param:
                    uses.setdefault(v, []).append((op, name or outs[0], i, at))
        sites, why = {}, {}
        for w, found in uses.items():
            ident, orient, reason = self._param[w], set(), None
            dims = self.get_parameter(ident).dim()
            for op, node, i, at in found:
                where = f"{op} (node {node!r})"
                if op not in ("Gemm", "MatMul"):
                    reason = f"{where} uses it: an adapter sits beside a Gemm's or a MatMul's weight"
                elif i != 1:
                    reason = f"it is input {i} of {where}, not the weight that node multiplies its input by (input 1)"
                elif dims != 2:
                    reason = f"{where} multiplies by it as a {dims}-D tensor: an adapter sits beside a 2-D weight"
                elif op == "Gemm" and (at.get("transA", 0) or at.get("alpha", 1.0) != 1.0):
                    reason = f"{where} has transA or alpha != 1: an adapter sits beside x W (transA 0, alpha 1)"
                else:
                    orient.add(op == "Gemm" and bool(at.get("transB", 0)))
                if reason:
                    break
            if reason is None and len(orient) > 1:
                reason = "it is multiplied by both as (out, in) (Gemm transB=1) and as (in, out) (MatMul, Gemm transB=0)"
            if reason is None:
                out_in = orient.pop()
                parent, _, leaf = ident.rpartition(".")
                owner = self.get_submodule(parent) if parent else self
                if w in self._adapted:   # (adapted already: its layer)
                    sites[parent if out_in else ident + TRANSPOSED] = (w, out_in)
                elif out_in and not ident.endswith(".weight"):
                    reason = "its name is not LAYER.weight (as torch names a Linear layer's), which its adapter is named by"
                elif out_in and any(hasattr(owner, ab) for ab in ("lora_a", "lora_b")):
                    reason = f"the graph already has a parameter {parent}.lora_a or {parent}.lora_b"
                elif not out_in and hasattr(owner, leaf + TRANSPOSED):
                    reason = f"its adapter's name {ident + TRANSPOSED!r} is already one of the graph's: rename it"
                else:
                    sites[parent if out_in else ident + TRANSPOSED] = (w, out_in)
            if reason is not None:
                why[w] = reason
        return sites, why

    def adaptable(self) -> list[str]:
        """The layers an adapter can sit beside (_adapter_sites), in the graph's order."""
        return list(self._adapter_sites()[0])

    def add_adapters(self, rank: int, layers: list[str]) -> None:
        """Low-rank adapters (models/lora.py's, as on a Linear layer) beside these weights: LAYER.lora_a (rank x in,
        seeded), LAYER.lora_b (out x rank, zero), so a node computing x W^T (Gemm transB=1) or x W (MatMul) gets
        + (x A^T) B^T: its weight is W + B A, or W + (B A)^T, when merged (spec/weights.py: merge_adapters)."""
        if not 1 <= rank <= MAX_RANK:
            raise GraphError(f"adapter rank must be in 1..{MAX_RANK}, got {rank}")
        if self._adapted:
            raise GraphError("the graph's adapters are added already")
        sites, why = self._adapter_sites()
        listed = ", ".join(sites) or "none"
        if not layers:
            raise GraphError(f"adapters name no layer (the graph's weights that take one: {listed})")
        for layer in layers:
            if layers.count(layer) > 1:
                raise GraphError(f"adapter layer {layer!r} is named twice")
            if layer not in sites:
                raise GraphError(self._no_adapter(layer, sites, why, listed))
        for layer in layers:
            w, out_in = sites[layer]
            weight = self.get_parameter(self._param[w])
            out_f, in_f = weight.shape if out_in else weight.shape[::-1]
            if out_in:
                owner = self.get_submodule(layer)
            else:   # a new module beside the weight's: WEIGHT_T
                parent, _, leaf = layer.rpartition(".")
                owner = nn.Module()
                (self.get_submodule(parent) if parent else self).add_module(leaf, owner)
            a = nn.Parameter(torch.empty(rank, in_f, device=weight.device))
            if a.device.type != "meta":
                nn.init.kaiming_uniform_(a, a=5 ** 0.5)
            owner.register_parameter("lora_a", a)
            owner.register_parameter("lora_b", nn.Parameter(torch.zeros(out_f, rank, device=weight.device)))
            self._adapted[w] = owner

    def _no_adapter(self, layer: str, sites: dict, why: dict, listed: str) -> str:
        """Why `layer` takes no adapter, in one line: the node and op that keep its weight from one."""
        by_ident = {ident: w for w, ident in self._param.items()}
        for ident in (layer + ".weight", layer.removesuffix(TRANSPOSED), layer):
            w = by_ident.get(ident)
            if w is None:
                continue
            named = next((lay for lay, (v, _) in sites.items() if v == w), None)
            if named is not None:
                return f"adapter layer {layer!r}: the weight {ident} takes its adapter as layer {named!r}"
            return (f"adapter layer {layer!r} cannot take an adapter: its weight {ident}: "
                    f"{why.get(w, 'no node of the graph uses it')} (the graph's weights that take one: {listed})")
        bias = by_ident.get(layer + ".bias")   # a Linear on tokens: torch keeps its bias's name, not its weight's
        matmul = {outs[0]: ins[1] for op, _, ins, outs, _ in self.nodes if op == "MatMul"}
        for op, _, ins, _, _ in self.nodes:
            weight = next((matmul[v] for v in ins if v in matmul), None) if op == "Add" and bias in ins else None
            named = next((lay for lay, (v, _) in sites.items() if v == weight), None)
            if named is not None:
                return (f"adapter layer {layer!r}: its Linear was exported as a MatMul by {self._param[weight]} (then Add "
                        f"{layer}.bias): name it {named!r}")
        return f"adapter layer {layer!r} names no weight of the graph (the graph's weights that take one: {listed})"

    def _value(self, env: dict, name: str):
        if name == "":
            return None
        if name in env:
            return env[name]
        if name in self._param:   # by attribute: functional_call swaps in the traced tensors
            owner = self
            for part in self._param[name].split("."):
                owner = getattr(owner, part)
            return owner
        a = self._const[name]
        if a.dtype.kind == "f":
            return float(a) if a.ndim == 0 else torch.from_numpy(a.astype(np.float32).copy())
        return a   # integer constants stay numpy: static shapes and axes

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """The graph on one example of the graph input's shape."""
        env = {self.input_name: x}
        for op, name, ins, outs, at in self.nodes:
            try:
                res = OPS[op][0](at, *[self._value(env, i) for i in ins])
                if op in ("Gemm", "MatMul") and ins[1] in self._adapted:   # the adapter beside the frozen weight
                    layer = self._adapted[ins[1]]
                    res = res + (self._value(env, ins[0]) @ layer.lora_a.transpose(0, 1)) @ layer.lora_b.transpose(0, 1)
            except GraphError as e:
                raise GraphError(f"ONNX op {op} (node {name or outs[0]!r}): {e}") from None
            for o, r in zip(outs, res if isinstance(res, tuple) else (res,)):
                if o:
                    env[o] = r
        return env[self.output_name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        y = torch.func.vmap(self.run)(x.reshape(B, *self.input_shape))
        return y.reshape(B, -1)

    @property
    def features(self) -> int:
        return math.prod(self.input_shape[1:])

    @property
    def outputs(self) -> int:
        return math.prod(self.output_shape[1:])


# the module's own names, which no initializer may take
RESERVED = set(dir(OnnxModule)) | {"training", "nodes", "input_name", "output_name", "input_shape", "output_shape",
                                   "_param", "_const", "_adapted"}


# --- ops ----------------------------------------------------------------------------------------

def _ints(a) -> list[int]:
    return [int(v) for v in np.asarray(a).reshape(-1)]


def _gemm(at, a, b, c=None):
    a = a.transpose(-1, -2) if at.get("transA", 0) else a
    b = b.transpose(-1, -2) if at.get("transB", 0) else b
    y = a @ b * at.get("alpha", 1.0) if at.get("alpha", 1.0) != 1.0 else a @ b
    return y if c is None else y + (c * at["beta"] if at.get("beta", 1.0) != 1.0 else c)


def _reshape(at, x, shape):
    shape = _ints(shape)
    if not at.get("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


def _axes(at, x, axes):
    axes = _ints(axes) if axes is not None else at.get("axes")
    return list(range(x.dim())) if axes is None else [a % x.dim() for a in axes]


def _windows(x, k, s):
    """Non-overlapping windows (stride = kernel) by reshape: (N, C, Ho, Wo, kh*kw). Their backward is a
    reshape; slicing's backward exports as ConstantOfShape + ScatterND, which tract refuses."""
    if x.dim() != 4:
        raise GraphError(f"pooling is supported over 2-D maps (N, C, H, W), not {x.dim() - 2}-D ones")
    if list(k) != list(s):
        raise GraphError("pooling with stride other than the kernel is not supported (use stride = kernel)")
    N, C, H, W = x.shape
    if H % k[0] or W % k[1]:
        raise GraphError(f"pooling a {H}x{W} map by {k[0]}x{k[1]} windows leaves a remainder")
    Ho, Wo = H // k[0], W // k[1]
    return x.reshape(N, C, Ho, k[0], Wo, k[1]).permute(0, 1, 2, 4, 3, 5).reshape(N, C, Ho, Wo, k[0] * k[1])


def _pool_attrs(at):
    if any(at.get("pads", [0, 0, 0, 0])) or at.get("ceil_mode", 0) or any(d != 1 for d in at.get("dilations", [1, 1])):
        raise GraphError("pooling with padding, ceil mode or dilation is not supported")
    return at["kernel_shape"], at.get("strides", at["kernel_shape"])


def _maxpool(at, x):
    w = _windows(x, *_pool_attrs(at)).unbind(-1)
    y = w[0]
    for c in w[1:]:
        y = c + F.relu(y - c)   # max(y, c); torch.maximum costs more rows, amax's backward does not calibrate
    return y


def _conv(at, x, w, b=None):
    """im2col by strided slices of the padded input, then one matmul: its weight gradient is a matmul
    (aten.convolution_backward has no ONNX export)."""
    if w.dim() not in (3, 4):
        raise GraphError(f"only 1-D and 2-D convolutions are supported, not {w.dim() - 2}-D ones")
    if at.get("group", 1) != 1 or any(d != 1 for d in at.get("dilations", [1] * (w.dim() - 2))):
        raise GraphError("grouped or dilated convolutions are not supported")
    one_d = w.dim() == 3
    if one_d:   # Conv1d: a 2-D convolution of height 1
        x, w = x.unsqueeze(-2), w.unsqueeze(-2)
        at = {**at, "pads": [0, at.get("pads", [0, 0])[0], 0, at.get("pads", [0, 0])[1]],
              "strides": [1, at.get("strides", [1])[0]]}
    if at.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise GraphError(f"auto_pad {at['auto_pad']} is not supported: export with explicit padding")
    pads, (sh, sw) = at.get("pads", [0, 0, 0, 0]), at.get("strides", [1, 1])
    O, C, kh, kw = w.shape
    if any(pads):
        x = F.pad(x, (pads[1], pads[3], pads[0], pads[2]))
    H, W = x.shape[-2:]
    Ho, Wo = (H - kh) // sh + 1, (W - kw) // sw + 1
    cols = [x[..., i : i + sh * (Ho - 1) + 1 : sh, j : j + sw * (Wo - 1) + 1 : sw] for i in range(kh) for j in range(kw)]
    patches = torch.stack(cols, dim=2).reshape(x.shape[0], C * kh * kw, Ho * Wo)   # (c, i, j): w's order
    y = w.reshape(O, C * kh * kw) @ patches
    y = (y if b is None else y + b.reshape(O, 1)).reshape(x.shape[0], O, Ho, Wo)
    return y.squeeze(-2) if one_d else y


def _slice(at, x, starts, ends, axes=None, steps=None):
    """One product with a constant 0/1 selection matrix per sliced axis: slicing's own backward exports as
    ConstantOfShape + ScatterND, which tract refuses; a product's backward is a product."""
    starts, ends = _ints(starts), _ints(ends)
    axes = _ints(axes) if axes is not None else list(range(len(starts)))
    steps = _ints(steps) if steps is not None else [1] * len(starts)
    for a, s, e, step in zip(axes, starts, ends, steps):
        a, n = a % x.dim(), x.shape[a % x.dim()]
        keep = list(range(n))[slice(s, e, step)]   # (Python's clamping is ONNX's)
        if keep == list(range(n)):
            continue
        pick = np.zeros((n, len(keep)), np.float32)
        pick[keep, range(len(keep))] = 1.0
        x = torch.movedim(torch.movedim(x, a, -1) @ torch.from_numpy(pick).to(x.dtype), -1, a)
    return x


def _batchnorm(at, x, scale, bias, mean, var):
    if at.get("training_mode", 0):
        raise GraphError("BatchNormalization in training mode: export the model in eval mode (model.eval())")
    shape = [1, -1] + [1] * (x.dim() - 2)
    inv = torch.rsqrt(var + at.get("epsilon", 1e-5))   # constants: computed once, a constant of the step graph
    return (x - mean.reshape(shape)) * (inv.reshape(shape) * scale.reshape(shape)) + bias.reshape(shape)


def _layernorm(at, x, w, b=None):
    ax = at.get("axis", -1) % x.dim()
    return F.layer_norm(x, list(x.shape[ax:]), w, b, at.get("epsilon", 1e-5))


def _unsqueeze(at, x, axes=None):
    axes = _ints(axes if axes is not None else at["axes"])
    for a in sorted(a % (x.dim() + len(axes)) for a in axes):
        x = x.unsqueeze(a)
    return x


def _squeeze(at, x, axes=None):
    axes = _ints(axes) if axes is not None else at.get("axes")
    if axes is None:
        return x.squeeze()
    for a in sorted((a % x.dim() for a in axes), reverse=True):
        x = x.squeeze(a)
    return x


def _concat(at, *xs):
    return torch.cat([torch.as_tensor(x, dtype=torch.float32) if isinstance(x, np.ndarray) else x for x in xs],
                     dim=at["axis"])


NATIVE = "native"
# op: (torch formulation, how it is proved)
OPS = {
    "Gemm": (_gemm, NATIVE), "MatMul": (lambda at, a, b: a @ b, NATIVE),
    "Add": (lambda at, a, b: a + b, NATIVE), "Sub": (lambda at, a, b: a - b, NATIVE),
    "Mul": (lambda at, a, b: a * b, NATIVE),
    "Div": (lambda at, a, b: a * (1.0 / b) if isinstance(b, float) else a / b, "by a constant: a product; else native"),
    "Neg": (lambda at, a: -a, NATIVE), "Identity": (lambda at, x: x, NATIVE),
    "Relu": (lambda at, x: F.relu(x), NATIVE), "Sigmoid": (lambda at, x: torch.sigmoid(x), NATIVE),
    "Tanh": (lambda at, x: torch.tanh(x), NATIVE), "Exp": (lambda at, x: torch.exp(x), "of a non-positive input only (as exp(-x * x), exp(-relu(x))): a "
                                                  "positive one has no table the claims bound, and is refused"),
    "Sqrt": (lambda at, x: torch.sqrt(x), NATIVE), "Erf": (lambda at, x: torch.erf(x), NATIVE),
    "Pow": (lambda at, x, p: x ** p, NATIVE),
    "Gelu": (lambda at, x: F.gelu(x, approximate=at.get("approximate", "none")), "decomposed when traced (step.DECOMPOSITIONS)"),
    "LayerNormalization": (_layernorm, "decomposed when traced (step.DECOMPOSITIONS)"),
    "BatchNormalization": (_batchnorm, "eval only: running statistics are constants, scale and bias train"),
    "Softmax": (lambda at, x: F.softmax(x, dim=at.get("axis", -1)), NATIVE),
    "Reshape": (_reshape, NATIVE),
    "Flatten": (lambda at, x: x.reshape(math.prod(x.shape[: at.get("axis", 1)]), -1), NATIVE),
    "Transpose": (lambda at, x: x.permute(*at.get("perm", list(range(x.dim()))[::-1])), NATIVE),
    "Unsqueeze": (_unsqueeze, NATIVE), "Squeeze": (_squeeze, NATIVE), "Concat": (_concat, NATIVE),
    "Slice": (_slice, "lowered: a product with a constant 0/1 selection matrix per sliced axis (constant starts, "
                      "ends, axes, steps)"),
    "ReduceMean": (lambda at, x, axes=None: x.mean(dim=_axes(at, x, axes), keepdim=bool(at.get("keepdims", 1))), NATIVE),
    "ReduceSum": (lambda at, x, axes=None: x.sum(dim=_axes(at, x, axes), keepdim=bool(at.get("keepdims", 1))), NATIVE),
    "Conv": (_conv, "lowered: im2col by strided slices + one matmul (1-D and 2-D; group 1, no dilation)"),
    "MaxPool": (_maxpool, "lowered: windows by reshape, max(a, b) = b + relu(a - b) (2-D, stride = kernel, no padding)"),
    "AveragePool": (lambda at, x: _windows(x, *_pool_attrs(at)).mean(dim=-1),
                    "lowered: windows by reshape, then a mean (2-D, stride = kernel, no padding)"),
    "GlobalAveragePool": (lambda at, x: x.mean(dim=list(range(2, x.dim())), keepdim=True), NATIVE),
}
NEAREST = "rewrite that part of the model with the ops of docs/onnx-ops.md, or keep it out of the circuit (--backbone)"
REFUSED = {   # the nearest supported alternative, where there is one
    "Dropout": "export the model in eval mode (model.eval()): dropout then disappears",
    "LogSoftmax": "end the model at the logits: --loss ce applies the softmax itself",
    "Gather": "an embedding lookup of private indices is not supported: feed one-hot or dense features (MatMul)",
    "ConvTranspose": "use Conv with the transposed weight on an upsampled input",
    "LSTM": "unroll the recurrence with MatMul, Sigmoid and Tanh",
    "GRU": "unroll the recurrence with MatMul, Sigmoid and Tanh",
    "ReduceMax": "MaxPool over the axis, or a mean (ReduceMean)",
    "Clip": "Relu (ReLU6 as Relu(x) - Relu(x - 6))",
    "LeakyRelu": "Relu",
    "HardSigmoid": "Sigmoid",
    "Cast": "export with a single float dtype",
}


def op_table() -> str:
    """docs/onnx-ops.md, generated from OPS and REFUSED (python -m zkpot.models.onnx_graph > docs/onnx-ops.md)."""
    rows = "\n".join(f"| {op} | {'supported' if how == NATIVE else how} |" for op, (_, how) in sorted(OPS.items()))
    refused = "\n".join(f"| {op} | {hint} |" for op, hint in sorted(REFUSED.items()))
    return f"""# ONNX ops a model may use

Generated from `models/onnx_graph.py` (`python -m zkpot.models.onnx_graph > docs/onnx-ops.md`; a test keeps
the two equal). `zkpot train --model model.onnx` interprets the graph node by node with these formulations;
the training step traced from it (forward, backward, update) is what ezkl proves. "supported": the torch op
itself, whose backward exports to ONNX and compiles in ezkl 22.3.0; otherwise, how it is lowered first.
Constant nodes are folded; float initializers of rank >= 1 are the parameters (BatchNormalization's running
statistics excepted), integer ones static shapes and axes. The graph's input must have static dimensions
after the batch (a CSV row is reshaped to them); one input, one output.

| op | how it is proved |
| --- | --- |
{rows}

Any other op is refused by `zkpot train` before any work, in one line naming the op, the node and the
nearest alternative; for these the alternative is:

| op | instead |
| --- | --- |
{refused}

Low-rank adapters (`--lora R`) sit beside the weight a Gemm or a MatMul multiplies its input by: a Gemm's (out, in)
weight LAYER.weight (transB=1, torch's Linear on 2-D input) as layer LAYER, a MatMul's (in, out) initializer W
(torch's Linear on 3-D input) as layer W_T; a weight another op also reads, a first operand, or a Gemm with transA
or alpha != 1 takes none, and naming it is refused in one line naming the node and op
([fine-tuning.md](fine-tuning.md#an-onnx-model)).

Exp, Sigmoid, Tanh, Erf (GELU) and Softmax are table lookups in ezkl: each one's input is clamped where
its function is constant in fixed point (`spec/lookups.py`), which changes no value and makes every table
a function of the scale alone, the same for any private data or weights.

What each op costs in a proved training step (forward, backward and update), in rows per element it
outputs, is measured by `python bench/ops.py` (each op between trained layers, against the same model with
the op replaced by a free one of its shape): [bench/results/ops.md](../bench/results/ops.md), and the
table in [docs/benchmarks.md](benchmarks.md). Whole models: `python bench/zoo.py`. Fixed point stays within
4 quanta (2^-8) of float for the convolutions and the tabular block, 8.5 for attention
(`tests/test_onnx_models.py`).

[Back to the README](../README.md)
"""


if __name__ == "__main__":
    print(op_table(), end="")
