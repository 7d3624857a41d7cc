"""Model judgement, the verifier's last layer: the loaded LoopLM asked "does this passage support
the claim? yes or no", read as P(yes) from its next-token distribution.

The prompt is prompts/answer.toml's `judge` template. P(yes) = softmax over the first tokens of
" yes"/"yes"/"Yes" against " no"/"no"/"No" at the answer position, from the loop step the Q-exit
rule picks there (the official semantics: all steps computed for a prompt, one step's logits read).
This module knows nothing about the other verifier layers; support.py combines them.
"""

from __future__ import annotations

import torch

from lantern.runtime.exit import exit_step


class LoopLMJudge:
    def __init__(self, lm, template: str, exit_threshold: float = 0.5) -> None:
        self.lm = lm
        self.template = template
        self.exit_threshold = exit_threshold
        yes = self._answer_tokens(["yes", " yes", "Yes", " Yes"])
        no = self._answer_tokens(["no", " no", "No", " No"])
        self.yes, self.no = sorted(yes - no), sorted(no - yes)

    def _answer_tokens(self, words: list[str]) -> set[int]:
        """Ids of the spellings that are one token each (else each word's first token)."""
        encoded = [self.lm.tokenizer.encode(w, add_special_tokens=False) for w in words]
        single = {ids[0] for ids in encoded if len(ids) == 1}
        return single or {ids[0] for ids in encoded if ids}

    @torch.inference_mode()
    def __call__(self, claim: str, evidence: str) -> float:
        ids = self.lm.chat_ids([{"role": "user", "content": self.template.format(claim=claim, evidence=evidence)}])
        logits, gates = self.lm.step_logits(ids)  # [T, 1, S, V], [T, 1, S]
        gate_logits = torch.logit(gates[:, 0, -1].float().clamp(1e-6, 1 - 1e-6))
        step = int(exit_step(gate_logits, self.exit_threshold))
        last = logits[step, 0, -1].float()
        yes = torch.logsumexp(last[self.yes], dim=0)
        no = torch.logsumexp(last[self.no], dim=0)
        return float(torch.sigmoid(yes - no))


class CrossEncoderJudge:
    """An NLI or fact-checking cross-encoder (sentence-transformers CrossEncoder: an id in the HF
    cache or a local folder), read as P(the evidence entails the claim).

    Three-way NLI heads use the label whose name contains "entail"; single-output heads (fact
    checkers that score consistency) are read through a sigmoid.
    """

    def __init__(self, model: str) -> None:
        from sentence_transformers import CrossEncoder

        from lantern.errors import LanternError

        try:
            self.model = CrossEncoder(model, device="cpu")
        except Exception as exc:
            raise LanternError(
                f"cannot load verifier_model {model!r} ({exc.__class__.__name__}); give a local CrossEncoder folder "
                f"or a model id already in the HF cache, or unset verifier_model."
            ) from exc
        labels = {int(i): name.lower() for i, name in (self.model.config.id2label or {}).items()}
        self.entail = next((i for i, name in labels.items() if "entail" in name), None)
        if self.model.config.num_labels > 1 and self.entail is None:
            raise LanternError(f"verifier_model {model!r} has no 'entailment' label ({', '.join(labels.values())}); use an NLI model.")

    def __call__(self, claim: str, evidence: str) -> float:
        raw = self.model.predict([(evidence, claim)], activation_fn=torch.nn.Identity(), convert_to_numpy=True, show_progress_bar=False)
        scores = torch.as_tensor(raw)[0]
        if scores.numel() == 1:
            return float(torch.sigmoid(scores.reshape(())))
        return float(torch.softmax(scores.float(), dim=-1)[self.entail])
