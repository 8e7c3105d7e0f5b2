"""The exchange's extensions, held as the number blocks a topology writes.

A 64-LIM exchange of 1,000 extensions each is 448 blocks in its file but 64,000 `Extension` objects
once expanded, and every one of its 129 processes loads the topology: expanding them all took a
tenth of a CPU-second and 11 MB in each (docs/benchmarks.md, issue 16). So `Extensions` keeps the
blocks, answers "which LIM owns this number" from them (a bisection), expands one LIM's blocks for
that LIM, and expands everything only when someone walks the whole sequence. Pure, no I/O.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence, overload


@dataclass(frozen=True)
class Extension:
    number: str
    type: str
    lim: int
    logged_on: bool  # a terminal is logged on; virtual extensions never have one


@dataclass(frozen=True)
class ExtensionBlock:
    """The extensions `first`..`last` (digit strings of one width, inclusive), all of one type on
    one LIM: one `numbers:` entry of a topology file."""
    first: str
    last: str
    type: str
    lim: int
    logged_on: bool

    def __len__(self) -> int:
        return int(self.last) - int(self.first) + 1 if self.first != self.last else 1

    def numbers(self) -> Iterator[str]:
        if self.first == self.last:
            return iter((self.first,))
        width = len(self.first)
        return (str(n).zfill(width) for n in range(int(self.first), int(self.last) + 1))

    def expand(self) -> list[Extension]:
        return [Extension(n, self.type, self.lim, self.logged_on) for n in self.numbers()]


class Extensions(Sequence[Extension]):
    """An immutable sequence of extensions in topology order, expanded only when walked whole."""

    __slots__ = ("blocks", "_all", "_exact", "_ranges")

    def __init__(self, blocks: Iterable[ExtensionBlock] = ()):
        self.blocks = tuple(blocks)
        self._all: tuple[Extension, ...] | None = None
        self._exact: dict[str, int] | None = None  # single numbers -> LIM
        # per digit count: the ranges' first values in order, and (last, LIM) of each
        self._ranges: dict[int, tuple[list[int], list[tuple[int, int]]]] = {}

    @classmethod
    def of(cls, extensions: Iterable[Extension]) -> Extensions:
        """Extensions given one by one (tests, hand-built topologies): a block each."""
        given = tuple(extensions)
        made = cls(ExtensionBlock(e.number, e.number, e.type, e.lim, e.logged_on) for e in given)
        made._all = given
        return made

    # -- lookups that do not expand -------------------------------------------------------------------
    def owner(self, number: str) -> int | None:
        """The LIM of extension `number`, or None if it is not an extension."""
        if self._exact is None:
            self._index()
        assert self._exact is not None
        lim = self._exact.get(number)
        if lim is not None or not (number.isascii() and number.isdigit()):
            return lim
        ranges = self._ranges.get(len(number))
        if ranges is None:
            return None
        firsts, rest = ranges
        value = int(number)
        at = bisect_right(firsts, value) - 1
        if at >= 0 and value <= rest[at][0]:
            return rest[at][1]
        return None

    def on_lim(self, lim: int) -> tuple[Extension, ...]:
        """The extensions of one LIM, expanding only its blocks."""
        if self._all is not None:
            return tuple(e for e in self._all if e.lim == lim)
        return tuple(e for block in self.blocks if block.lim == lim for e in block.expand())

    def numbers(self) -> Iterator[str]:
        return (n for block in self.blocks for n in block.numbers())

    def _index(self) -> None:
        exact: dict[str, int] = {}
        spans: dict[int, list[tuple[int, int, int]]] = {}
        for block in self.blocks:
            if block.first == block.last:
                exact[block.first] = block.lim
            else:
                spans.setdefault(len(block.first), []).append((int(block.first), int(block.last), block.lim))
        # The loader lets no two internal numbers clash, so the ranges of one width do not overlap.
        for width, items in spans.items():
            items.sort()
            self._ranges[width] = ([lo for lo, _, _ in items], [(hi, lim) for _, hi, lim in items])
        self._exact = exact

    # -- the sequence -----------------------------------------------------------------------------------
    def _expanded(self) -> tuple[Extension, ...]:
        if self._all is None:
            self._all = tuple(e for block in self.blocks for e in block.expand())
        return self._all

    def __len__(self) -> int:
        return sum(len(block) for block in self.blocks)

    @overload
    def __getitem__(self, index: int) -> Extension: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Extension]: ...

    def __getitem__(self, index: int | slice) -> Extension | Sequence[Extension]:
        return self._expanded()[index]

    def __iter__(self) -> Iterator[Extension]:
        return iter(self._expanded())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Extensions) and other.blocks == self.blocks:
            return True
        return isinstance(other, (Extensions, tuple, list)) and tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(len(self))  # equal sequences may be split into blocks differently

    def __repr__(self) -> str:
        return f"Extensions({len(self)} in {len(self.blocks)} blocks)"
