"""The `gitteam` and `git-team` commands, and `python -m gitteam` (git hooks call it this way): the command line
(cli.py), in a process whose garbage collector is tuned for a command's life.

Python collects its youngest objects after every 700 new ones. Loading a run's modules (about 300, typer's
among them) made 80 such collections, which found next to nothing: 10-15 ms of every command's start. A command's
objects mostly live as long as the command does, so it collects after every 50,000 instead; what is garbage is
still collected (reference counting frees most of it at once), only its cycles are looked for more rarely. A
library user of gitteam's modules keeps Python's own setting: only these entry points change it.
"""

import gc

YOUNGEST = 50_000  # new objects between collections of the youngest generation (Python's default: 700)


def main() -> None:
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNGEST, older, oldest)
    from gitteam.cli import main as command_line

    command_line()


if __name__ == "__main__":
    main()
