"""The files tool server: reading inside the roots, every refusal at their edge, startup, and real MCP round trips."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

FILES = Path(__file__).parents[2] / "tools" / "files.py"
SPEC = importlib.util.spec_from_file_location("files", FILES)
files = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(files)


@pytest.fixture
def tree(tmp_path):
    """root/ (text, a subfolder, a binary file, links out), notes/ (a second root), outside/ (never reachable)."""
    root, notes, outside = tmp_path / "root", tmp_path / "notes", tmp_path / "outside"
    for folder in (root / "sub", notes, outside):
        folder.mkdir(parents=True)
    (root / "a.txt").write_text("one\ntwo\r\nthree\n")
    (root / "sub" / "h.txt").write_text("hello world\n")
    (root / "image.bin").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    (notes / "todo.md").write_text("buy hello kitty\n")
    (outside / "secret.txt").write_text("the secret\n")
    (root / "link_out.txt").symlink_to(outside / "secret.txt")
    (root / "linkdir").symlink_to(outside)
    (root / "link_in.txt").symlink_to(root / "a.txt")
    return tmp_path


@pytest.fixture
def roots(tree):
    return files.Roots([tree / "root", tree / "notes"])


def test_read_file_numbers_lines_and_reads_a_range(roots):
    whole = files.read_text(roots, "a.txt")
    assert (whole.text, whole.total_lines, whole.end_line) == ("one\ntwo\nthree", 3, 3)
    assert files.file_text(files.read_text(roots, "a.txt", 2, 3)) == "a.txt, lines 2-3 of 3:\n2  two\n3  three"


def test_paths_by_root_name_absolute_inside_and_links_that_stay_inside(roots, tree):
    assert files.read_text(roots, "notes/todo.md").path == "notes/todo.md"
    assert files.read_text(roots, str(tree / "root" / "sub" / "h.txt")).text == "hello world"
    assert files.read_text(roots, "link_in.txt").text.startswith("one")


def test_at_most_max_lines_per_call_with_a_note(roots, monkeypatch):
    monkeypatch.setattr(files, "MAX_LINES", 2)
    part = files.read_text(roots, "a.txt")
    assert (part.end_line, part.text) == (2, "one\ntwo") and "start_line=3" in part.note


def test_traversal_is_refused(roots):
    with pytest.raises(files.FileAccessError, match=r"^'\.\.' is not allowed in paths"):
        files.read_text(roots, "../outside/secret.txt")
    with pytest.raises(files.FileAccessError, match=r"'\.\.' is not allowed"):
        files.list_entries(roots, "sub/../..")


def test_absolute_path_outside_is_refused_without_saying_whether_it_exists(roots, tree):
    with pytest.raises(files.FileAccessError, match="is outside the allowed roots"):
        files.read_text(roots, str(tree / "outside" / "secret.txt"))
    with pytest.raises(files.FileAccessError, match="is outside the allowed roots"):
        files.read_text(roots, str(tree / "outside" / "missing.txt"))  # same answer: nothing leaks


def test_a_symlink_inside_a_root_pointing_outside_is_refused(roots):
    with pytest.raises(files.FileAccessError, match="is outside the allowed roots"):
        files.read_text(roots, "link_out.txt")
    with pytest.raises(files.FileAccessError, match="is outside the allowed roots"):
        files.read_text(roots, "linkdir/secret.txt")


def test_binary_and_big_files_are_refused(roots, tree):
    with pytest.raises(files.FileAccessError, match="binary file"):
        files.read_text(roots, "image.bin")  # not UTF-8
    (tree / "root" / "nul.dat").write_bytes(b"valid utf-8\0but binary")
    with pytest.raises(files.FileAccessError, match="binary file"):
        files.read_text(roots, "nul.dat")
    (tree / "root" / "big.txt").write_bytes(b"x" * (files.MAX_FILE_BYTES + 1))
    with pytest.raises(files.FileAccessError, match="up to 2 MB"):
        files.read_text(roots, "big.txt")


def test_list_files_shows_types_sizes_and_links_out_without_following_them(roots):
    listing = files.list_entries(roots)
    entries = {entry.path: (entry.type, entry.size) for entry in listing.entries}
    assert entries["a.txt"] == ("file", 15) and entries["sub"] == ("directory", None)
    assert entries["link_out.txt"] == ("link", None) and entries["linkdir"] == ("link", None)
    assert "sub/h.txt" in {entry.path for entry in files.list_entries(roots, ".", "**/*.txt").entries}
    assert files.list_entries(roots, ".", "linkdir/*").entries == []  # a glob through a link out finds nothing


def test_list_files_is_capped_with_a_note(roots, monkeypatch):
    monkeypatch.setattr(files, "MAX_ENTRIES", 2)
    listing = files.list_entries(roots)
    assert len(listing.entries) == 2 and listing.truncated and "only 2 are listed" in files.listing_text(listing)


def test_search_files_finds_lines_in_text_files_only(roots):
    found = files.search(roots, "HELLO")
    assert [(m.path, m.line) for m in found.matches] == [("sub/h.txt", 1)]
    assert [m.path for m in files.search(roots, "hel+o", "notes", regex=True).matches] == ["notes/todo.md"]


def test_search_files_stops_at_max_matches(roots, monkeypatch):
    monkeypatch.setattr(files, "MAX_MATCHES", 2)
    found = files.search(roots, ".", regex=True)  # a.txt alone has three matching lines
    assert len(found.matches) == 2 and found.truncated and "stopped early" in files.search_text(found)


def test_roots_come_from_arguments_and_the_environment(tree):
    environ = {"LANTERN_FILES_ROOTS": os.pathsep.join([str(tree / "notes"), ""])}
    assert files.configured_roots(["--root", str(tree / "root")], environ) == [(tree / "root").resolve(), (tree / "notes").resolve()]
    with pytest.raises(files.RootsError, match="no roots configured"):
        files.configured_roots([], {})
    with pytest.raises(files.RootsError, match="not a directory"):
        files.configured_roots(["--root", str(tree / "root" / "a.txt")], {})


def test_no_roots_is_a_startup_error_with_exit_status_2():
    environ = {key: value for key, value in os.environ.items() if key != "LANTERN_FILES_ROOTS"}
    done = subprocess.run([sys.executable, str(FILES)], capture_output=True, text=True, env=environ, timeout=60)
    assert done.returncode == 2 and done.stderr.strip() == "files.py: no roots configured: pass --root DIR or set LANTERN_FILES_ROOTS"


def test_mcp_round_trip_in_process(roots):
    from mcp import Client

    async def main():
        async with Client(files.make_server(roots)) as client:
            tools = (await client.list_tools()).tools
            assert {tool.name for tool in tools} == {"list_files", "read_file", "search_files"}
            # Lantern refuses tools that do not declare themselves read-only and closed-world.
            assert all(t.annotations.read_only_hint and t.annotations.open_world_hint is False for t in tools)
            read = await client.call_tool("read_file", {"path": "a.txt", "start_line": 2})
            assert read.structured_content["text"] == "two\nthree" and read.content[0].text.endswith("2  two\n3  three")
            failed = await client.call_tool("read_file", {"path": "link_out.txt"})
            assert failed.is_error and "outside the allowed roots" in failed.content[0].text

    anyio.run(main)


def test_mcp_round_trip_over_stdio_with_a_root_argument(tree):
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    async def main():
        params = StdioServerParameters(command=sys.executable, args=[str(FILES), "--root", str(tree / "root")])
        async with Client(params) as client:
            read = await client.call_tool("read_file", {"path": "sub/h.txt"})
            assert not read.is_error and read.structured_content["text"] == "hello world"

    anyio.run(main)
