"""The official Ouro code beside Lantern's runtime, in one process, on the same weights and prompt.

    .venv/bin/python bench/official.py --code DIR [--shape 1.4b] [--prompt-len 128] [--new-tokens 32]
                                       [--rounds 3] [--quant none|int8|int4] [--threads N] [--json]

DIR holds the official remote code, `modeling_ouro.py` and the `configuration_ouro.py` it imports
(both ship inside every Ouro snapshot on the Hugging Face hub; nothing of them is part of
Lantern). The weights are the random checkpoint `lantern bench --shape` uses (LANTERN_HOME/bench/
random-<shape>-seed0, official tensor names), the prompt the same seeded token ids, greedy, EOS
ignored, batch 1. The official model runs through its own `generate` with its own cache, all loop
steps for every token (it has no early exit that saves compute), so it is compared with Lantern's
FAST mode. Lantern runs with `--quant` (default none); the official code always in bf16.

Both models are loaded once (the bf16 ones share the same mapped weight tensors), then every round
runs the official code and Lantern one after the other, the order alternating between rounds; a
token's time is stamped as it is produced (a streamer for `generate`, the generator for Lantern).
Printed: decode and prefill tok/s of both per round, the medians, and the median of the per-round
ratios (Lantern / official), the figure a shared machine's drift disturbs least; plus whether the
two produced the same greedy tokens (in bf16 they should be identical).

The remote code was written for transformers 4.57 and breaks under 5.x (a renamed mask argument,
a RoPE table that is gone); install 4.57.1 into a folder of its own and put it first on
PYTHONPATH for this script (Lantern itself only uses transformers' tokenizer class, which both
have). One shim is applied either way: the "default" RoPE initialiser is registered when missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def import_official(code: Path):
    """The official modeling module, imported as a package from DIR (it imports `.configuration_ouro`)."""
    code = code.expanduser().resolve()
    missing = [name for name in ("modeling_ouro.py", "configuration_ouro.py") if not (code / name).exists()]
    if missing:
        sys.exit(f"error: {code} has no {' or '.join(missing)}; point --code at a folder holding the official "
                 "modeling_ouro.py and configuration_ouro.py (they ship inside every Ouro snapshot).")
    package = "ouro_official_code"
    spec = importlib.util.spec_from_file_location(package, code / "__init__.py", submodule_search_locations=[str(code)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[package] = module  # an empty package: its two modules load from `code`
    configuration = importlib.import_module(f"{package}.configuration_ouro")
    modeling = importlib.import_module(f"{package}.modeling_ouro")
    return configuration, modeling


def default_rope(config, device=None, seq_len=None, layer_type=None) -> tuple[torch.Tensor, float]:
    """Plain RoPE frequencies, inv_freq = 1 / theta^(2i/d), unscaled: what transformers 4.x registered
    as "default" and the official code asks for by that name (transformers 5.x no longer has it)."""
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64).to(device=device, dtype=torch.float32) / head_dim
    return 1.0 / (config.rope_theta ** exponents), 1.0


def load_official(code: Path, checkpoint: Path, tensors: dict[str, torch.Tensor]):
    """The official OuroForCausalLM over `tensors` (bf16, shared with Lantern's model where it can)."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    ROPE_INIT_FUNCTIONS.setdefault("default", default_rope)  # a shim for transformers 5.x, nothing else changes
    configuration, modeling = import_official(code)
    config = configuration.OuroConfig(**json.loads((checkpoint / "config.json").read_text()))
    config._attn_implementation = "sdpa"
    with torch.device("meta"):
        model = modeling.OuroForCausalLM(config)
    state = {name: t.to(torch.bfloat16) for name, t in tensors.items()}
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    missing = [name for name in missing if not name.endswith("rotary_emb.inv_freq")]
    if missing:
        sys.exit(f"error: the official model wants tensors the checkpoint lacks, e.g. {missing[0]}")
    # Buffers computed at construction (RoPE frequencies) were built on `meta`: build them for real.
    model.model.rotary_emb = modeling.OuroRotaryEmbedding(config=config)
    return model.eval().requires_grad_(False)


class TokenClock:
    """A `generate` streamer that stamps the time each new token arrives (the first put is the prompt)."""

    def __init__(self) -> None:
        self.stamps: list[float] = []
        self.tokens: list[int] = []
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.stamps.append(time.perf_counter())
        self.tokens += value.reshape(-1).tolist()

    def end(self) -> None:
        pass


def timed(stamps: list[float], started: float, prompt_len: int) -> dict[str, float]:
    """Prefill tok/s (prompt over time to the first token) and decode tok/s (the tokens after it)."""
    decode_seconds = stamps[-1] - stamps[0]
    return {"prefill_tok_s": prompt_len / (stamps[0] - started), "decode_tok_s": (len(stamps) - 1) / decode_seconds}


@torch.inference_mode()
def run_official(model, prompt: torch.Tensor, new_tokens: int) -> tuple[dict[str, float], list[int]]:
    clock = TokenClock()
    started = time.perf_counter()
    model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                   do_sample=False, streamer=clock, pad_token_id=0)
    return timed(clock.stamps, started, prompt.shape[1]), clock.tokens


@torch.inference_mode()
def run_lantern(lm, prompt: torch.Tensor, new_tokens: int) -> tuple[dict[str, float], list[int]]:
    from lantern.runtime.generate import GenerationOptions, generate

    opts = GenerationOptions(max_new_tokens=new_tokens, mode="fast", stop_ids=set())
    stamps, tokens = [], []
    started = time.perf_counter()
    for out in generate(lm.model, None, prompt, opts):
        stamps.append(time.perf_counter())
        tokens.append(out[0].id)
    return timed(stamps, started, prompt.shape[1]), tokens


def _common_prefix(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", type=Path, required=True, help="folder with the official modeling_ouro.py and configuration_ouro.py")
    parser.add_argument("--shape", default="1.4b")
    parser.add_argument("--prompt-len", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quant", default="none", choices=["none", "int8", "int4"], help="Lantern's weights (the official code runs bf16)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for both; 0 chooses by measurement, as Lantern does")
    parser.add_argument("--home", type=Path, default=None, help="LANTERN_HOME (default: the usual one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from lantern.runtime import load
    from lantern.runtime.bench import random_checkpoint_dir
    from lantern.runtime.loader import check_tensors, read_weights
    from lantern.runtime.config import OuroConfig
    from lantern.runtime.threads import use_threads
    from lantern.settings import default_home

    threads = use_threads(args.threads)
    checkpoint = random_checkpoint_dir(args.home or default_home(), args.shape)
    lm = load(checkpoint, dtype="bfloat16", quant=args.quant)
    # The official model shares Lantern's mapped tensors when both are bf16 (no second copy).
    shared = {name: p for name, p in lm.model.state_dict().items()} if args.quant == "none" else \
        check_tensors(read_weights(checkpoint), OuroConfig.from_json(checkpoint / "config.json"), checkpoint)
    gen = torch.Generator().manual_seed(0)
    prompt = torch.randint(3, min(lm.config.vocab_size, 4096), (1, args.prompt_len), generator=gen)  # as `lantern bench`
    try:
        official = load_official(args.code, checkpoint, shared)
        run_official(official, prompt[:, :8], 3)  # warm-up, both
    except Exception as exc:  # the remote code breaks across transformers versions
        import transformers

        sys.exit(f"error: the official code failed under transformers {transformers.__version__} ({type(exc).__name__}: {exc}); "
                 "it was written for transformers 4.57: pip install --target DIR transformers==4.57.1 'huggingface_hub<1' "
                 "'tokenizers<0.23' and run this with PYTHONPATH=DIR.")
    run_lantern(lm, prompt[:, :8], 3)

    rounds = []
    for index in range(args.rounds):
        order = ["official", "lantern"] if index % 2 == 0 else ["lantern", "official"]
        row = {}
        for who in order:
            figures, tokens = run_official(official, prompt, args.new_tokens) if who == "official" else run_lantern(lm, prompt, args.new_tokens)
            row[who] = figures | {"tokens": tokens}
        row["decode_ratio"] = row["lantern"]["decode_tok_s"] / row["official"]["decode_tok_s"]
        row["prefill_ratio"] = row["lantern"]["prefill_tok_s"] / row["official"]["prefill_tok_s"]
        rounds.append(row)
        if not args.json:
            print(f"round {index + 1} ({' then '.join(order)}): official {row['official']['decode_tok_s']:.3f} tok/s decode, "
                  f"{row['official']['prefill_tok_s']:.1f} prefill; lantern {row['lantern']['decode_tok_s']:.3f} decode, "
                  f"{row['lantern']['prefill_tok_s']:.1f} prefill; ratio {row['decode_ratio']:.2f}x", flush=True)

    def median(who: str, key: str) -> float:
        return round(statistics.median(r[who][key] for r in rounds), 3)

    result = {
        "shape": args.shape, "prompt_len": args.prompt_len, "new_tokens": args.new_tokens, "rounds": args.rounds, "threads": threads,
        "lantern_quant": args.quant, "official_dtype": "bfloat16", "lantern_mode": "fast",
        "official_decode_tok_s": median("official", "decode_tok_s"), "lantern_decode_tok_s": median("lantern", "decode_tok_s"),
        "official_prefill_tok_s": median("official", "prefill_tok_s"), "lantern_prefill_tok_s": median("lantern", "prefill_tok_s"),
        "decode_ratio": round(statistics.median(r["decode_ratio"] for r in rounds), 3),
        "decode_ratio_each_round": [round(r["decode_ratio"], 3) for r in rounds],
        "prefill_ratio": round(statistics.median(r["prefill_ratio"] for r in rounds), 3),
        "same_greedy_tokens": all(r["official"]["tokens"] == r["lantern"]["tokens"] for r in rounds),
        # How far the two greedy sequences agree before the first difference (random weights are
        # chaotic: one different rounding early on changes everything after it).
        "same_tokens_before_first_difference": min(_common_prefix(r["official"]["tokens"], r["lantern"]["tokens"]) for r in rounds),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"official {result['official_decode_tok_s']} tok/s, lantern ({args.quant}) {result['lantern_decode_tok_s']} tok/s decode: "
              f"{result['decode_ratio']}x (per round {result['decode_ratio_each_round']}); prefill {result['prefill_ratio']}x; "
              f"same greedy tokens: {result['same_greedy_tokens']} (first {result['same_tokens_before_first_difference']} the same)")
    return result


if __name__ == "__main__":
    main()
