"""Models are ordinary torch modules; a spec (plain dict) names one so a run can rebuild it.

Built in: logistic regression and a ReLU MLP. A user plugs in their own module with
{"name": "path/to/file.py:ClassName", "kwargs": {...}}: any nn.Module whose forward maps
a (batch, features) tensor to (batch, outputs) and whose ops ezkl can compile.
"""
from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from zkpot.models.lora import add_adapters

from zkpot.spec.protocol import ONNX_MODEL


class LogisticRegression(nn.Module):
    def __init__(self, in_features: int, out_features: int = 1):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        return self.linear(x)


class MLP(nn.Module):
    def __init__(self, in_features: int, hidden: list[int] | tuple[int, ...] = (8,), out_features: int = 1):
        super().__init__()
        layers, width = [], in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


BUILTIN = {"logreg": LogisticRegression, "mlp": MLP}


class ModelError(ValueError):
    """A model spec or base-model file that cannot be used."""


def _load_user_class(ref: str):
    path, _, cls_name = ref.rpartition(":")
    if not path or not cls_name:
        raise ModelError(f"model {ref!r}: expected one of {sorted(BUILTIN)} or 'file.py:ClassName'")
    file = Path(path)
    if not file.is_file():
        raise ModelError(f"model file not found: {file}")
    spec = importlib.util.spec_from_file_location(f"zkpot_user_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(file.resolve().parent))  # its own imports (a `models` package beside it) resolve as in its project
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # user code: report, do not crash
        raise ModelError(f"could not import {file}: {e}") from None
    finally:
        sys.path.remove(str(file.resolve().parent))
    cls = getattr(module, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ModelError(f"{file} has no nn.Module subclass named {cls_name!r}")
    return cls


ONNX = ONNX_MODEL   # spec {name: "onnx", graph: sha256, kwargs: {in_features, out_features}}: models/onnx_graph.py


def _onnx_module(spec: dict) -> nn.Module:
    """A registered ONNX graph as a module; its input and output widths must be the spec's."""
    from zkpot.models import onnx_graph

    try:
        module = onnx_graph.load_module(spec["graph"])
    except onnx_graph.GraphError as e:
        raise ModelError(str(e)) from None
    if spec.get("adapters"):
        try:
            module.add_adapters(spec["adapters"]["rank"], spec["adapters"]["layers"])
        except onnx_graph.GraphError as e:
            raise ModelError(str(e)) from None
    kw = spec.get("kwargs", {})
    if (kw.get("in_features"), kw.get("out_features")) != (module.features, module.outputs):
        raise ModelError(f"the ONNX model takes {module.features} features (input {module.input_shape}) to "
                         f"{module.outputs} outputs; the data has {kw.get('in_features')} feature columns and "
                         f"{kw.get('out_features')} label output(s)")
    return module


def build(spec: dict, seed: int | None = None) -> nn.Module:
    """Instantiate the module a spec names; a seed makes its initial weights reproducible."""
    name, kwargs = spec["name"], dict(spec.get("kwargs", {}))
    if name == ONNX:
        return _onnx_module(spec)
    cls = BUILTIN.get(name) or _load_user_class(name)
    if seed is not None:
        torch.manual_seed(seed)
    try:
        module = cls(**kwargs)
    except TypeError as e:
        raise ModelError(f"model {name!r}: bad arguments {kwargs}: {e}") from None
    except Exception as e:  # user code: report, do not crash
        raise ModelError(f"model {name!r}: constructor failed ({e.__class__.__name__}: {e})") from None
    if spec.get("adapters"):
        try:
            add_adapters(module, spec["adapters"]["rank"], spec["adapters"]["layers"])
        except ValueError as e:
            raise ModelError(f"model {name!r}: {e}") from None
    return module


def load_base(module: nn.Module, path: Path) -> None:
    """Load base weights (safetensors or a torch state dict) into module, shapes checked."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"base model not found: {path}")
    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelError(f"base model {path}: unreadable ({e.__class__.__name__})") from None
    if not isinstance(state, dict):
        raise ModelError(f"base model {path}: not a state dict")
    own = dict(module.named_parameters())
    fresh = {n for n in own if n.endswith((".lora_a", ".lora_b")) and n not in state}
    own = {n: p for n, p in own.items() if n not in fresh}  # new adapters keep their (seeded) initial values
    if set(state) != set(own):
        raise ModelError(f"base model {path}: parameters {sorted(state)} do not match the model's {sorted(own)}")
    for name, p in own.items():
        t = state[name]
        if tuple(t.shape) != tuple(p.shape):
            raise ModelError(f"base model {path}: {name} has shape {tuple(t.shape)}, model expects {tuple(p.shape)}")
        if not torch.isfinite(t).all():
            raise ModelError(f"base model {path}: {name} contains NaN or infinite values")
    with torch.no_grad():
        for name, p in own.items():
            p.copy_(state[name].to(p.dtype))


def export_onnx(spec: dict, out: Path, shape: tuple[int, ...], base: Path | None = None, seed: int = 0) -> str:
    """A module of one's own (`file.py:Class`) as an ONNX model zkpot binds (`zkpot export`): built from `spec`
    (seeded, or holding the `base` weights), exported by torch.onnx.export at batch 1 with its defaults, one
    example of `shape`; registered (every op checked) and its sha256 returned."""
    import contextlib
    import io
    import logging

    from zkpot.models import onnx_graph
    from zkpot.spec.artifacts import atomic_path

    module = build(spec, seed=seed)
    if base is not None:
        load_base(module, base)
    if math.prod(shape) != spec["kwargs"]["in_features"]:
        raise ModelError(f"an example of shape {tuple(shape)} has {math.prod(shape)} values, not --features "
                         f"{spec['kwargs']['in_features']}")
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with atomic_path(out) as tmp, contextlib.redirect_stdout(io.StringIO()):
        try:
            torch.onnx.export(module.eval(), (torch.zeros(1, *shape),), str(tmp.with_suffix(".onnx")))
        except Exception as e:  # user code: report, do not crash
            raise ModelError(f"torch.onnx.export cannot export {spec['name']}: {e.__class__.__name__}: "
                             f"{str(e).splitlines()[0][:160] if str(e) else ''}") from None
        tmp.write_bytes(onnx_graph.canonical_bytes(tmp.with_suffix(".onnx")))
        for extra in (tmp.with_suffix(".onnx"), tmp.with_suffix(".onnx.data")):
            extra.unlink(missing_ok=True)
    try:
        return onnx_graph.register(out)
    except onnx_graph.GraphError as e:
        Path(out).unlink()
        raise ModelError(str(e)) from None
