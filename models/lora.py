"""Low-rank adapters (LoRA): y = x W^T + b + (x A^T) B^T beside a frozen Linear layer (W, b).

A model spec's "adapters" {rank, layers} puts an adapter on each named nn.Linear; the adapter's
A (rank x in, seeded) and B (out x rank, zero, so the base model's behaviour is unchanged at
step 0) are ordinary parameters `<layer>.lora_a`, `<layer>.lora_b`, traced and proved like any
other. Training only them (`--train '*.lora_*'`) freezes W and b as constants of the circuit.
The released model can be merged: W + B A, one Linear again (spec/weights.py: merge_adapters).
"""
from __future__ import annotations

import torch
from torch import nn

MAX_RANK = 64


class LoRALinear(nn.Module):
    """A Linear layer's weight and bias, and a rank-r adapter beside them."""

    def __init__(self, base: nn.Linear, rank: int):
        super().__init__()
        self.weight, self.bias = base.weight, base.bias
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device))
        if self.lora_a.device.type != "meta":
            nn.init.kaiming_uniform_(self.lora_a, a=5 ** 0.5)

    def forward(self, x):
        return nn.functional.linear(x, self.weight, self.bias) + nn.functional.linear(
            nn.functional.linear(x, self.lora_a), self.lora_b)


def add_adapters(module: nn.Module, rank: int, layers: list[str]) -> nn.Module:
    """Replace each named nn.Linear of `module` by a LoRALinear of this rank (in place)."""
    if not 1 <= rank <= MAX_RANK:
        raise ValueError(f"adapter rank must be in 1..{MAX_RANK}, got {rank}")
    named = dict(module.named_modules())
    linear = [n for n, m in named.items() if isinstance(m, nn.Linear)]
    if not layers:
        raise ValueError(f"adapters name no layer (the model's Linear layers: {', '.join(linear)})")
    for name in layers:
        if layers.count(name) > 1:   # (merged twice, W + 2 B A, were it allowed)
            raise ValueError(f"adapter layer {name!r} is named twice")
        if not isinstance(named.get(name), nn.Linear):
            raise ValueError(f"adapter layer {name!r} is not a Linear layer of the model ({', '.join(linear)})")
        parent_name, _, attr = name.rpartition(".")
        setattr(named[parent_name] if parent_name else module, attr, LoRALinear(named[name], rank))
    return module
