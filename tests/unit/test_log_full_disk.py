"""A process whose log cannot be written (ENOSPC) goes on quietly: no traceback per record."""
from __future__ import annotations

import errno
import logging

from netio.logs import configure_logging


class FullDisk:
    """A stream on a full disk: every write fails as write(2) does there."""

    def write(self, _text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_records_that_cannot_be_written_are_dropped_without_a_traceback(monkeypatch, capsys):
    monkeypatch.setattr(logging, "raiseExceptions", True)  # Python's default; restored after the test
    configure_logging("lim-1", "info")
    logger = logging.getLogger("test.full_disk")
    handler = logging.StreamHandler(FullDisk())
    logger.addHandler(handler)
    try:
        for n in range(3):
            logger.error("call %d released", n)  # must neither raise nor print
    finally:
        logger.removeHandler(handler)
    assert capsys.readouterr().err == ""
