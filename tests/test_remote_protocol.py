"""The ref protocol of the distributed mode over a real network transport: `git daemon` on loopback, one owner
clone and worker clones with HOMEs of their own, each speaking to the remote only through its `git://` URL."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import commit_files, git
from gitdaemon import Daemon, clone, git_daemon
from gitteam.errors import GitteamError, UsageError
from gitteam.git import find_repository
from gitteam.remote import refs
from gitteam.remote.documents import encode
from gitteam.remote.lease import LeaseClock
from gitteam.remote.protocol import Job, Lease, Remote, RemoteUnavailable, RunInfo, WorkerId

RUN = "r1"
PLAN = {"subtasks": [{"id": "a", "title": "A", "instructions": "write a", "files": ["a.txt"]},
                     {"id": "b", "title": "B", "instructions": "write b", "files": ["b.txt"]}], "summary": ""}
LEASE_SECONDS = 30.0


@dataclass
class Net:
    daemon: Daemon
    url: str
    owner: Remote
    base: str
    make: Callable[[str], Remote]  # a worker clone of its own (separate directory and HOME) and its Remote

    def served(self) -> dict[str, str]:
        """The refs the remote holds now (read on the server's side, which no client can see)."""
        out = git(self.daemon.path("origin.git"), "for-each-ref", "--format=%(refname) %(objectname)")
        return dict(line.split(" ") for line in out.splitlines())


@pytest.fixture
def net(tmp_path: Path, repo: Path) -> Iterator[Net]:
    with git_daemon(tmp_path / "served") as daemon:
        url = daemon.bare("origin.git", repo)
        owner_repo = find_repository(clone(url, tmp_path / "owner", tmp_path / "owner-home"))
        base = owner_repo.rev_parse("HEAD")
        assert base is not None

        def make(name: str, *options: str) -> Remote:
            return Remote(find_repository(clone(url, tmp_path / name, tmp_path / f"{name}-home", *options)), "origin")

        yield Net(daemon, url, Remote(owner_repo, "origin"), base, make)


def published(net: Net, agent: str = "a", step: int = 1, head: str | None = None) -> Job:
    net.owner.publish_run(RunInfo(RUN, "the task", "main", net.base, "owner-host", 1, LEASE_SECONDS, PLAN))
    subtask = next((item for item in PLAN["subtasks"] if item["id"] == agent),
                   {"id": agent, "title": agent, "instructions": "", "files": [f"{agent}.txt"]})
    return net.owner.publish_job(RUN, agent, step, 1, f"write {agent}", subtask, [f"{agent}.txt"], net.base,
                                 head or net.base, "the task")


def seen_job(worker: Remote, agent: str = "a") -> Job:
    """The open job of `agent` as `worker` sees it after one fetch."""
    view = worker.fetch()[RUN]
    return next(job for job in view.open_jobs() if job.agent == agent)


def work_commit(worker: Remote, job: Job, content: str) -> str:
    """A commit on top of the job's head in the worker's clone, writing the agent's file."""
    root = worker.repo.root
    worker.objects(job.head)
    git(root, "checkout", "-q", "--detach", job.head)
    return commit_files(root, {f"{job.agent}.txt": content}, f"work on {job.agent}")


def worker_id(name: str) -> WorkerId:
    return WorkerId(f"{name}-host-1-abcdef", f"{name}-host", 1)


# -- claims -----------------------------------------------------------------------------------------------------

def test_two_workers_that_saw_the_same_open_job_claim_it_and_exactly_one_wins(net: Net) -> None:
    published(net)
    one, two = net.make("w1"), net.make("w2")
    job_one, job_two = seen_job(one), seen_job(two)
    assert job_one == job_two
    first = one.claim(job_one, worker_id("w1"))
    second = two.claim(job_two, worker_id("w2"))
    assert first is not None and second is None
    assert net.served()[refs.lease_ref(RUN, "a")] == first.oid
    assert two.stats.rejected == 1
    lease = two.fetch()[RUN].leases["a"]
    assert (lease.worker, lease.job, lease.seq) == ("w1-host-1-abcdef", job_one.oid, 0)


def test_five_claimers_started_together_leave_one_lease(net: Net) -> None:
    published(net)
    workers = [net.make(f"w{index}") for index in range(5)]
    jobs = [seen_job(worker) for worker in workers]
    barrier = threading.Barrier(len(workers))
    won: dict[int, Lease | None] = {}

    def claim(index: int) -> None:
        barrier.wait()
        won[index] = workers[index].claim(jobs[index], worker_id(f"w{index}"))

    threads = [threading.Thread(target=claim, args=(index,)) for index in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [lease for lease in won.values() if lease is not None]
    assert len(won) == 5 and len(winners) == 1
    assert net.served()[refs.lease_ref(RUN, "a")] == winners[0].oid


# -- leases: renewal, expiry on the observer's clock, takeover, fencing -------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_taken_over_worker_is_fenced_out_of_every_ref(net: Net) -> None:
    job = published(net)
    a, b = net.make("wa"), net.make("wb")
    lease_a = a.claim(seen_job(a), worker_id("wa"))
    assert lease_a is not None
    checkpoint = work_commit(a, job, "a's first try\n")
    renewed = a.renew(lease_a, checkpoint)
    assert renewed is not None and renewed.seq == 1
    assert net.served()[refs.work_ref(RUN, "a")] == checkpoint

    clock = FakeClock()
    watch = LeaseClock(LEASE_SECONDS, clock)
    ref = refs.lease_ref(RUN, "a")
    seen = b.fetch()[RUN].leases["a"]
    assert seen == renewed
    assert not watch.expired(ref, seen.oid)
    clock.now += LEASE_SECONDS  # exactly the lease time: not yet more than it
    assert not watch.expired(ref, b.fetch()[RUN].leases["a"].oid)
    clock.now += 1
    assert watch.expired(ref, b.fetch()[RUN].leases["a"].oid)
    taken = b.claim(seen_job(b), worker_id("wb"), expired=seen)
    assert taken is not None
    assert b.start_point(b.fetch()[RUN], job) == checkpoint  # the takeover goes on from a's last checkpoint

    before = net.served()
    late = work_commit(a, job, "a woke up\n")
    assert a.renew(renewed, late) is None
    assert a.repo.update_ref("refs/notes/gitteam-memory/wa", late, None)
    assert a.finish(renewed, late, "done", "a's summary", "", "replay:x", {"input_tokens": 1}, 0.5,
                    extra=["refs/notes/gitteam-memory/wa:refs/notes/gitteam-memory/wa"]) is None
    assert a.release(renewed) is False
    assert net.served() == before  # lease, work and result refs as b left them
    assert net.served()[ref] == taken.oid and refs.result_ref(RUN, "a") not in before


def test_renewals_keep_a_live_lease_from_expiring_and_a_release_frees_it(net: Net) -> None:
    published(net)
    a, b = net.make("wa"), net.make("wb")
    clock = FakeClock()
    watch = LeaseClock(LEASE_SECONDS, clock)
    ref = refs.lease_ref(RUN, "a")
    lease = a.claim(seen_job(a), worker_id("wa"))
    assert lease is not None
    for _ in range(4):  # 4 x 20s > 30s in all, but never 30s on one lease
        assert not watch.expired(ref, b.fetch()[RUN].leases["a"].oid)
        clock.now += 20
        renewed = a.renew(lease, None)
        assert renewed is not None and renewed.oid != lease.oid
        lease = renewed
    assert not watch.expired(ref, b.fetch()[RUN].leases["a"].oid)
    assert watch.age(ref, lease.oid) == 0
    assert a.release(lease)
    view = b.fetch()[RUN]
    assert "a" not in view.leases and [job.agent for job in view.open_jobs()] == ["a"]
    assert b.claim(view.jobs["a"], worker_id("wb")) is not None


def test_claimable_jobs_are_the_free_ones_and_those_whose_lease_expired(net: Net) -> None:
    published(net, "a")
    published(net, "b")
    published(net, "c")  # not in the plan: offered last
    holder, finder = net.make("holder"), net.make("finder")
    views = holder.fetch()[RUN]
    lease_a = holder.claim(views.jobs["a"], worker_id("holder"))
    lease_b = holder.claim(views.jobs["b"], worker_id("holder"))
    assert lease_a is not None and lease_b is not None
    clock = FakeClock()
    watch = LeaseClock(LEASE_SECONDS, clock)
    assert [(job.agent, lease) for job, lease in finder.fetch()[RUN].claimable(watch)] == [("c", None)]
    clock.now += LEASE_SECONDS / 2
    lease_b = holder.renew(lease_b, None)  # b's holder is alive, a's is not
    assert lease_b is not None
    clock.now += LEASE_SECONDS / 2 + 1
    claimable = finder.fetch()[RUN].claimable(watch)
    assert [(job.agent, lease) for job, lease in claimable] == [("a", lease_a), ("c", None)]
    assert holder.release(lease_b)
    clock.now += 1
    assert [job.agent for job, _ in finder.fetch()[RUN].claimable(watch)] == ["a", "b", "c"]
    assert watch.age(refs.lease_ref(RUN, "b"), lease_b.oid) is None  # a lease gone is forgotten


def test_the_holders_clock_never_changes_expiry(net: Net) -> None:
    """A lease stamped far in the future or the past (a skewed clock) expires after the observer's own lease time,
    counted from when the observer first saw it, and not a moment earlier or later."""
    job = published(net)
    b = net.make("wb")
    ref = refs.lease_ref(RUN, "a")
    for skew in (1e9, -1e9):
        stamped = Lease("", job.oid, "skewed-1-000000", "skewed", 1, 0, 1_700_000_000.0 + skew, RUN, "a")
        oid = net.owner.repo.commit_file("lease.json", _lease_document(stamped), [], "lease", ("t", "t@t"),
                                         "1700000000 +0000")
        there = net.served().get(ref, "")
        assert net.owner.repo.push_atomic("origin", [(ref, oid, there)])
        clock = FakeClock()
        watch = LeaseClock(LEASE_SECONDS, clock)
        seen = b.fetch()[RUN].leases["a"]
        assert seen.at == stamped.at
        assert not watch.expired(ref, seen.oid)
        clock.now += LEASE_SECONDS
        assert not watch.expired(ref, seen.oid)
        clock.now += 0.5
        assert watch.expired(ref, seen.oid)


def _lease_document(lease: Lease) -> bytes:
    return encode(lease.document("test"))


def test_lease_clock_counts_each_oid_from_its_first_sighting() -> None:
    clock = FakeClock()
    watch = LeaseClock(10, clock)
    watch.observe("L", "x")
    clock.now += 11
    assert watch.age("L", "x") == 11 and watch.expired("L", "x")
    watch.observe("L", "y")  # renewed: a new count
    assert watch.age("L", "x") is None and not watch.expired("L", "y")
    watch.observe("L", None)  # gone, then the same oid again (a re-claim): counted afresh
    assert watch.age("L", "y") is None
    assert not watch.expired("L", "y")
    clock.now += 10
    assert not watch.expired("L", "y")
    clock.now += 1
    assert watch.expired("L", "y")


# -- finish: one push, all or nothing -----------------------------------------------------------------------------

def test_finish_lands_work_result_memory_and_frees_the_lease_in_one_push(net: Net) -> None:
    job = published(net)
    w = net.make("w")
    lease = w.claim(seen_job(w), worker_id("w"))
    assert lease is not None
    final = work_commit(w, job, "a is done\n")
    memory = w.repo.commit_file("entry", b"a note\n", [], "memory", ("t", "t@t"), "1700000000 +0000")
    w.repo.update_ref("refs/notes/gitteam-memory/w", memory, None)
    pushes = w.stats.pushes
    result = w.finish(lease, final, "done", "wrote a", "", "replay:s", {"input_tokens": 10, "output_tokens": 2},
                      0.25, extra=["refs/notes/gitteam-memory/w:refs/notes/gitteam-memory/w"])
    assert result is not None and w.stats.pushes == pushes + 1
    served = net.served()
    assert refs.lease_ref(RUN, "a") not in served
    assert served[refs.work_ref(RUN, "a")] == final
    assert served[refs.result_ref(RUN, "a")] == result.oid
    assert served["refs/notes/gitteam-memory/w"] == memory
    seen = net.owner.fetch()[RUN]
    assert seen.results["a"] == result and seen.results["a"].job == job.oid
    assert (result.status, result.head, result.cost, result.usage["input_tokens"]) == ("done", final, 0.25, 10)
    assert git(net.owner.repo.root, "rev-parse", f"{result.oid}^") == final
    assert net.owner.repo.read_blob(final, "a.txt") == b"a is done\n"
    assert [job.agent for job in seen.open_jobs()] == []


def test_a_finish_the_remote_refuses_in_one_part_lands_nothing(net: Net) -> None:
    job = published(net)
    w = net.make("w")
    lease = w.claim(seen_job(w), worker_id("w"))
    assert lease is not None
    # a ref below results/a/ on the server: results/a itself cannot be made there (a directory/file conflict),
    # found by the server after the lease, the work and the memory ref were accepted by the client
    git(net.daemon.path("origin.git"), "update-ref", f"{refs.result_ref(RUN, 'a')}/x", net.base)
    memory = w.repo.commit_file("entry", b"a note\n", [], "memory", ("t", "t@t"), "1700000000 +0000")
    w.repo.update_ref("refs/notes/gitteam-memory/w", memory, None)
    before = net.served()
    final = work_commit(w, job, "a is done\n")
    assert w.finish(lease, final, "done", "wrote a", "", "replay:s", {}, None,
                    extra=["refs/notes/gitteam-memory/w:refs/notes/gitteam-memory/w"]) is None
    assert net.served() == before
    assert net.served()[refs.lease_ref(RUN, "a")] == lease.oid  # still held: the worker may retry or release


def test_memory_that_cannot_fast_forward_never_costs_the_result(net: Net) -> None:
    job = published(net)
    w = net.make("w")
    lease = w.claim(seen_job(w), worker_id("w"))
    assert lease is not None
    theirs = net.owner.repo.commit_file("entry", b"theirs\n", [], "m", ("t", "t@t"), "1700000000 +0000")
    assert net.owner.repo.push_atomic("origin", [("refs/notes/gitteam-memory/w", theirs, "")])
    mine = w.repo.commit_file("entry", b"mine\n", [], "m", ("t", "t@t"), "1700000000 +0000")
    w.repo.update_ref("refs/notes/gitteam-memory/w", mine, None)
    final = work_commit(w, job, "a is done\n")
    result = w.finish(lease, final, "done", "wrote a", "", "replay:s", {}, None,
                      extra=["refs/notes/gitteam-memory/w:refs/notes/gitteam-memory/w"])
    assert result is not None
    served = net.served()
    assert served["refs/notes/gitteam-memory/w"] == theirs  # not forced over
    assert served[refs.result_ref(RUN, "a")] == result.oid and served[refs.work_ref(RUN, "a")] == final
    assert refs.lease_ref(RUN, "a") not in served
    with pytest.raises(ValueError, match="status"):
        w.finish(lease, final, "maybe", "", "", "", {}, None)


# -- the owner: idempotent publishing, open jobs, closing, the target ---------------------------------------------

def test_publishing_the_same_job_again_changes_nothing_and_a_new_step_reopens_it(net: Net) -> None:
    first = published(net)
    again = published(net)
    assert again == first
    restarted = Remote(net.owner.repo, "origin")  # an owner restarted: nothing remembered but its mirror
    assert published(Net(net.daemon, net.url, restarted, net.base, net.make)) == first
    w = net.make("w")
    lease = w.claim(seen_job(w), worker_id("w"))
    assert lease is not None
    head = work_commit(w, first, "step 1\n")
    assert w.finish(lease, head, "done", "s", "", "m", {}, None) is not None
    assert net.owner.fetch()[RUN].open_jobs() == []
    git(net.owner.repo.root, "checkout", "-q", "--detach", net.base)  # the owner commits the files as its own
    owners = commit_files(net.owner.repo.root, {"a.txt": "step 1\n"}, "agent a")
    step_two = published(net, step=2, head=owners)
    assert step_two.oid != first.oid and step_two.head == owners
    view = w.fetch()[RUN]
    assert [job.oid for job in view.open_jobs()] == [step_two.oid]
    assert git(w.repo.root, "rev-parse", f"{step_two.oid}^") == owners
    assert view.work["a"] == head  # still step 1's work, which step 2 does not build on
    assert w.start_point(view, step_two) == owners


def test_open_jobs_follow_the_plan_order_and_malformed_refs_are_skipped(net: Net) -> None:
    published(net, "b")
    published(net, "a")
    junk = net.owner.repo.commit_file("job.json", b"not json", [], "junk", ("t", "t@t"), "1700000000 +0000")
    assert net.owner.repo.push_atomic("origin", [(refs.job_ref(RUN, "c"), junk, "")])
    other = net.owner.repo.commit_file("run.json", b"{}", [], "junk", ("t", "t@t"), "1700000000 +0000")
    assert net.owner.repo.push_atomic("origin", [(refs.plan_ref("broken"), other, "")])
    views = net.make("w").fetch()
    assert list(views) == [RUN]
    assert [job.agent for job in views[RUN].open_jobs()] == ["a", "b"]
    assert views[RUN].info.plan == PLAN and views[RUN].info.lease_seconds == LEASE_SECONDS


def test_a_resumed_owner_republishes_its_run(net: Net) -> None:
    published(net)
    resumed = RunInfo(RUN, "the task", "main", net.base, "owner-host", 2, LEASE_SECONDS, PLAN)
    Remote(net.owner.repo, "origin").publish_run(resumed)
    assert net.make("w").fetch()[RUN].info.owner_pid == 2
    plan = net.served()[refs.plan_ref(RUN)]
    another = RunInfo(RUN, "another task", "main", net.base, "elsewhere", 3, LEASE_SECONDS, PLAN)
    with pytest.raises(GitteamError, match="already has a run r1 of another task"):
        net.make("other-owner").publish_run(another)
    assert net.served()[refs.plan_ref(RUN)] == plan


def test_closing_a_run_removes_its_refs_and_no_others(net: Net) -> None:
    job = published(net)
    net.owner.publish_run(RunInfo("r2", "other", "main", net.base, "h", 1, LEASE_SECONDS, PLAN))
    w = net.make("w")
    lease = w.claim(seen_job(w), worker_id("w"))
    assert lease is not None and w.renew(lease, work_commit(w, job, "x\n")) is not None
    assert sorted(net.owner.fetch()) == [RUN, "r2"]
    net.owner.close_run(RUN)
    served = net.served()
    assert not [ref for ref in served if ref.startswith(refs.run_prefix(RUN))]
    assert refs.plan_ref("r2") in served and "refs/heads/main" in served
    assert list(net.owner.views()) == ["r2"]  # close_run's fetch of r1 pruned r1's mirror, not r2's
    assert list(net.owner.fetch()) == ["r2"]
    assert not net.owner.repo.refs(f"{net.owner.mirror}{RUN}/")  # the mirror follows (pruned)


def test_the_target_moves_only_forward_and_only_from_the_value_expected(net: Net, tmp_path: Path) -> None:
    owner = net.owner.repo
    git(owner.root, "checkout", "-q", "-b", "work")
    ahead = commit_files(owner.root, {"new.txt": "new\n"})
    assert net.owner.push_target("main", ahead, net.base)
    assert net.served()["refs/heads/main"] == ahead
    further = commit_files(owner.root, {"new.txt": "newer\n"})
    assert not net.owner.push_target("main", further, net.base)  # main is no longer at base there
    assert net.served()["refs/heads/main"] == ahead
    git(owner.root, "checkout", "-q", "--detach", net.base)
    sideways = commit_files(owner.root, {"other.txt": "x\n"})
    with pytest.raises(GitteamError, match="does not descend"):
        net.owner.push_target("main", sideways, ahead)
    assert net.served()["refs/heads/main"] == ahead


# -- transport ----------------------------------------------------------------------------------------------------

def test_a_shallow_worker_clone_gets_what_a_job_needs(net: Net, repo: Path) -> None:
    owner = net.owner.repo
    start = commit_files(owner.root, {"old.txt": "0\n"})  # the diff base: deeper than the shallow clone sees
    for index in range(1, 3):
        commit_files(owner.root, {"old.txt": f"{index}\n"})
    git(owner.root, "push", "-q", "origin", "HEAD:main")
    head = commit_files(owner.root, {"a.txt": "owner's head, on no branch of the remote\n"})
    job = published(Net(net.daemon, net.url, net.owner, start, net.make), head=head)
    shallow = net.make("shallow", "--depth", "1")
    assert git(shallow.repo.root, "rev-parse", "--is-shallow-repository") == "true"
    seen = seen_job(shallow)
    assert seen == job
    fetches = shallow.stats.fetches
    shallow.objects(seen.head)  # the job's parent came with the job
    assert shallow.stats.fetches == fetches
    git(shallow.repo.root, "checkout", "-q", "--detach", seen.head)
    assert (shallow.repo.root / "a.txt").read_text() == "owner's head, on no branch of the remote\n"
    assert not shallow.repo.has_commit(seen.start)
    shallow.objects(seen.start)  # deeper than the clone: fetched by its id
    assert shallow.repo.read_blob(seen.start, "old.txt") == b"0\n"
    assert git(shallow.repo.root, "diff", "--name-only", seen.start, seen.head) == "a.txt\nold.txt"
    lease = shallow.claim(seen, worker_id("shallow"))  # and the whole worker's cycle pushes from it
    assert lease is not None
    checkpoint = work_commit(shallow, seen, "half\n")
    lease = shallow.renew(lease, checkpoint)
    assert lease is not None
    final = commit_files(shallow.repo.root, {"a.txt": "whole\n"})
    result = shallow.finish(lease, final, "done", "s", "", "m", {}, None)
    assert result is not None
    assert net.owner.fetch()[RUN].results["a"].head == final
    assert net.owner.repo.read_blob(final, "a.txt") == b"whole\n"


def test_a_shallow_clone_made_after_the_target_moved_on_still_gets_a_jobs_whole_parent_chain(net: Net) -> None:
    owner = net.owner.repo
    head = commit_files(owner.root, {"a.txt": "on the run's base\n"})  # the owner's work on base, not on main
    git(owner.root, "checkout", "-q", "--detach", net.base)
    moved = commit_files(owner.root, {"later.txt": "main moved on\n"})
    git(owner.root, "push", "-q", "origin", f"{moved}:refs/heads/main")
    job = published(net, head=head)
    shallow = net.make("shallow", "--depth", "1")
    assert not shallow.repo.has_commit(net.base)
    seen = seen_job(shallow)
    assert seen == job and shallow.repo.has_commit(seen.head) and shallow.repo.has_commit(seen.start)
    assert git(shallow.repo.root, "rev-list", "--count", seen.head) == "2"  # down to the root: nothing missing
    git(shallow.repo.root, "checkout", "-q", "--detach", seen.head)
    assert (shallow.repo.root / "a.txt").read_text() == "on the run's base\n"


def test_an_unreachable_remote_is_one_line_and_no_traceback(net: Net, tmp_path: Path, repo: Path) -> None:
    local = find_repository(repo)
    head = local.rev_parse("HEAD")
    assert head is not None
    with socket.socket() as sock:  # bound, never listening: a connection to it is refused
        sock.bind(("127.0.0.1", 0))
        closed = f"git://127.0.0.1:{sock.getsockname()[1]}/origin.git"
        for url, words in ((closed, "Connection refused"), (net.daemon.url("nothing-here.git"), "")):
            remote = Remote(local, url)
            with pytest.raises(RemoteUnavailable) as caught:
                remote.fetch()
            message = str(caught.value)
            assert "\n" not in message and message.startswith(f"cannot fetch from {url}: ") and words in message
            with pytest.raises(RemoteUnavailable, match=f"^cannot push to {url}: "):
                remote.push_target("main", head, head)
    assert local.refs("refs/gitteam/") == {}


def test_a_remote_whose_policy_refuses_the_refs_is_an_error_not_a_lost_race(net: Net) -> None:
    job = published(net)
    w = net.make("w")
    seen = seen_job(w)
    hook = net.daemon.path("origin.git") / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'no gitteam refs here' >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(RemoteUnavailable, match=r"^cannot push to origin: .*leases/a.*hook declined") as caught:
        w.claim(seen, worker_id("w"))
    assert "\n" not in str(caught.value)
    assert refs.lease_ref(RUN, "a") not in net.served() and job.oid


def test_a_fetch_killed_while_it_held_a_mirror_ref_blocks_no_later_fetch(net: Net) -> None:
    published(net)
    w = net.make("w")
    assert w.fetch()[RUN].jobs["a"]
    published(net, step=2)
    stale = w.repo.common_dir / f"{w.mirror}{RUN}/jobs/a.lock"  # what git leaves when killed mid-update
    stale.write_text("")
    assert w.fetch()[RUN].jobs["a"].step == 2
    assert not stale.exists()


def test_an_unknown_remote_name_is_a_usage_error(repo: Path) -> None:
    with pytest.raises(UsageError, match="unknown remote 'origin'"):
        Remote(find_repository(repo), "origin")
    with pytest.raises(UsageError, match="invalid remote"):
        Remote(find_repository(repo), "--upload-pack=evil")


def test_mirror_names_are_ref_safe() -> None:
    assert refs.mirror_prefix("origin") == "refs/gitteam/mirror/origin/runs/"
    url = refs.mirror_prefix("git://host:9418/x.git")
    assert url.startswith("refs/gitteam/mirror/url-") and url.count("/") == 5
    assert refs.mirror_prefix("git://host:9418/x.git") == url != refs.mirror_prefix("git://host:9418/y.git")


def test_worker_ids_are_per_process() -> None:
    mine = WorkerId.mine()
    assert WorkerId.mine() == mine
    assert mine.id.startswith(f"{mine.host}-{mine.pid}-") and len(mine.id.rsplit("-", 1)[1]) == 6


def test_the_protocol_line_reads_back_as_the_numbers_it_printed() -> None:
    from gitteam.remote.protocol import Stats

    stats = Stats(fetches=3, fetch_seconds=0.25, pushes=2, push_seconds=0.5, rejected=1)
    assert Stats.read(f"gitteam worker: {stats.line()}\n") == stats
    assert Stats.read("no such line") is None
    assert stats + stats == Stats(6, 0.5, 4, 1.0, 2)
