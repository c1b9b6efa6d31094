"""The merge gate's pure parts: diffs (`diff`, `chunks`), deterministic checks (`checks`), the policy (`policy`,
`verdict`), where a finding may be placed (`scope`), and CI output (`formats`).

It calls no model: the reviewer agents are `roles.review_agents`, and the run wires both together
(`run.subtask`, `run.integration_review`); `gitteam review` does the same for any range (`commands.review`).
"""
