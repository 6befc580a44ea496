"""`zkpot demo --finetune`: the built-in fine-tuning example (models/digits.py), its files and its
held-out comparison. The pretraining is public and runs here in float; only the head's fine-tuning
on the private rows is proved."""
from __future__ import annotations

import numpy as np

from zkpot.models import digits
from zkpot.prover.config import RunConfig
from zkpot.prover.run import RunDir
from zkpot.spec.artifacts import atomic_path


def prepare_inputs(run: RunDir, say=print) -> RunConfig:
    """RUN/example/: the base model (pretrained body, new head), the private rows as CSV, and the
    held-out rows; returns the fine-tuning run's configuration."""
    from safetensors.torch import save_file

    d = run.root / "example"
    d.mkdir(parents=True, exist_ok=True)
    s = digits.split()
    say(f"pretraining a {s.public[0].shape[1]}-{digits.HIDDEN}-10 MLP on {len(s.public[1])} public digits "
        "(float torch, Adam): its body becomes the frozen first layer")
    base = digits.base_model(digits.pretrain(*s.public))
    with atomic_path(d / "base.safetensors") as tmp:
        save_file(base, str(tmp))
    with atomic_path(d / "private.csv") as tmp:
        digits.write_csv(tmp, s.private[0], digits.even(s.private[1]))
    with atomic_path(d / "held_out.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, X=s.held_out[0], y=digits.even(s.held_out[1]))
    return RunConfig(model="mlp", hidden=[digits.HIDDEN], loss="bce", lr=0.5, batch_size=8, epochs=2,
                     data=str(d / "private.csv"), base=str(d / "base.safetensors"), train=digits.TRAIN)


def held_out_accuracy(run: RunDir, cfg: RunConfig) -> dict[str, float]:
    """Accuracy on rows neither the pretraining nor the fine-tuning saw, scaled as `train` scaled the
    private rows (their own mean and spread, clipped to the feature bound)."""
    import torch
    from safetensors.torch import load_file

    from zkpot.models import data as datasets
    from zkpot.models import zoo

    train_X, _ = datasets.load(cfg.data)
    with np.load(run.root / "example" / "held_out.npz") as z:
        X, y = z["X"], z["y"]
    std = train_X.std(axis=0)
    X = np.clip((X - train_X.mean(axis=0)) / np.where(std > 0, std, 1.0), -cfg.feature_bound, cfg.feature_bound)
    net = zoo.build(cfg.model_spec(X.shape[1], 1))  # (with adapters, if the run has them)
    out = {}
    for name, path in (("base", run.base_model), ("fixed-point fine-tuned", run.final_model),
                       ("float fine-tuned", run.float_model)):
        net.load_state_dict(load_file(str(path)))
        with torch.no_grad():
            pred = (net(torch.tensor(X, dtype=torch.float32))[:, 0] > 0).numpy()
        out[name] = float((pred == (y > 0.5)).mean())
    out["rows"] = len(y)
    return out
