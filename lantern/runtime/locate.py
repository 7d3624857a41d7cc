"""Find Ouro checkpoints on disk, and download them when (and only when) asked.

A model reference is a short name (`ouro-1.4b`), a Hugging Face id (`ByteDance/Ouro-1.4B`) or a
local snapshot directory. Lookup order: a local directory, then the Hugging Face cache
(HF_HOME / HF_HUB_CACHE). Nothing here contacts the hub except `pull`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lantern.errors import ModelNotFound

SHORT_NAMES = {
    "ouro-1.4b": "ByteDance/Ouro-1.4B",
    "ouro-1.4b-thinking": "ByteDance/Ouro-1.4B-Thinking",
    "ouro-2.6b": "ByteDance/Ouro-2.6B",
    "ouro-2.6b-thinking": "ByteDance/Ouro-2.6B-Thinking",
}
SNAPSHOT_FILES = ("config.json",)
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


@dataclass
class Located:
    """Result of a lookup: the snapshot directory (or None) and every place that was searched."""

    reference: str
    repo_id: str | None
    path: Path | None
    searched: list[str] = field(default_factory=list)


def repo_id_for(reference: str) -> str | None:
    """The hub id a reference names, or None when it is a filesystem path."""
    key = reference.lower()
    if key in SHORT_NAMES:
        return SHORT_NAMES[key]
    if reference.count("/") == 1 and not reference.startswith((".", "/", "~")) and not Path(reference).exists():
        return reference
    return None


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, honouring HF_HUB_CACHE and HF_HOME."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    hf_home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")).expanduser()
    return hf_home / "hub"


def is_snapshot(path: Path) -> bool:
    return (path / "config.json").is_file() and any((path / name).is_file() for name in WEIGHT_FILES)


def cached_snapshot(repo_id: str) -> tuple[Path | None, Path]:
    """The newest complete snapshot of repo_id in the HF cache, and the folder looked in."""
    repo_dir = hub_cache_dir() / ("models--" + repo_id.replace("/", "--"))
    ref = repo_dir / "refs" / "main"
    candidates = []
    if ref.is_file():
        candidates.append(repo_dir / "snapshots" / ref.read_text().strip())
    if (repo_dir / "snapshots").is_dir():
        candidates += sorted((repo_dir / "snapshots").iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    for candidate in candidates:
        if is_snapshot(candidate):
            return candidate, repo_dir
    return None, repo_dir


def locate(reference: str) -> Located:
    """Find a local snapshot for a model reference without touching the network."""
    repo_id = repo_id_for(reference)
    found = Located(reference, repo_id, None)
    if repo_id is None:
        path = Path(reference).expanduser()
        found.searched.append(str(path))
        if is_snapshot(path):
            found.path = path
        return found
    path, looked = cached_snapshot(repo_id)
    found.searched.append(str(looked))
    found.path = path
    return found


def require(reference: str) -> Path:
    """The snapshot directory for reference, or a ModelNotFound that says where we looked and what to run."""
    found = locate(reference)
    if found.path is not None:
        return found.path
    where = ", ".join(found.searched)
    if found.repo_id is None:
        raise ModelNotFound(
            f"no checkpoint at {where} (needs config.json and model.safetensors); "
            f"pass a snapshot directory or a model name such as ouro-1.4b."
        )
    short = next((k for k, v in SHORT_NAMES.items() if v == found.repo_id), found.repo_id)
    raise ModelNotFound(f"model {found.repo_id} is not downloaded (looked in {where}); run `lantern model pull {short}`.")


def pull(reference: str) -> Path:
    """Download a snapshot into the HF cache, with a progress bar; returns its directory."""
    repo_id = repo_id_for(reference)
    if repo_id is None:
        raise ModelNotFound(f"{reference} is a local path, not a hub model; nothing to pull.")
    os.environ.pop("HF_HUB_OFFLINE", None)
    from huggingface_hub import constants, snapshot_download

    constants.HF_HUB_OFFLINE = False
    try:
        path = snapshot_download(
            repo_id,
            cache_dir=hub_cache_dir(),
            allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja"],
        )
    except Exception as exc:  # the hub client raises many types; the user needs one line
        raise ModelNotFound(f"could not download {repo_id}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}") from exc
    return Path(path)
