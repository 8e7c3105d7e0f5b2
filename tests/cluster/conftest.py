import pytest


@pytest.fixture
def cluster(mxone_exchange):
    """The built-in topology under supervisord, from the project's own pytest plugin
    (tools/pytest_plugin.py); no process may leave a traceback in its log."""
    yield mxone_exchange.cluster
    for log in (mxone_exchange.run_dir / "logs").glob("*.log"):
        assert "Traceback" not in log.read_text(), f"{log.name} has a traceback"
