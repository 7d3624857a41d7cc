"""bench/official.py: the official Ouro code beside Lantern's runtime. The official code is not part
of Lantern and is not downloaded by tests: the side-by-side run needs LANTERN_OFFICIAL_CODE, a folder
with the official modeling_ouro.py and configuration_ouro.py (and a transformers that runs them,
e.g. PYTHONPATH with transformers 4.57.1), and is skipped without it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "official.py"


def run_script(*args: str, home: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--home", str(home), *args], capture_output=True, text=True,
                          timeout=600, env=env)


def test_a_folder_without_the_official_code_gets_one_line(tmp_path):
    done = run_script("--code", str(tmp_path), "--shape", "tiny", "--new-tokens", "3", home=tmp_path / "home")
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("error:") and "modeling_ouro.py" in done.stderr


def test_the_rope_shim_is_lanterns_rope():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from official import default_rope
    finally:
        sys.path.remove(str(ROOT / "bench"))
    from lantern.runtime.config import preset
    from lantern.runtime.model import rope_tables

    config = preset("tiny")
    inv_freq, scaling = default_rope(config)
    positions = torch.arange(7)[None]
    cos, sin = rope_tables(positions, config.head_dim, config.rope_theta, torch.float32)
    angles = positions[0, :, None].float() * inv_freq
    assert scaling == 1.0
    assert torch.allclose(cos[0, 0], torch.cat([angles, angles], -1).cos()) and torch.allclose(sin[0, 0], torch.cat([angles, angles], -1).sin())


@pytest.mark.skipif(not os.environ.get("LANTERN_OFFICIAL_CODE"), reason="no official Ouro code (set LANTERN_OFFICIAL_CODE)")
def test_official_code_and_lantern_decode_the_same_tokens_side_by_side(tmp_path):
    done = run_script("--code", os.environ["LANTERN_OFFICIAL_CODE"], "--shape", "tiny", "--prompt-len", "16", "--new-tokens", "6",
                      "--rounds", "2", "--json", home=tmp_path / "home", env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["same_greedy_tokens"] is True
    assert result["official_decode_tok_s"] > 0 and result["lantern_decode_tok_s"] > 0 and len(result["decode_ratio_each_round"]) == 2
