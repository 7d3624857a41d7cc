"""What Lantern can and cannot do on this machine, gathered without side effects.

Each check returns a DoctorCheck (name, ok, detail). Checks never download, never create the
knowledge base, and never load model weights: they look at what is installed and on disk. Two
look further, because only trying shows it: an `openai` backend's endpoint is asked for its
model list, and each configured MCP server is started and asked for its tools.
"""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from pathlib import Path

from pydantic import BaseModel

from lantern.settings import Settings


class DoctorCheck(BaseModel):
    name: str
    ok: bool
    detail: str


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def check_python() -> DoctorCheck:
    ok = sys.version_info >= (3, 11)
    return DoctorCheck(name="python", ok=ok, detail=f"{platform.python_version()} at {sys.executable}")


def check_torch() -> DoctorCheck:
    try:
        import torch
    except ImportError:
        return DoctorCheck(name="torch", ok=False, detail="not installed; run ./setup.sh")
    if torch.cuda.is_available():
        device = f"CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}"
    else:
        device = f"CPU only ({torch.get_num_threads()} threads)"
    return DoctorCheck(name="torch", ok=True, detail=f"{torch.__version__}; {device}")


def check_packages() -> DoctorCheck:
    names = ("transformers", "lancedb", "sentence-transformers", "mcp", "textual", "pydantic")
    versions, missing = [], []
    for name in names:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    detail = ", ".join(versions) + (f"; missing: {', '.join(missing)} (run ./setup.sh)" if missing else "")
    return DoctorCheck(name="packages", ok=not missing, detail=detail)


def check_model(settings: Settings) -> DoctorCheck:
    """The reasoning backend and its model: weights on disk (ouro, hf) or an endpoint that answers (openai)."""
    if settings.backend == "hf":
        from lantern.backends.hf import resolve
        from lantern.errors import LanternError

        try:
            return DoctorCheck(name="model", ok=True, detail=f"backend hf, {settings.model}: {resolve(settings.model)}")
        except LanternError as exc:
            return DoctorCheck(name="model", ok=False, detail=str(exc))
    if settings.backend == "openai":
        from lantern.backends.openai_chat import OpenAIReasoner

        ok, detail = OpenAIReasoner(settings).reachable()
        return DoctorCheck(name="model", ok=ok, detail=f"backend openai, model {settings.model!r} at {detail}")
    from lantern.runtime.locate import locate, repo_id_for

    found = locate(settings.model)
    if found.path is not None:
        return DoctorCheck(name="model", ok=True, detail=f"backend ouro, {settings.model}: {found.path}")
    hint = f"; run `lantern model pull {settings.model}`" if repo_id_for(settings.model) else ""
    return DoctorCheck(
        name="model",
        ok=False,
        detail=f"backend ouro, {settings.model}: weights not found (looked in {', '.join(found.searched)}){hint}; "
        "`lantern ask` answers extractively until then",
    )


def check_embedder(settings: Settings) -> DoctorCheck:
    from lantern.embedding import resolve_embedder

    try:
        target = resolve_embedder(settings.embed_model)
    except Exception as exc:
        return DoctorCheck(name="embedder", ok=False, detail=str(exc))
    ok = Path(target).exists()
    detail = target if ok else f"{target} (not a local folder; it must be in the HF cache)"
    return DoctorCheck(name="embedder", ok=ok, detail=f"{settings.embed_model}: {detail}")


def check_knowledge_base(settings: Settings) -> DoctorCheck:
    path = settings.kb_path
    if not path.exists():
        return DoctorCheck(name="knowledge base", ok=False, detail=f"{path}: empty; run `lantern ingest kb/`")
    try:
        from lantern.knowledge.store import Store

        store = Store(path, settings.kb_table)
        rows, files, meta = store.count(), len(store.stored_files()), store.meta()
    except Exception as exc:
        return DoctorCheck(name="knowledge base", ok=False, detail=f"{path}: unreadable ({exc.__class__.__name__}: {exc})")
    size_mb = _dir_size(path) / 1e6
    detail = f"{path}: {files} files, {rows} chunks, {size_mb:.1f} MB"
    if meta.get("embed_model") and meta["embed_model"] != settings.embed_model:
        detail += f"; embedded with {meta['embed_model']}, not {settings.embed_model}: run `lantern ingest` to re-embed"
        return DoctorCheck(name="knowledge base", ok=False, detail=detail)
    if rows == 0:
        detail += "; run `lantern ingest kb/`"
    return DoctorCheck(name="knowledge base", ok=rows > 0, detail=detail)


def check_mcp(settings: Settings) -> list[DoctorCheck]:
    """Each configured MCP server, started for real: its tools, or why it failed with its stderr's tail."""
    from lantern.errors import LanternError
    from lantern.toolcalls.client import MCPTools
    from lantern.toolcalls.registry import configured_servers

    try:
        servers = configured_servers(settings)
    except LanternError as exc:
        return [DoctorCheck(name="mcp servers", ok=False, detail=str(exc))]
    if not servers:
        return [DoctorCheck(name="mcp servers", ok=True, detail="none configured (add [mcp_servers.NAME] to config.toml)")]
    checks = []
    for name, spec in sorted(servers.items()):
        tools = MCPTools({name: spec}, settings.logs_path, settings.tool_timeout)
        try:
            listed = tools.tools()
        finally:
            tools.close()
        if name in tools.problems:
            checks.append(DoctorCheck(name=f"mcp {name}", ok=False, detail=f"did not start: {tools.problems[name]}"))
        else:
            checks.append(DoctorCheck(name=f"mcp {name}", ok=True, detail=f"{len(listed)} tools: {', '.join(sorted(listed)) or 'none'}"))
    return checks


def check_home(settings: Settings) -> DoctorCheck:
    home = settings.home
    exists = home.exists()
    config = "config.toml present" if settings.config_path.exists() else "no config.toml (defaults)"
    return DoctorCheck(name="home", ok=True, detail=f"{home} ({'exists' if exists else 'not created yet'}; {config})")


def run_checks(settings: Settings) -> list[DoctorCheck]:
    return [
        check_python(),
        check_torch(),
        check_packages(),
        check_home(settings),
        check_model(settings),
        check_embedder(settings),
        check_knowledge_base(settings),
        *check_mcp(settings),
    ]
