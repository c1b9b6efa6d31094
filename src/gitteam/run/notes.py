"""Provenance notes: the one writer of `refs/notes/gitteam`, and its reader for `gitteam show`.

Every commit an agent makes carries a note: the run, the agent, its model, what it cost, and what the
gate said (None: not reviewed, e.g. partial work saved at a stop). The integrated result's review is
added to the note of the commit it judged. Notes travel with `git push` of the notes ref.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from gitteam.git import Repository
from gitteam.names import INTEGRATION
from gitteam.review.verdict import Verdict
from gitteam.run.context import RunContext
from gitteam.secrets import redact_data

NOTES_REF = "refs/notes/gitteam"


def note_commit(ctx: RunContext, agent: str, head: str, model: str, round_number: int,
                verdict: Verdict | None, priority: str | None = None) -> None:
    """Provenance on an agent's commit: who, which model, what it cost, what the gate said."""
    coder_tally = ctx.meter.agent(f"coder/{agent}")
    reviewer_tally = ctx.meter.agent(f"reviewer/{agent}")
    note = {
        "run": ctx.run,
        "agent": agent,
        "role": "coder",
        "model": model,
        "round": round_number,
        **({"priority": priority} if priority else {}),  # the tier whose models served it ([routing])
        "tokens": coder_tally.usage.total,
        "cost": round(coder_tally.cost, 6) if coder_tally.cost_known else None,
        "review": None if verdict is None else {
            **_review(verdict),
            "tokens": reviewer_tally.usage.total,
            "cost": round(reviewer_tally.cost, 6) if reviewer_tally.cost_known else None,
        },
    }
    _write(ctx.repo, head, note)


def note_integration_review(ctx: RunContext, head: str, verdict: Verdict) -> None:
    """The review of the integrated result: added to the note `head` has (an agent's commit), or a new one."""
    tally = ctx.meter.agent(f"reviewer/{INTEGRATION}")
    review = {"agent": INTEGRATION, **_review(verdict), "tokens": tally.usage.total,
              "cost": round(tally.cost, 6) if tally.cost_known else None}
    existing = ctx.repo.read_note(NOTES_REF, head)
    try:
        note = json.loads(existing) if existing else None
    except json.JSONDecodeError:
        note = None
    if not isinstance(note, dict):
        note = {"run": ctx.run, "agent": INTEGRATION, "role": "reviewer"}
        if existing:
            note["previous_note"] = existing
    note["integration_review"] = review
    _write(ctx.repo, head, note)


def read_notes(repo: Repository, commits: Sequence[str]) -> list[dict[str, Any]]:
    """The notes of `commits` that have one, in order, each with its commit (text kept when not JSON)."""
    found = []
    for commit in commits:
        text = repo.read_note(NOTES_REF, commit)
        if text:
            try:
                found.append({"commit": commit, **json.loads(text)})
            except (json.JSONDecodeError, TypeError):
                found.append({"commit": commit, "text": text})
    return found


def _review(verdict: Verdict) -> dict[str, Any]:
    return {"decision": verdict.decision, "summary": verdict.summary,
            "findings": [f.to_json() for f in verdict.findings]}


def _write(repo: Repository, head: str, note: dict[str, Any]) -> None:
    repo.set_note(NOTES_REF, head, json.dumps(redact_data(note), indent=1, ensure_ascii=False))
