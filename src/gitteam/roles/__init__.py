"""The agents: planner, coder and reviewer, and the loop they share."""
