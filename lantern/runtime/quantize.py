"""int8 weight-only quantization, per output channel, for memory-constrained machines.

`quantize_weight(w)` -> (int8 weights, one scale per output row): w ~= q * scale, with
scale = max|row| / 127. `Int8Linear` swaps in for nn.Linear: on CPU with bf16/fp32 activations it
calls PyTorch's fused int8 matrix kernel (`torch._weight_int8pack_mm`), which reads half the bytes
of bf16 weights; elsewhere it dequantizes on the fly. `quantize_int8(model)` converts every
projection and the output head in place (the 1-output exit gate stays in full precision) and
returns the int8 tensors, which the loader saves once per checkpoint (LANTERN_HOME/quantized/) and
maps back with `apply_int8` on later loads, so int8 loads skip quantizing and never touch the
bf16 projection weights.
The accuracy cost is measured, not assumed: `lantern bench --int8` reports top-1 agreement with
the unquantized model over a fixed prompt set.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def quantize_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    w = weight.float()
    scale = w.abs().amax(dim=1).clamp(min=1e-8) / 127.0
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scale


class Int8Linear(nn.Module):
    def __init__(self, q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> None:
        super().__init__()
        self.register_buffer("weight_int8", q)
        self.register_buffer("scale", scale.to(dtype))
        self.in_features, self.out_features = q.shape[1], q.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        if x.device.type == "cpu" and x.dtype in (torch.bfloat16, torch.float32, torch.float16):
            out = torch._weight_int8pack_mm(x.reshape(-1, self.in_features), self.weight_int8, self.scale.to(x.dtype))
            return out.reshape(*shape[:-1], self.out_features)
        return F.linear(x, self.weight_int8.to(x.dtype)) * self.scale.to(x.dtype)


def _quantizable(model: nn.Module):
    """(parent, attribute, full name, Linear) for every projection and the head (not the 1-output gate)."""
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Linear) and child.out_features > 1:
                yield module, child_name, f"{name}.{child_name}" if name else child_name, child


def quantize_int8(model: nn.Module) -> dict[str, torch.Tensor]:
    """Replace the projection and head Linears with Int8Linear in place; returns the quantized
    tensors (`<name>.weight_int8`, `<name>.scale`) so they can be saved and reused."""
    saved: dict[str, torch.Tensor] = {}
    for parent, attribute, name, linear in _quantizable(model):
        q, scale = quantize_weight(linear.weight.data)
        setattr(parent, attribute, Int8Linear(q, scale, linear.weight.dtype))
        saved[f"{name}.weight_int8"], saved[f"{name}.scale"] = q.cpu(), scale.float().cpu()
    return saved


def apply_int8(model: nn.Module, tensors: dict[str, torch.Tensor]) -> bool:
    """Swap in Int8Linear from previously saved tensors; False (model untouched) if any is missing or misshaped."""
    plan = []
    for parent, attribute, name, linear in _quantizable(model):
        q, scale = tensors.get(f"{name}.weight_int8"), tensors.get(f"{name}.scale")
        if q is None or scale is None or tuple(q.shape) != tuple(linear.weight.shape) or q.dtype != torch.int8:
            return False
        if q.device.type == "cpu" and q.data_ptr() % 64:
            q = q.clone()  # the fused int8 kernel crashes on weights that are not 64-byte aligned (mmap offsets)
        plan.append((parent, attribute, q.to(linear.weight.device), scale.to(linear.weight.device), linear.weight.dtype))
    for parent, attribute, q, scale, dtype in plan:
        setattr(parent, attribute, Int8Linear(q, scale, dtype))
    return True
