"""The Q-exit rule: per-step exit gates -> the loop step at which a token stops. Pure functions.

lambda_t = sigmoid(gate_t). The probability of exiting exactly at step t is
p_t = lambda_t * prod_{j<t} (1 - lambda_j) for t < T-1, and the last step takes what is left.
The exit step is the first t whose cumulative probability reaches the threshold q, else T-1.

Lantern evaluates the rule in float32 (the official code does it in bf16, where a cumulative 0.998
rounds to 1.0 and can exit early even at q = 1.0; Lantern does not reproduce that rounding).
`min_steps`/`max_steps` (1-based counts) clamp the result. With only the gates seen so far the
rule can be applied online: `exits_now` tells, after step t, whether the token stops there.
"""

from __future__ import annotations

import torch


def exit_probabilities(gate_logits: torch.Tensor) -> torch.Tensor:
    """[..., T] gate logits -> [..., T] probabilities of exiting at each step (they sum to 1)."""
    lam = torch.sigmoid(gate_logits.float())
    survive = torch.cumprod(1.0 - lam, dim=-1)
    before = torch.cat([torch.ones_like(survive[..., :1]), survive[..., :-1]], dim=-1)
    probs = lam * before
    probs[..., -1] = before[..., -1]
    return probs


def cumulative_exit(gates_so_far: torch.Tensor) -> torch.Tensor:
    """[..., t+1] gate logits of the steps run so far -> [...] probability of having exited by step t
    (step t not being the last). The online decode loop and `exit_step` both use this, so they agree bit for bit."""
    lam = torch.sigmoid(gates_so_far.float())
    survive = torch.cumprod(1.0 - lam, dim=-1)
    before = torch.cat([torch.ones_like(survive[..., :1]), survive[..., :-1]], dim=-1)
    return torch.cumsum(lam * before, dim=-1)[..., -1]


def exit_step(gate_logits: torch.Tensor, threshold: float, min_steps: int = 1, max_steps: int | None = None) -> torch.Tensor:
    """[..., T] gate logits -> [...] 0-based exit step under the Q-exit rule with clamps."""
    steps = gate_logits.shape[-1]
    result = torch.full(gate_logits.shape[:-1], steps - 1, dtype=torch.long, device=gate_logits.device)
    decided = torch.zeros(gate_logits.shape[:-1], dtype=torch.bool, device=gate_logits.device)
    for t in range(steps):
        stop = exits_now(cumulative_exit(gate_logits[..., : t + 1]), t, steps, threshold, min_steps, max_steps) & ~decided
        result[stop] = t
        decided |= stop
    return result


def exits_now(cdf_so_far: torch.Tensor, step: int, num_steps: int, threshold: float, min_steps: int = 1, max_steps: int | None = None) -> torch.Tensor:
    """Online form: given the cumulative exit probability after `step` (0-based), does the token stop here?"""
    last = min(max_steps or num_steps, num_steps) - 1
    if step >= last:
        return torch.ones_like(cdf_so_far, dtype=torch.bool)
    if step + 1 < min_steps:
        return torch.zeros_like(cdf_so_far, dtype=torch.bool)
    return cdf_so_far >= threshold
