"""What the commands other than `run` do: `review` (the gate on any range), `memory`, `hooks`, `demo`, `export`.

The CLI parses arguments and calls these; they print through `ui` and `terminal`, and return exit codes.
"""
