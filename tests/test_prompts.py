"""Prompt templates as data: the built-in file, and a user's folder laid over it."""

import pytest

from lantern.errors import LanternError
from lantern.prompts import load_prompts


def test_a_users_prompt_file_overrides_what_it_names_and_keeps_the_rest(tmp_path):
    (tmp_path / "answer.toml").write_text('not_in_kb = "Nothing here, sorry."\n')
    builtin, mine = load_prompts("answer"), load_prompts("answer", str(tmp_path))
    assert mine["not_in_kb"] == "Nothing here, sorry." and builtin["not_in_kb"] != mine["not_in_kb"]
    # A key the user's older file lacks (added in a later release) comes from the built-in file.
    assert mine["nothing_verified"] == builtin["nothing_verified"] and mine["system"] == builtin["system"]


def test_a_broken_or_missing_prompt_file_is_a_clear_error(tmp_path):
    (tmp_path / "answer.toml").write_text('not_in_kb = "unterminated\n')
    with pytest.raises(LanternError, match="not valid TOML"):
        load_prompts("answer", str(tmp_path))
    with pytest.raises(LanternError, match="is missing"):
        load_prompts("answer", str(tmp_path / "nowhere"))
