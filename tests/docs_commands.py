"""The commands the documentation shows, as a test runs them (issue 17: the docs must not drift).

A fenced ```sh or ```python block of README.md or docs/*.md is a sequence meant to work as written,
in order, on a fresh exchange. A block that cannot run in a test (a foreground `make run`, apt-get,
a soak of an hour, another host) has `<!-- not run: REASON -->` on the line before its fence; the
reason is required, and the test lists every such block so none is skipped silently.

In a sh block each line is one command (`#` starts a comment, `\\` continues a line). A line ending
in `&` is a second terminal: it runs in the background, the next line waits for its first line of
output (its "ready" line), and it must have exited 0 by the end of the block.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^```(sh|python)\s*$")
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(.+?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    file: str
    line: int            # the fence's line, 1-based
    language: str        # sh or python
    text: str
    not_run: str | None  # the reason, for a block marked not run

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Command:
    text: str            # without the comment and the trailing `&`
    background: bool
    line: int


def blocks(path: Path, root: Path) -> list[Block]:
    """The sh and python blocks of one markdown file, in order."""
    lines = path.read_text().split("\n")
    found: list[Block] = []
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if fence:
            end = next((j for j in range(index + 1, len(lines)) if lines[j].startswith("```")), None)
            if end is None:
                raise ValueError(f"{path}:{index + 1}: a fence that is never closed")
            marker = NOT_RUN.match(lines[index - 1]) if index else None
            found.append(Block(str(path.relative_to(root)), index + 1, fence.group(1),
                               "\n".join(lines[index + 1:end]) + "\n", marker.group(1) if marker else None))
            index = end
        elif lines[index].lstrip().startswith("<!-- not run") and not NOT_RUN.match(lines[index]):
            raise ValueError(f"{path}:{index + 1}: a not-run marker must be `<!-- not run: REASON -->`")
        index += 1
    return found


def commands(block: Block) -> list[Command]:
    """A sh block's command lines; comments and blank lines dropped, continued lines joined."""
    found: list[Command] = []
    pending, start = "", 0
    for number, raw in enumerate(block.text.split("\n"), block.line + 1):
        if not pending:
            start = number
        stripped = _uncomment(raw).rstrip()
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = (pending + stripped).strip()
        pending = ""
        if not text:
            continue
        background = text.endswith("&") and not text.endswith("&&")
        found.append(Command(text[:-1].strip() if background else text, background, start))
    return found


def _uncomment(line: str) -> str:
    """The line up to an unquoted `#` that starts a word."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index]
    return line


def documents(root: Path) -> list[Path]:
    """README.md and every markdown file under docs/, in a fixed order."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def all_blocks(root: Path) -> list[Block]:
    return [block for path in documents(root) for block in blocks(path, root)]
