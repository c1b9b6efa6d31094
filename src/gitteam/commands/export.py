"""`gitteam export RUN`: one `.tar.gz` for a bug report: the run's journal, its transcripts, the provenance
notes of its commits (JSON), the plan, gitteam's version and a manifest of the parts with their sizes.

Every part goes through the one redaction (`secrets.redact`, JSON through `redact_data`) before it is
written, however it was redacted when it was recorded: the archive leaves the machine.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gitteam import __version__
from gitteam.errors import UsageError
from gitteam.git import Repository
from gitteam.journal import Journal, load_run
from gitteam.names import BRANCH_PREFIX
from gitteam.run.notes import NOTES_REF
from gitteam.secrets import redact, redact_data
from gitteam.transcripts import DIR


@dataclass(frozen=True)
class Exported:
    path: Path
    parts: list[tuple[str, int]]  # name in the archive, bytes (uncompressed)

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def redacted_lines(data: bytes) -> bytes:
    """A JSON-lines file redacted line by line; a damaged line as text."""
    out = []
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            out.append(json.dumps(redact_data(json.loads(line)), ensure_ascii=False, sort_keys=True))
        except json.JSONDecodeError:
            out.append(redact(line))
    return ("\n".join(out) + "\n").encode("utf-8") if out else b""


def as_json(value: Any) -> bytes:
    return (json.dumps(redact_data(value), indent=1, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")


def run_notes(repo: Repository, run: str, base: str) -> dict[str, Any]:
    """The provenance note of every commit on the run's branches, by commit id, parsed where it is JSON."""
    branches = repo.refs(f"refs/heads/{BRANCH_PREFIX}/{run}/")
    commits = {c for head in branches.values() for c in (repo.commits_between(base, head) if base else [head])}
    found: dict[str, Any] = {}
    for commit, text in sorted(repo.notes(NOTES_REF).items()):
        if commit not in commits:
            continue
        try:
            found[commit] = json.loads(text)
        except json.JSONDecodeError:
            found[commit] = text
    return found


def collect(repo: Repository, run: str) -> list[tuple[str, bytes]]:
    state = load_run(repo.state_dir, run)
    run_dir = Journal(repo.state_dir, run).dir
    parts = [("events.jsonl", redacted_lines((run_dir / "events.jsonl").read_bytes()))]
    for path in sorted((run_dir / DIR).glob("*.jsonl")):
        parts.append((f"{DIR}/{path.name}", redacted_lines(path.read_bytes())))
    parts.append(("notes.json", as_json(run_notes(repo, run, state.base))))
    parts.append(("plan.json", as_json(state.plan)))
    parts.append(("version.txt", f"gitteam {__version__}\n".encode()))
    return parts


def export(repo: Repository, run: str, output: Path | None = None) -> Exported:
    """Write the archive (default: `gitteam-<run>.tar.gz` in the current directory) and say what it holds."""
    parts = collect(repo, run)
    manifest = {"gitteam_export": 1, "run": run, "version": __version__,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "parts": [{"name": name, "bytes": len(data)} for name, data in parts]}
    parts.append(("manifest.json", as_json(manifest)))
    path = (output or Path(f"gitteam-{run}.tar.gz")).absolute()
    if path.is_dir():
        raise UsageError(f"{path} is a directory: give --output a file name, e.g. {path / f'gitteam-{run}.tar.gz'}")
    prefix = f"gitteam-{run}"
    tmp = path.with_name(path.name + ".partial")
    with tarfile.open(tmp, "w:gz") as archive:
        for name, data in parts:
            info = tarfile.TarInfo(f"{prefix}/{name}")
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
            archive.addfile(info, io.BytesIO(data))
    tmp.replace(path)
    return Exported(path, [(name, len(data)) for name, data in parts])
