import pytest

from tests.procs import cluster_down, cluster_up


@pytest.fixture
def cluster(tmp_path):
    """The built-in topology under supervisord (`mxone up --detach`, free ports), stopped after."""
    cluster = cluster_up(tmp_path)
    try:
        yield cluster
    finally:
        cluster_down(cluster)
