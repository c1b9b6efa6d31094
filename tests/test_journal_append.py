"""Appending to a run's journal from the agents' threads at once: every event lands whole and on disk, each
thread's in the order it appended them, and the listeners get each one once (journal.py's write lock and the
fsync one append may share with others)."""

from __future__ import annotations

import threading
from pathlib import Path

from gitteam.events import Damaged, Event, Merged
from gitteam.journal import Journal, read_events

THREADS = 8
EACH = 40


def test_events_appended_side_by_side_all_land_whole_in_each_threads_order(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "r-1")
    heard: list[Event] = []
    heard_lock = threading.Lock()

    def listener(event: Event) -> None:
        with heard_lock:
            heard.append(event)

    journal.subscribe(listener)
    start = threading.Barrier(THREADS)

    def agent(n: int) -> None:
        start.wait()
        for i in range(EACH):
            journal.append(Merged(agent=f"a{n}", head=f"{i:040d}"))

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    read = list(read_events(journal.path))
    assert not any(isinstance(e, Damaged) for e in read)
    assert len(read) == THREADS * EACH == len(heard)
    for n in range(THREADS):
        heads = [e.head for e in read if isinstance(e, Merged) and e.agent == f"a{n}"]
        assert heads == [f"{i:040d}" for i in range(EACH)]
    assert sorted((e.agent, e.head) for e in heard if isinstance(e, Merged)) == sorted(
        (e.agent, e.head) for e in read if isinstance(e, Merged))
