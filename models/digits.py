"""The built-in fine-tuning example: a body pretrained on public digits, a head fine-tuned privately.

scikit-learn's digits (1,797 images of 8x8 pixels, 64 features, ten classes) ship with sklearn.
The rows are split once, by a public seed, into three disjoint parts:
  - public:   a 64-16-10 MLP is pretrained on them (float torch, Adam) to tell the ten digits apart;
              its body (64 -> 16, ReLU) is published as the base model's frozen first layer;
  - private:  the model owner's rows: a new head (16 -> 1) is fine-tuned on them, in the circuit, to
              tell even digits from odd ones (a task the pretraining never saw);
  - held out: rows neither saw, on which base, fixed-point and float fine-tuned models are compared.
Features are scaled by the public rows' mean and spread (the body's input convention).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPLIT_SEED = 0
PUBLIC_ROWS, PRIVATE_ROWS = 900, 64
HIDDEN = 16
TRAIN = "net.2.*"            # the head; net.0 (the pretrained body) stays frozen
PRETRAIN_EPOCHS = 60


@dataclass(frozen=True)
class Split:
    public: tuple[np.ndarray, np.ndarray]
    private: tuple[np.ndarray, np.ndarray]
    held_out: tuple[np.ndarray, np.ndarray]


def split() -> Split:
    """The public, private and held-out rows (features scaled by the public rows' statistics)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(d.target))
    pub, priv, held = (order[:PUBLIC_ROWS], order[PUBLIC_ROWS:PUBLIC_ROWS + PRIVATE_ROWS],
                       order[PUBLIC_ROWS + PRIVATE_ROWS:])
    mean, std = d.data[pub].mean(axis=0), d.data[pub].std(axis=0)
    X = (d.data - mean) / np.where(std > 0, std, 1.0)
    return Split((X[pub], d.target[pub]), (X[priv], d.target[priv]), (X[held], d.target[held]))


def even(digits: np.ndarray) -> np.ndarray:
    """The fine-tuning task's label: 1 for an even digit."""
    return (np.asarray(digits) % 2 == 0).astype(np.float64)


def pretrain(X: np.ndarray, digits: np.ndarray, seed: int = 0) -> dict:
    """The public half: a 64-16-10 MLP trained on the ten classes; returns its body's weights."""
    import torch

    from zkpot.models.zoo import MLP

    torch.manual_seed(seed)
    net = MLP(X.shape[1], [HIDDEN], 10)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=1e-3)
    x, y = torch.tensor(X, dtype=torch.float32), torch.tensor(digits, dtype=torch.long)
    for _ in range(PRETRAIN_EPOCHS):
        for idx in torch.randperm(len(x)).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    return {k: v.detach().clone() for k, v in net.state_dict().items() if k.startswith("net.0.")}


def base_model(body: dict, seed: int = 0) -> dict:
    """The fine-tuning run's base: the pretrained body and a new, seeded head for one output."""
    import torch

    from zkpot.models.zoo import MLP

    torch.manual_seed(seed)
    net = MLP(body["net.0.weight"].shape[1], [HIDDEN], 1)
    net.load_state_dict({**net.state_dict(), **body})
    return {k: v.detach().contiguous() for k, v in net.state_dict().items()}


def write_csv(path: Path, X: np.ndarray, y: np.ndarray) -> None:
    header = ",".join([f"px{i}" for i in range(X.shape[1])] + ["even"])
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header=header, comments="", fmt="%.6f")
