"""Lantern's files MCP tool server: read-only access to the files under the folders you allow.

What it knows: the files and folders under its roots, given on the command line
(`python tools/files.py --root DIR [--root DIR ...]`) and/or in LANTERN_FILES_ROOTS (folders
separated by os.pathsep, ':' on Unix); without any root it refuses to start (exit status 2).
- `list_files` lists entries under a folder (a glob pattern such as "*.md" or "**/*.py"), at
  most 1000 per call, with their type and size.
- `read_file` returns a UTF-8 text file's lines with their numbers, at most 2000 lines per call,
  from files of at most 2 MB; binary (or non-UTF-8) files are refused.
- `search_files` finds lines containing a text (or matching a regular expression) in the text
  files under a folder, at most 200 matches, skipping hidden folders.

Paths are relative to the first root, or start with a root's folder name ("notes/todo.md"; a
leading root name wins over a same-named subfolder of the first root); absolute paths are accepted
when they lie inside a root. Nothing outside the roots is reachable: '..' in a path, absolute paths
elsewhere, and symbolic links that resolve outside every root are refused, and a refusal says
nothing about whether the outside file exists.

What it does not do: write, create, move or delete anything (no tool can), read other encodings
than UTF-8, look inside archives or documents (PDF, Office), or follow links out of the roots.
"""

import argparse
import itertools
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

MAX_ENTRIES = 1000
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_LINES = 2000
MAX_MATCHES = 200
MAX_SEARCH_FILES = 10_000  # a search of a huge tree stops here rather than running for minutes
MAX_MATCH_CHARS = 300
ROOTS_VARIABLE = "LANTERN_FILES_ROOTS"


class FileAccessError(ToolError, ValueError):
    """A path outside the roots, missing, or a file that cannot be shown as text.

    A ToolError, so MCPServer hands its one-line message to the model instead of a bare
    "Error executing tool"."""


class RootsError(ValueError):
    """The roots given at startup are missing or unusable."""


# --- roots and paths -----------------------------------------------------------------------------

def configured_roots(argv: list[str] | None, environ: dict[str, str]) -> list[Path]:
    """The resolved root folders from --root arguments, then LANTERN_FILES_ROOTS; RootsError if none."""
    parser = argparse.ArgumentParser(prog="files.py", description="Read-only MCP access to files under the given roots.")
    parser.add_argument("--root", action="append", default=[], metavar="DIR", help="a folder the tools may read (repeatable)")
    arguments = parser.parse_args(argv)
    texts = arguments.root + [text for text in environ.get(ROOTS_VARIABLE, "").split(os.pathsep) if text]
    if not texts:
        raise RootsError(f"no roots configured: pass --root DIR or set {ROOTS_VARIABLE}")
    roots: list[Path] = []
    for text in texts:
        root = Path(text).expanduser()
        if not root.is_dir():
            raise RootsError(f"root {text!r} is not a directory")
        if root.resolve() not in roots:
            roots.append(root.resolve())
    names = [root.name for root in roots]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate is not None:
        raise RootsError(f"two roots are named {duplicate!r}; paths could not tell them apart")
    return roots


class Roots:
    """The allowed folders, and the one place where a requested path becomes a real one."""

    def __init__(self, roots: list[Path]):
        self.roots = [root.resolve() for root in roots]
        self.by_name = {root.name: root for root in self.roots}

    def locate(self, path: str) -> Path:
        """The resolved, existing path `path` names inside a root; FileAccessError otherwise."""
        requested = Path(path.strip() or ".")
        if ".." in requested.parts:
            raise FileAccessError(f"'..' is not allowed in paths: {path!r}")
        full = requested if requested.is_absolute() else self._under_root(requested)
        try:
            resolved = full.resolve()  # follows symbolic links, so a link out of the roots lands outside
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symbolic link loop
            raise FileAccessError(f"cannot resolve {path!r}: {exc}") from None
        # Containment is checked before existence, so a refusal tells nothing about outside files.
        if not self.contains(resolved):
            raise FileAccessError(f"{path!r} is outside the allowed roots ({', '.join(self.by_name)})")
        if not resolved.exists():
            raise FileAccessError(f"no such file or folder: {path!r}")
        return resolved

    def contains(self, resolved: Path) -> bool:
        return any(resolved.is_relative_to(root) for root in self.roots)

    def display(self, path: Path) -> str:
        """`path` (inside a root) as the tools write it, in a form `locate` reads back to the same file."""
        root = next(root for root in self.roots if path.is_relative_to(root))
        relative = path.relative_to(root)
        if root == self.roots[0] and (not relative.parts or relative.parts[0] not in self.by_name):
            return relative.as_posix()
        return (Path(root.name) / relative).as_posix()

    def _under_root(self, requested: Path) -> Path:
        parts = requested.parts
        if parts and parts[0] in self.by_name:
            return self.by_name[parts[0]].joinpath(*parts[1:])
        return self.roots[0] / requested


# --- list_files ----------------------------------------------------------------------------------

class Entry(BaseModel):
    path: str
    type: Literal["file", "directory", "link", "other"] = Field(
        description="'link' is a symbolic link that leads outside the roots (or nowhere); it cannot be read.")
    size: int | None = Field(description="Size in bytes, for files.")


class Listing(BaseModel):
    path: str
    pattern: str
    entries: list[Entry]
    truncated: bool = Field(description=f"True when more than {MAX_ENTRIES} entries matched and only {MAX_ENTRIES} are listed.")


def list_entries(roots: Roots, path: str = ".", pattern: str = "*") -> Listing:
    folder = roots.locate(path)
    if not folder.is_dir():
        raise FileAccessError(f"not a folder: {path!r} (use read_file for files)")
    if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
        raise FileAccessError(f"the pattern must be relative and without '..': {pattern!r}")
    # Taking only MAX_ENTRIES + 1 keeps a huge tree from being walked in full; the cut is then
    # among the first entries found, not the first in sorted order.
    found = list(itertools.islice(folder.glob(pattern or "*"), MAX_ENTRIES + 1))
    entries = [_entry(roots, found_path) for found_path in sorted(found[:MAX_ENTRIES])]
    entries = [entry for entry in entries if entry is not None]
    return Listing(path=roots.display(folder), pattern=pattern, entries=entries, truncated=len(found) > MAX_ENTRIES)


def _entry(roots: Roots, path: Path) -> Entry | None:
    # A glob can pass through a linked folder; nothing found beyond the roots is shown.
    if not roots.contains(path.parent.resolve()):
        return None
    shown = roots.display(path.parent.resolve() / path.name)
    if not roots.contains(path.resolve()) or not path.exists():
        return Entry(path=shown, type="link", size=None)
    if path.is_dir():
        return Entry(path=shown, type="directory", size=None)
    if path.is_file():
        return Entry(path=shown, type="file", size=path.stat().st_size)
    return Entry(path=shown, type="other", size=None)


def listing_text(listing: Listing) -> str:
    header = f"{_count(len(listing.entries), 'entry', 'entries')} in {listing.path} matching {listing.pattern!r}"
    if listing.truncated:
        header += f" (more matched; only {MAX_ENTRIES} are listed: narrow the path or pattern)"
    lines = [f"{e.path}{'/' if e.type == 'directory' else ''}  ({e.type}{'' if e.size is None else f', {e.size:,} bytes'})"
             for e in listing.entries]
    return "\n".join([header + ":", *lines]) if lines else header


# --- read_file -----------------------------------------------------------------------------------

class FileText(BaseModel):
    path: str
    start_line: int
    end_line: int = Field(description="The last line returned (0 for an empty file).")
    total_lines: int
    text: str = Field(description="The lines start_line..end_line, without line numbers.")
    note: str | None = Field(None, description="Set when the file has more lines than were returned.")


def read_text(roots: Roots, path: str, start_line: int = 1, end_line: int | None = None) -> FileText:
    file = roots.locate(path)
    lines = _text_lines(file, path)
    if end_line is not None and end_line < start_line:
        raise FileAccessError(f"end_line {end_line} is before start_line {start_line}")
    if start_line > max(len(lines), 1):
        raise FileAccessError(f"{path!r} has {len(lines)} lines; start_line {start_line} is past the end")
    last = min(end_line or len(lines), len(lines), start_line + MAX_LINES - 1)
    note = None
    if last < min(end_line or len(lines), len(lines)):
        note = f"read_file returns at most {MAX_LINES} lines; call again with start_line={last + 1} for the rest"
    return FileText(path=roots.display(file), start_line=start_line, end_line=last, total_lines=len(lines),
                    text="\n".join(lines[start_line - 1:last]), note=note)


def _text_lines(file: Path, path: str) -> list[str]:
    """The file's lines as an editor numbers them; FileAccessError for folders, big or binary files."""
    if not file.is_file():
        raise FileAccessError(f"not a file: {path!r} (use list_files for folders)")
    size = file.stat().st_size
    if size > MAX_FILE_BYTES:
        raise FileAccessError(f"{path!r} is {size / 1024 / 1024:.1f} MB; read_file reads files up to {MAX_FILE_BYTES // 1024 // 1024} MB")
    data = file.read_bytes()
    try:
        if b"\0" in data:  # valid UTF-8 but still binary (images, compiled files)
            raise UnicodeError
        text = data.decode("utf-8")
    except UnicodeError:
        raise FileAccessError(f"{path!r} is a binary file (or not UTF-8 text); read_file reads text only") from None
    # Split on newlines only (str.splitlines also splits on form feeds and other separators,
    # which would shift the line numbers away from an editor's).
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    return lines[:-1] if text.endswith("\n") or not text else lines


def file_text(result: FileText) -> str:
    if result.total_lines == 0:
        return f"{result.path} is empty"
    width = len(str(result.end_line))
    numbered = [f"{number:>{width}}  {line}" for number, line in enumerate(result.text.split("\n"), result.start_line)]
    header = f"{result.path}, lines {result.start_line}-{result.end_line} of {result.total_lines}:"
    return "\n".join([header, *numbered] + ([f"[{result.note}]"] if result.note else []))


# --- search_files --------------------------------------------------------------------------------

class Match(BaseModel):
    path: str
    line: int
    text: str


class Search(BaseModel):
    pattern: str
    path: str
    matches: list[Match]
    files_searched: int
    truncated: bool = Field(description=f"True when the search stopped early, at {MAX_MATCHES} matches or {MAX_SEARCH_FILES:,} files.")


def search(roots: Roots, pattern: str, path: str = ".", regex: bool = False) -> Search:
    folder = roots.locate(path)
    try:
        expression = re.compile(pattern if regex else re.escape(pattern), re.IGNORECASE)
    except re.error as exc:
        raise FileAccessError(f"not a regular expression: {pattern!r} ({exc})") from None
    matches: list[Match] = []
    searched, stopped = 0, False
    for count, file in enumerate(_text_files(roots, folder), 1):
        if count > MAX_SEARCH_FILES or len(matches) >= MAX_MATCHES:
            stopped = True
            break
        try:
            lines = _text_lines(file, str(file))
        except FileAccessError:
            continue  # binary or big files are skipped, not errors
        searched += 1
        matches += [Match(path=roots.display(file), line=number, text=line[:MAX_MATCH_CHARS])
                    for number, line in enumerate(lines, 1) if expression.search(line)]
    return Search(pattern=pattern, path=roots.display(folder), matches=matches[:MAX_MATCHES], files_searched=searched,
                  truncated=stopped or len(matches) > MAX_MATCHES)


def _text_files(roots: Roots, folder: Path):
    """Files under `folder` in name order, not following links out of the roots or into hidden folders."""
    if folder.is_file():
        yield folder
        return
    for parent, folders, names in os.walk(folder):  # os.walk does not descend into linked folders
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in sorted(names):
            file = Path(parent) / name
            if roots.contains(file.resolve()):
                yield file.resolve()


def search_text(result: Search) -> str:
    header = (f"{_count(len(result.matches), 'matching line', 'matching lines')} for {result.pattern!r} in {result.path} "
              f"({_count(result.files_searched, 'text file', 'text files')} searched)")
    if result.truncated:
        header += f"; stopped early (at most {MAX_MATCHES} matches, {MAX_SEARCH_FILES:,} files): narrow the path"
    return "\n".join([header + (":" if result.matches else ""), *(f"{m.path}:{m.line}: {m.text}" for m in result.matches)])


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


# --- the server ----------------------------------------------------------------------------------

def _reply(model: BaseModel, text: str) -> CallToolResult:
    # The text block is what the model reads; the structured content is what programs read.
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=model.model_dump(mode="json"))


PathText = Annotated[str, Field(description="Relative to the first root, or starting with a root's name; '.' is the first root.")]


# Lantern runs a tool only when it declares itself read-only and closed-world (no writes, no
# network), unless its server is listed as trusted; these tools only read files under the roots.
READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)


def make_server(roots: Roots) -> MCPServer:
    """An MCP server whose tools read only under `roots`."""
    server = MCPServer("files", instructions=f"Read-only access to the files under: {', '.join(roots.by_name)}.")

    @server.tool(annotations=READ_ONLY)
    def list_files(
        path: PathText = ".",
        pattern: Annotated[str, Field(description="A glob such as '*', '*.md' or '**/*.py' (recursive).")] = "*",
    ) -> Annotated[CallToolResult, Listing]:
        """List files and folders under a folder of the allowed roots, with type and size (at most 1000)."""
        listing = list_entries(roots, path, pattern)
        return _reply(listing, listing_text(listing))

    @server.tool(annotations=READ_ONLY)
    def read_file(
        path: PathText,
        start_line: Annotated[int, Field(ge=1, description="First line to return (1-based).")] = 1,
        end_line: Annotated[int | None, Field(ge=1, description="Last line to return; omit for the end of the file.")] = None,
    ) -> Annotated[CallToolResult, FileText]:
        """Read a UTF-8 text file (up to 2 MB) with line numbers, at most 2000 lines per call."""
        result = read_text(roots, path, start_line, end_line)
        return _reply(result, file_text(result))

    @server.tool(annotations=READ_ONLY)
    def search_files(
        pattern: Annotated[str, Field(min_length=1, description="Text to find (case-insensitive), "
                                                                "or a regular expression when regex is true.")],
        path: PathText = ".",
        regex: bool = False,
    ) -> Annotated[CallToolResult, Search]:
        """Find lines containing a text in the text files under a folder (at most 200 matches)."""
        result = search(roots, pattern, path, regex)
        return _reply(result, search_text(result))

    return server


def main(argv: list[str] | None = None) -> None:
    try:
        roots = configured_roots(argv, dict(os.environ))
    except RootsError as exc:
        print(f"files.py: {exc}", file=sys.stderr)
        sys.exit(2)
    make_server(Roots(roots)).run()


if __name__ == "__main__":
    main()
