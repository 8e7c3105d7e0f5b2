"""The suite fails, never skips, when what a test needs is missing (the project's rule)."""
from __future__ import annotations

import pytest

from tests.procs import require_root_and


def test_a_missing_tool_fails_the_test_naming_it():
    with pytest.raises(pytest.fail.Exception, match="no-such-tool-here: install it"):
        require_root_and("no-such-tool-here")  # as root (the suite's runner); a non-root run fails first
