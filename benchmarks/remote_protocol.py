"""What one step of the distributed mode's ref protocol costs over a real network transport: `git daemon` on
loopback, an owner clone and a worker clone (gitteam.remote.Remote on each).

For --jobs jobs of one run (each job's head a new commit of one small file), timed one by one, median and worst:
- publish: the owner's publish_job (commit + one atomic push);
- fetch: the worker's fetch of every run (one `git fetch --prune` into its mirror, one ref listing, one batch read),
  with all jobs published, then while they are claimed;
- claim / renew (lease only) / renew with a checkpoint commit / finish (work + result + lease deletion);
- a lost claim (the CAS refused).
The protocol's overhead per subtask is one claim, one finish, and a renewal per lease_seconds/3 of work.

    python benchmarks/remote_protocol.py [--jobs 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV_KEYS = {
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com", "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True, text=True).stdout.strip()


def timed(samples: dict[str, list[float]], name: str, action: Callable[[], object]) -> object:
    started = time.perf_counter()
    value = action()
    samples.setdefault(name, []).append(time.perf_counter() - started)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args()
    sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]
    os.environ.update(ENV_KEYS)
    from gitdaemon import clone, git_daemon
    from gitteam.git import find_repository
    from gitteam.remote.protocol import Remote, RunInfo, WorkerId

    samples: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="gitteam-bench-remote-") as scratch:
        tmp = Path(scratch)
        os.environ["HOME"] = str(tmp)
        seed = tmp / "seed"
        seed.mkdir()
        git(seed, "init", "-q", "-b", "main")
        (seed / "README.md").write_text("# bench\n")
        git(seed, "add", "-A")
        git(seed, "commit", "-q", "-m", "initial")
        with git_daemon(tmp / "served") as daemon:
            url = daemon.bare("origin.git", seed)
            owner = Remote(find_repository(clone(url, tmp / "owner", tmp / "owner-home")), "origin")
            worker = Remote(find_repository(clone(url, tmp / "worker", tmp / "worker-home")), "origin")
            rival = Remote(find_repository(clone(url, tmp / "rival", tmp / "rival-home")), "origin")
            base = owner.repo.rev_parse("HEAD") or ""
            plan = {"subtasks": [{"id": f"s{i}", "title": "t", "instructions": "i", "files": [f"f{i}.txt"]}
                                 for i in range(args.jobs)], "summary": ""}
            owner.publish_run(RunInfo("bench", "bench", "main", base, "owner", os.getpid(), 60.0, plan))
            for index in range(args.jobs):
                blob = owner.repo.write_blob(f"job {index}\n".encode())
                tree = owner.repo.git("mktree", input=f"100644 blob {blob}\tf{index}.txt\n").strip()
                head = owner.repo.git("commit-tree", tree, "-p", base, "-m", f"head {index}").strip()
                subtask = plan["subtasks"][index]
                timed(samples, "publish_job (owner)", lambda h=head, s=subtask, i=index: owner.publish_job(
                    "bench", f"s{i}", 1, 1, "do it", s, s["files"], base, h, "bench"))
            me = WorkerId.mine()
            jobs = []
            for _ in range(args.jobs):
                view = timed(samples, f"fetch, {args.jobs} jobs open", worker.fetch)
                jobs = view["bench"].open_jobs()  # type: ignore[index]
            rival.fetch()
            leases = []
            for job in jobs:
                leases.append(timed(samples, "claim (won)", lambda j=job: worker.claim(j, me)))
                timed(samples, "claim (lost: CAS refused)", lambda j=job: rival.claim(j, me))
            for _ in range(args.jobs):
                timed(samples, f"fetch, {args.jobs} jobs claimed", worker.fetch)
            renewed = []
            for lease in leases:
                renewed.append(timed(samples, "renew (lease only)", lambda le=lease: worker.renew(le, None)))
            finals = []
            for index, lease in enumerate(renewed):
                job = jobs[index]
                worker.objects(job.head)
                blob = worker.repo.write_blob(b"done\n")
                tree = worker.repo.git("mktree", input=f"100644 blob {blob}\t{job.agent}.txt\n").strip()
                final = worker.repo.git("commit-tree", tree, "-p", job.head, "-m", "work").strip()
                finals.append(final)
                renewed[index] = timed(samples, "renew + checkpoint commit",
                                       lambda le=lease, f=final: worker.renew(le, f))
            for index, lease in enumerate(renewed):
                timed(samples, "finish (work + result + lease)", lambda le=lease, f=finals[index]: worker.finish(
                    le, f, "done", "s", "", "replay:bench", {"input_tokens": 1}, 0.0))
            timed(samples, "close_run (owner)", lambda: owner.close_run("bench"))

    print(f"# gitteam.remote over git daemon on loopback; {args.jobs} jobs; git "
          f"{git(ROOT, 'version').split()[-1]}; {platform.system()} {platform.machine()}, {os.cpu_count()} cores")
    print(f"{'step':40} {'median ms':>10} {'worst ms':>10} {'n':>4}")
    for name, values in samples.items():
        print(f"{name:40} {statistics.median(values) * 1000:10.1f} {max(values) * 1000:10.1f} {len(values):4}")
    print(f"worker: {worker.stats}")


if __name__ == "__main__":
    main()
