"""A throwaway exchange for a measuring command (`mxone bench`, `mxone chaos`): a run directory
(a temporary one unless given), supervisord in its own session (Ctrl-C reaches only the command),
every LIM registered before the work starts, and everything stopped after; the run directory is
removed when the work succeeded in a temporary one, and its logs are kept (and said) otherwise."""
from __future__ import annotations

import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from topology.cluster import Cluster, ClusterError
from topology.model import Topology


@contextmanager
def throwaway_exchange(prefix: str, run_dir: Path | None, write_topology: Callable[[Path], Path],
                       log: Callable[[str], None]) -> Iterator[tuple[Cluster, Topology, float]]:
    """Yields (cluster, topology, seconds from starting supervisord to every LIM registered).
    `write_topology(run_dir)` writes the topology file to start and returns its path."""
    from topology.cli import wait_until_up
    made_dir = run_dir is None
    run_dir = Path(tempfile.mkdtemp(prefix=prefix)) if made_dir else Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(run_dir)
    topology = cluster.prepare(write_topology(run_dir))
    proc = None
    ok = False
    try:
        extensions = len(topology.extensions_on(topology.lims[0].number)) if topology.lims else 0
        log(f"starting {len(topology.lims)} LIMs x {extensions} extensions in {run_dir}")
        started = time.monotonic()
        proc = cluster.start_supervisord(detach=True)  # its own session: Ctrl-C reaches only us
        wait_until_up(cluster, topology, 20 + 0.5 * len(topology.lims), proc)
        yield cluster, topology, time.monotonic() - started
        ok = True
    finally:
        try:
            if proc is not None:
                if cluster.supervisord_pid() is not None:
                    cluster.shutdown()
                elif proc.poll() is None:
                    proc.terminate()
                    proc.wait(timeout=30)
        except ClusterError as exc:
            log(f"stopping the exchange: {exc}")
            if proc.poll() is None:
                proc.kill()
        if made_dir and ok:
            shutil.rmtree(run_dir, ignore_errors=True)
        elif not ok:
            log(f"logs kept in {run_dir / 'logs'}")
