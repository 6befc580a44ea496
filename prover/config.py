"""A run's configuration: plain values, saved as RUN/config.json, all of it public."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from zkpot.models import backbone
from zkpot.spec.artifacts import ArtifactError, read_json, write_json
from zkpot.spec.protocol import DEFAULT_BOUNDS, ONNX_MODEL
from zkpot.spec.schedule import chunks, schedule


@dataclass
class RunConfig:
    model: str = "logreg"             # logreg | mlp | onnx:<sha256> (a registered graph) | path/to/file.py:ClassName
    hidden: list[int] = field(default_factory=lambda: [8])  # mlp only
    loss: str = "bce"                 # bce | mse | ce
    lr: float = 0.5
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 16
    epochs: int = 2
    steps_per_proof: int = 1          # SGD steps unrolled in one circuit; must divide epochs x batches (0: auto)
    data: str | None = None           # .csv / .npz; None: built-in breast-cancer data
    label: str | None = None          # CSV label column; None: the last column
    features: int | None = None       # keep the first N feature columns (None: all)
    rows: int | None = None           # train on N rows drawn with `seed` (None: all)
    base: str | None = None           # base model (.safetensors or torch state dict); None: seeded init
    train: str = "*"                  # which parameters train (comma-separated globs); the rest stay frozen
    lora_rank: int = 0                # low-rank adapters of this rank on lora_layers (0: none)
    lora_layers: list[str] = field(default_factory=list)  # Linear layers that get an adapter
    backbone: str | None = None       # a frozen ONNX graph run on each row before training (outside the circuit)
    owners: list[str] = field(default_factory=list)  # data owners' handoffs (prover/owner.py), in batch order
    classes: int | None = None        # ce: the number of classes (None: 1 + the largest label present)
    seed: int = 0                     # public: the initial weights when there is no base model (nothing else)
    schedule_seed: int = 0            # public: the per-epoch batch order
    scale: int = 8                    # fixed point: values are integers times 2^-scale
    feature_bound: float = DEFAULT_BOUNDS["features"]  # declared: standardised features are clipped to +-this
    weight_bound: float = DEFAULT_BOUNDS["weights"]    # declared: every weight (and velocity) of every state
    dp_clip: float | None = None      # DP-SGD: each example's gradient clipped to this L2 norm (None: plain SGD)
    dp_noise: float | None = None     # DP-SGD: noise multiplier SIGMA (Gaussian noise of std SIGMA * clip on the sum)
    dp_delta: float | None = None     # DP-SGD: the delta at which the verifier derives epsilon

    @property
    def dp(self) -> bool:
        return self.dp_clip is not None

    def model_spec(self, in_features: int, out_features: int) -> dict:
        kwargs = {"in_features": in_features, "out_features": out_features}
        if self.model == "mlp":
            kwargs["hidden"] = list(self.hidden)
        spec = {"name": self.model, "kwargs": kwargs}
        if self.graph is not None:   # an ONNX model: named by its graph's sha256
            spec = {"name": ONNX_MODEL, "graph": self.graph, "kwargs": kwargs}
        if self.lora_rank:
            spec["adapters"] = {"rank": self.lora_rank, "layers": list(self.lora_layers) or _linear_layers(spec)}
        return spec

    def run_claims(self, layout, num_batches: int, frozen: dict) -> dict:
        """The manifest's run section: everything public about the run (the circuit's claims among it).
        `frozen`: {names, sha256} of the parameters that do not train (prover/train.py: frozen_claims)."""
        return {
            "model": self.model_spec(layout.features, layout.label_width),
            "loss": self.loss,
            "optimizer": {"name": "sgd", "lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay},
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "steps_per_proof": self.steps_per_proof,
            "num_batches": num_batches,
            "schedule_seed": self.schedule_seed,
            "scale": self.scale,
            "bounds": {"features": float(self.feature_bound), "weights": float(self.weight_bound)},
            "layout": layout.to_dict(),
            "frozen": frozen,
            "backbone": backbone.describe(Path(self.backbone)) if self.backbone else None,  # the bundle's copy
            **({"dp": {"clip": float(self.dp_clip), "noise": float(self.dp_noise), "delta": float(self.dp_delta)}}
               if self.dp else {}),
        }

    def save(self, path: Path) -> None:
        write_json(path, asdict(self))

    @classmethod
    def load(cls, path: Path) -> "RunConfig":
        raw = read_json(path)
        known = {f.name for f in fields(cls)}
        if not isinstance(raw, dict) or set(raw) - known:
            raise ArtifactError(f"{path}: unknown config keys {sorted(set(raw) - known) if isinstance(raw, dict) else raw!r}")
        return cls(**raw)

    @property
    def graph(self) -> str | None:
        """The sha256 of an ONNX model's graph (models/onnx_graph.py), or None."""
        return self.model.removeprefix("onnx:") if self.model.startswith("onnx:") else None

    def validate(self) -> None:
        if self.graph is not None and self.base:
            raise ValueError("an ONNX model carries its own base weights (its initializers): drop --base")
        if self.batch_size < 1 or self.epochs < 1 or self.steps_per_proof < 0:
            raise ValueError("batch size and epochs must be at least 1, steps per proof at least 1 (or auto)")
        if not (self.lr > 0 and self.lr < 1e3):
            raise ValueError(f"learning rate must be positive, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.classes is not None and (self.loss != "ce" or not 2 <= self.classes <= 4096):
            raise ValueError(f"--classes is for ce runs (class labels): the number of classes, 2..4096; got {self.classes} "
                             f"with loss {self.loss}")
        if not 1 <= self.scale <= 16:
            raise ValueError(f"scale must be in 1..16, got {self.scale}")
        if self.owners:
            clash = [opt for opt, v in (("--data", self.data), ("--rows", self.rows), ("--features", self.features),
                                        ("--label", self.label), ("--backbone", self.backbone)) if v is not None]
            if clash:
                raise ValueError(f"--owner-data takes the owners' committed batches as they are: drop {', '.join(clash)}")
        for name in ("feature_bound", "weight_bound"):
            if not 0 < getattr(self, name) <= 1e4:
                raise ValueError(f"{name.replace('_', ' ')} must be in (0, 10000], got {getattr(self, name)}")
        dp = {"--dp-clip": self.dp_clip, "--dp-noise": self.dp_noise, "--dp-delta": self.dp_delta}
        if any(v is not None for v in dp.values()):
            missing = [k for k, v in dp.items() if v is None]
            if missing:
                raise ValueError(f"a DP-SGD run needs {', '.join(dp)}: missing {', '.join(missing)}")
            from zkpot.spec import dp as dp_spec

            try:
                dp_spec.check_shape({"clip": self.dp_clip, "noise": self.dp_noise, "delta": self.dp_delta}, "dp")
            except Exception as e:
                raise ValueError(str(e.args[0]).replace("run.dp must give", "--dp-clip, --dp-noise, --dp-delta must be")) from None


def _linear_layers(spec: dict) -> list[str]:
    """Every nn.Linear of the model a spec names (the default layers for adapters)."""
    import torch

    from zkpot.models import zoo

    with torch.device("meta"):
        module = zoo.build({k: v for k, v in spec.items() if k != "adapters"})
    if hasattr(module, "adaptable"):   # an ONNX graph: its Gemm and MatMul weights (models/onnx_graph.py)
        return module.adaptable()
    return [n for n, m in module.named_modules() if isinstance(m, torch.nn.Linear)]


def dumps(cfg: RunConfig) -> str:
    return json.dumps(asdict(cfg), sort_keys=True)


def chunks_of(run) -> list[list[tuple[int, int]]]:
    """Run directory `run`'s schedule cut into proofs, as (epoch, batch) per step."""
    cfg = RunConfig.load(run.config)
    order = schedule(len(read_json(run.partition)["batches"]), cfg.epochs, cfg.schedule_seed)
    return chunks(order, cfg.steps_per_proof)


def resolve_model(model: str) -> str:
    """--model as a config names it: an ONNX file is registered by its graph's sha256 ("onnx:<sha256>")."""
    if not model.lower().endswith(".onnx"):
        return model
    from zkpot.models import onnx_graph

    try:
        return "onnx:" + onnx_graph.register(Path(model))
    except onnx_graph.GraphError as e:
        raise ValueError(str(e)) from None
