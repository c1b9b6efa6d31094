"""`python -m gitteam`: the same as the `gitteam` command (git hooks call it this way)."""

from gitteam.cli import main

main()
