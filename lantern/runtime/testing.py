"""Random Ouro checkpoints in exactly the official snapshot format, for tests and benchmarks.

`make_random_checkpoint(path, shape)` writes config.json, model.safetensors (official tensor names
and shapes, random weights), tokenizer.json (a byte-level BPE trained on a small built-in text, with
the official special tokens at ids 0, 1, 2), tokenizer_config.json (ChatML chat template) and
generation_config.json. The code path that loads it is the one that loads the real models.
`gate_bias` shifts the exit gate so DEEP mode exits at different depths without trained weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from lantern.runtime.config import OuroConfig, preset

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
CHATML_THINKING = CHATML.replace("'<|im_start|>assistant\\n'", "'<|im_start|>assistant\\n<think>\\n'")
_CORPUS = (
    "Lantern answers questions from a knowledge base and proves every claim. Ouro is a looped language model: "
    "it applies the same layers four times per token and an exit gate decides when to stop. "
    "The quick brown fox jumps over the lazy dog. 0123456789 + - * / = ( ) [ ] { } , . ; : ! ? ' \" "
    "Passages are numbered [1] [2] [3]; every sentence cites one. The answer is 96. Yes. No. "
)


def random_tensors(config: OuroConfig, seed: int = 0, gate_bias: float = 0.0, dtype: torch.dtype = torch.bfloat16) -> dict[str, torch.Tensor]:
    """Official names and shapes; small random weights so activations stay finite over 4 loop steps."""
    gen = torch.Generator().manual_seed(seed)
    c = config

    def normal(*shape: int, std: float = 0.02) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * std).to(dtype)

    def norm_weight() -> torch.Tensor:
        return (1.0 + 0.1 * torch.randn(c.hidden_size, generator=gen)).to(dtype)

    tensors = {"model.embed_tokens.weight": normal(c.vocab_size, c.hidden_size, std=1.0)}
    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}."
        tensors |= {
            p + "self_attn.q_proj.weight": normal(c.num_attention_heads * c.head_dim, c.hidden_size),
            p + "self_attn.k_proj.weight": normal(c.num_key_value_heads * c.head_dim, c.hidden_size),
            p + "self_attn.v_proj.weight": normal(c.num_key_value_heads * c.head_dim, c.hidden_size),
            p + "self_attn.o_proj.weight": normal(c.hidden_size, c.num_attention_heads * c.head_dim),
            p + "mlp.gate_proj.weight": normal(c.intermediate_size, c.hidden_size),
            p + "mlp.up_proj.weight": normal(c.intermediate_size, c.hidden_size),
            p + "mlp.down_proj.weight": normal(c.hidden_size, c.intermediate_size),
            p + "input_layernorm.weight": norm_weight(),
            p + "input_layernorm_2.weight": norm_weight(),
            p + "post_attention_layernorm.weight": norm_weight(),
            p + "post_attention_layernorm_2.weight": norm_weight(),
        }
    tensors["model.norm.weight"] = norm_weight()
    tensors["model.early_exit_gate.weight"] = normal(1, c.hidden_size, std=1.0 / c.hidden_size**0.5)
    tensors["model.early_exit_gate.bias"] = torch.tensor([gate_bias], dtype=dtype)
    tensors["lm_head.weight"] = normal(c.vocab_size, c.hidden_size, std=1.0 / c.hidden_size**0.5)
    return tensors


def write_tokenizer(path: Path, vocab_size: int, thinking: bool = False) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    tokenizer.save(str(path / "tokenizer.json"))
    added = {str(i): {"content": tok, "special": True, "lstrip": False, "rstrip": False, "normalized": False, "single_word": False}
             for i, tok in enumerate(SPECIAL_TOKENS)}
    (path / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "GPT2Tokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "model_max_length": 65536, "added_tokens_decoder": added,
        "chat_template": CHATML_THINKING if thinking else CHATML,
    }, indent=1))


def make_random_checkpoint(path: str | Path, shape: str | OuroConfig = "tiny", seed: int = 0, gate_bias: float = 0.0,
                           dtype: torch.dtype = torch.bfloat16, thinking: bool = False, shards: int = 1) -> Path:
    """Write a complete random snapshot directory at `path` and return it."""
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = shape if isinstance(shape, OuroConfig) else preset(shape)
    (path / "config.json").write_text(json.dumps(config.to_dict() | {"torch_dtype": str(dtype).removeprefix("torch.")}, indent=1))
    (path / "generation_config.json").write_text(json.dumps({"bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0}, indent=1))
    write_tokenizer(path, min(config.vocab_size, 4096), thinking)
    tensors = random_tensors(config, seed, gate_bias, dtype)
    if shards <= 1:
        save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    else:
        names = list(tensors)
        weight_map = {}
        for i in range(shards):
            part = names[i::shards]
            file = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
            save_file({n: tensors[n] for n in part}, str(path / file), metadata={"format": "pt"})
            weight_map |= {n: file for n in part}
        total = sum(t.numel() * t.element_size() for t in tensors.values())
        (path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}))
    return path
