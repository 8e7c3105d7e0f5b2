"""Every command's --help shows how it is used: an example and the exit status (issue 17), and
each example is a command line the parser accepts, so the help cannot drift from the options."""
from __future__ import annotations

import argparse
import shlex

import pytest

from cli.certificate import main as certificate_main
from cli.csta_admin import auth_parser, csta_parser
from cli.main import build_parser


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Every parser under `parser` (itself included), with the words that reach it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from walk(child, path + (name,))


def certificate_parser() -> argparse.ArgumentParser:
    """mxone_certificate builds its parser inside main: catch it at parse time."""
    captured = {}
    original = argparse.ArgumentParser.parse_args

    def capture(self, *args, **kwargs):
        captured["parser"] = self
        raise SystemExit(0)
    argparse.ArgumentParser.parse_args = capture
    try:
        with pytest.raises(SystemExit):
            certificate_main([])
    finally:
        argparse.ArgumentParser.parse_args = original
    return captured["parser"]


PROGRAMS = {"mxone": build_parser, "csta": csta_parser, "csta_authentication": auth_parser,
            "mxone_certificate": certificate_parser}
COMMANDS = [(prog, path) for prog, make in PROGRAMS.items() for path, _ in walk(make())]


def parser_at(prog: str, path: tuple[str, ...]) -> argparse.ArgumentParser:
    return dict(walk(PROGRAMS[prog]()))[path]


def examples_of(help_text: str) -> list[str]:
    """The lines of the `example(s):` section, up to the blank line before `exit status:`."""
    lines = help_text.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(("example:", "examples:")))
    section = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        section.append(line.strip())
    return section


def test_every_command_is_walked():
    words = {" ".join((prog, *path)) for prog, path in COMMANDS}
    # A sample from each program and each level: the walk must reach nested sub-commands.
    assert {"mxone", "mxone phone", "mxone scale curve", "mxone topology generate", "mxone scenario run",
            "csta", "csta_authentication", "mxone_certificate"} <= words
    assert len(words) >= 30


@pytest.mark.parametrize("prog,path", COMMANDS, ids=[" ".join((p, *w)) for p, w in COMMANDS])
def test_help_shows_an_example_and_the_exit_status(prog, path):
    help_text = parser_at(prog, path).format_help()
    assert examples_of(help_text), f"{prog} {' '.join(path)} --help has no example"
    assert "\nexit status: 0 " in help_text, f"{prog} {' '.join(path)} --help does not say its exit status"


@pytest.mark.parametrize("prog,path", COMMANDS, ids=[" ".join((p, *w)) for p, w in COMMANDS])
def test_every_example_is_a_command_line_the_parser_accepts(prog, path):
    root = PROGRAMS[prog]()
    for example in examples_of(parser_at(prog, path).format_help()):
        if example.endswith("\\"):
            continue  # a line continued on the next: topology generate's two-exchange example
        words = shlex.split(example, comments=True)
        if not words or words[0] != prog:
            continue  # the continuation line itself
        try:
            root.parse_args(words[1:])
        except SystemExit as exc:
            if exc.code == 0:
                continue  # `--help` shown as an example
            pytest.fail(f"{prog} {' '.join(path)} --help shows {example!r}, which the parser refuses ({exc})")


@pytest.mark.parametrize("argv", [
    ["traffic", "--profile", "bank"], ["traffic", "--arrivals", "bursty"], ["phone", "1000", "jump"],
    ["fault", "--lim", "1", "slow"], ["scale", "startup", "--csta", "some"], ["agent", "2005", "dance"],
])
def test_a_fixed_set_of_values_is_checked_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
