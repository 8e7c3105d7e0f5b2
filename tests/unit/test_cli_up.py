"""`mxone up` in the foreground: a Ctrl-C that comes as soon as the exchange says so stops it
cleanly (exit 0 once supervisord has stopped everything), whenever in the last line it lands.

A script waits for "Ctrl-C stops the exchange." and sends SIGINT at once; the interrupt can arrive
while that line is still being written. Here it is raised from inside that print."""
from __future__ import annotations

import builtins

import cli.exchange
from cli.main import main


class Supervisord:
    """What `launch` returns for supervisord in the foreground: a process the command waits for."""

    def __init__(self):
        self.waits = 0

    def wait(self, timeout=None):
        self.waits += 1
        return 0


def test_ctrl_c_while_the_last_line_is_written_still_waits_for_supervisord(monkeypatch, tmp_path):
    supervisord = Supervisord()
    monkeypatch.setattr(cli.exchange, "launch", lambda *a, **k: (object(), supervisord, 0.0))
    monkeypatch.setattr(cli.exchange, "print_summary", lambda cluster, topology: None)
    real_print = builtins.print

    def print_interrupted(*args, **kwargs):
        real_print(*args, **kwargs)
        if args and args[0] == "Ctrl-C stops the exchange.":
            raise KeyboardInterrupt  # the terminal's SIGINT, landing in the print
    monkeypatch.setattr(builtins, "print", print_interrupted)

    assert main(["up", "--run-dir", str(tmp_path / "run")]) == 0
    assert supervisord.waits == 1  # it waited for supervisord to stop every process
