"""The Ouro model configuration: the config.json keys the runtime needs, validated, plus presets.

`OuroConfig.from_json(path)` reads an official snapshot's config.json and refuses what this
runtime cannot run (a different model_type, sliding windows, inconsistent head sizes) with one
clear line. `PRESETS` holds the official shapes (1.4B, 2.6B) and small ones for tests.
This module knows nothing about weights or tensors.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from lantern.errors import CheckpointError


@dataclass(frozen=True)
class OuroConfig:
    vocab_size: int = 49152
    hidden_size: int = 2048
    intermediate_size: int = 5632
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    num_key_value_heads: int = 16
    head_dim: int = 128
    max_position_embeddings: int = 65536
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6
    total_ut_steps: int = 4
    early_exit_threshold: float = 1.0
    tie_word_embeddings: bool = False
    bos_token_id: int = 0
    eos_token_id: int = 0
    pad_token_id: int = 0
    torch_dtype: str = "bfloat16"

    @property
    def num_steps(self) -> int:
        return self.total_ut_steps

    @property
    def kv_groups(self) -> int:
        return self.num_attention_heads // self.num_key_value_heads

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config.json") -> "OuroConfig":
        model_type = data.get("model_type")
        if model_type not in (None, "ouro"):
            raise CheckpointError(f"{where}: model_type is {model_type!r}, not 'ouro'; Lantern's runtime runs Ouro checkpoints only.")
        if data.get("sliding_window") and data.get("use_sliding_window"):
            raise CheckpointError(f"{where}: sliding-window attention is not supported by this runtime.")
        if data.get("rope_scaling"):
            raise CheckpointError(f"{where}: rope_scaling {data['rope_scaling']!r} is not supported by this runtime.")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if isinstance(values.get("eos_token_id"), list):
            values["eos_token_id"] = values["eos_token_id"][0]
        if "head_dim" not in data and "hidden_size" in data and "num_attention_heads" in data:
            values["head_dim"] = data["hidden_size"] // data["num_attention_heads"]
        required = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")
        missing = [k for k in required if k not in data]
        if missing:
            raise CheckpointError(f"{where}: missing key(s) {', '.join(missing)}; is this an Ouro config.json?")
        try:
            config = cls(**values)
        except TypeError as exc:
            raise CheckpointError(f"{where}: {exc}") from None
        config.validate(where)
        return config

    @classmethod
    def from_json(cls, path: Path) -> "OuroConfig":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CheckpointError(f"{path} is missing; a snapshot needs config.json next to model.safetensors.") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{path} is not valid JSON ({exc}); re-download the model with `lantern model pull`.") from None
        return cls.from_dict(data, str(path))

    def validate(self, where: str = "config") -> None:
        positive = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "total_ut_steps")
        bad = [k for k in positive if int(getattr(self, k)) <= 0]
        if bad:
            raise CheckpointError(f"{where}: {', '.join(bad)} must be positive.")
        if self.num_attention_heads % self.num_key_value_heads:
            raise CheckpointError(f"{where}: num_attention_heads must be a multiple of num_key_value_heads.")
        if self.head_dim % 2:
            raise CheckpointError(f"{where}: head_dim must be even for rotary embeddings.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"model_type": "ouro", "architectures": ["OuroForCausalLM"], "hidden_act": "silu"}


PRESETS: dict[str, OuroConfig] = {
    "1.4b": OuroConfig(),
    "2.6b": OuroConfig(num_hidden_layers=48),
    "tiny": OuroConfig(vocab_size=384, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=4, head_dim=16, max_position_embeddings=512),
    "small": OuroConfig(vocab_size=512, hidden_size=256, intermediate_size=704, num_hidden_layers=4, num_attention_heads=4,
                        num_key_value_heads=4, head_dim=64, max_position_embeddings=2048),
}


def preset(name: str, **overrides: Any) -> OuroConfig:
    if name not in PRESETS:
        raise CheckpointError(f"unknown shape {name!r}; choose one of {', '.join(PRESETS)}.")
    return replace(PRESETS[name], **overrides)
