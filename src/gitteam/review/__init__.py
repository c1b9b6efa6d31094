"""The merge gate: diff parsing, deterministic checks, and the verdicts reviewers and checks produce."""
