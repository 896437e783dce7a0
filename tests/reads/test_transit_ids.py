"""Transit ids: UUIDv7, unique across threads and across a fork (uvicorn's workers), though
their random bits are drawn from the OS many ids at a time."""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from vigila.reads.ingest import time_ordered_id


def test_time_ordered_ids_are_v7_unique_and_ordered_by_millisecond() -> None:
    ids = [time_ordered_id() for _ in range(10_000)]  # several refills of the entropy buffer
    assert len(set(ids)) == len(ids)
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)
    ms = [u.int >> 80 for u in ids]
    assert ms == sorted(ms) and abs(ms[-1] - time.time_ns() // 1_000_000) < 5_000


def test_threads_and_forked_children_draw_their_own_random_bits() -> None:
    with ThreadPoolExecutor(4) as pool:
        batches = list(pool.map(lambda _: [time_ordered_id() for _ in range(1000)], range(4)))
    tails = [u.int & (2**62 - 1) for batch in batches for u in batch]
    assert len(set(tails)) == len(tails)
    time_ordered_id()  # the parent's buffer now holds bytes a child could reuse
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, through the pipe
        os.close(read)
        os.write(write, b"".join(time_ordered_id().bytes for _ in range(8)))
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    parent = b"".join(time_ordered_id().bytes for _ in range(8))
    tails_child = {int.from_bytes(child[i + 8:i + 16]) for i in range(0, len(child), 16)}
    tails_parent = {int.from_bytes(parent[i + 8:i + 16]) for i in range(0, len(parent), 16)}
    assert len(child) == 128 and not tails_child & tails_parent
