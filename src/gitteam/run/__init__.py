"""One run of the team, from task to fast-forward.

- `orchestrator`: `start_run` and `resume_run`: the plan, the waves of subtasks in parallel, all or nothing.
- `subtask`: one subtask's life in a pool thread: worktree, setup, coder rounds, commit, the merge gate.
- `integration`: the integration branch, the person's approval, the fast-forward of the target (CAS).
- `integration_review`: the gate once more on the combined result.
- `control`: approve, reject, abort and clean a run after the fact. `inspect`: what status and show read.
- `environment`: every command's environment and the setup command. `notes`: the provenance notes.
- `context`: what the steps share (`RunContext`) and pass each other (`Outcome`, `Progress`, `RunResult`).
- `replay` and `replay_model`: a recorded run again, offline, from its transcripts.
"""
