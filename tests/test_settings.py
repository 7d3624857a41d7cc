from pathlib import Path

import pytest

from lantern.errors import LanternError
from lantern.settings import Settings, load_settings, setting_origins


def write_config(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)


def test_defaults_live_under_lantern_home(isolated_home):
    settings = load_settings()
    assert settings.home == isolated_home
    assert settings.kb_path == isolated_home / "kb.lancedb"
    assert settings.mode == "deep"
    assert setting_origins()["mode"] == "default"


def test_precedence_flag_over_env_over_file_over_default(isolated_home, monkeypatch):
    write_config(isolated_home, 'mode = "fast"\ntop_k = 3\nexit_threshold = 0.7\n')
    monkeypatch.setenv("LANTERN_TOP_K", "9")
    settings = load_settings({"exit_threshold": 0.9})
    assert settings.mode == "fast"  # from config.toml
    assert settings.top_k == 9  # env beats config.toml
    assert settings.exit_threshold == 0.9  # flag beats config.toml
    origins = setting_origins({"exit_threshold": 0.9})
    assert origins["mode"].startswith("config")
    assert origins["top_k"] == "env LANTERN_TOP_K"
    assert origins["exit_threshold"] == "flag"
    assert origins["model"] == "default"


def test_home_flag_reads_that_homes_config(tmp_path):
    other = tmp_path / "elsewhere"
    write_config(other, 'model = "/models/ouro"\n')
    settings = load_settings({"home": str(other)})
    assert settings.home == other
    assert settings.model == "/models/ouro"


@pytest.mark.parametrize(
    "text, fragment",
    [("mode = ", "not valid TOML"), ('modle = "fast"', "unknown setting"), ('mode = "turbo"', "invalid setting mode = 'turbo' (from "), ('top_k = 0', "top_k = 0 (from ")],
)
def test_bad_config_is_one_clear_line(isolated_home, text, fragment):
    write_config(isolated_home, text)
    with pytest.raises(LanternError) as info:
        load_settings()
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_every_setting_is_documented():
    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no docstring"
