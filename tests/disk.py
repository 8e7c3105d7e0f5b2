"""Small file systems for the disk-fault tests (issue 18): a tmpfs of a given size mounted on a
folder, filled to the last byte, remounted read-only. Mounting needs root: without it the test fails."""
from __future__ import annotations

import contextlib
import errno
import subprocess
from pathlib import Path
from typing import Iterator


from tests.procs import require_root_and


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise OSError(f"mount {' '.join(args)}: {done.stderr.strip()}")


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "8m") -> Iterator[Path]:
    """A tmpfs of `size` on `path` for the length of the block (a test that cannot mount fails, saying why)."""
    path.mkdir(parents=True, exist_ok=True)
    require_root_and("mount", "umount")
    _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(path: Path) -> Path:
    """Fill the file system of `path` to the last byte; returns the filler file (remove it to free)."""
    filler = path / "filler"
    with open(filler, "wb", buffering=0) as f:
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    return filler


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """`path` read-only for whoever opens it from now on (a read-only bind mount over it: root
    ignores file permissions, and a tmpfs with files open for writing cannot be remounted ro).
    Files opened before keep writing to the folder beneath."""
    _mount("--bind", str(path), str(path))
    try:
        _mount("-o", "remount,bind,ro", str(path))
        yield path
    finally:
        subprocess.run(["umount", str(path)], capture_output=True)
