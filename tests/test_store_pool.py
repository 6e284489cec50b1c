"""The store's thread pool runs independent storage calls side by side; a task that itself
fans out (a tenant refresh reading every index shard, say) must not deadlock it."""

from __future__ import annotations

import threading

import pytest

from shared.storage.pool import run_all, submit


def test_tasks_that_fan_out_inside_the_pool_finish_instead_of_deadlocking() -> None:
    seen: list[str] = []
    lock = threading.Lock()

    def inner(n: int) -> int:
        with lock:
            seen.append(threading.current_thread().name)
        return n

    def outer(n: int) -> None:
        # Sixteen outer tasks fill the eight workers; each waits on work of its own.
        assert [submit(inner, k).result() for k in range(4)] == [0, 1, 2, 3]
        run_all(lambda k=k: inner(k) for k in range(4))

    done = threading.Event()
    runner = threading.Thread(
        target=lambda: (run_all(lambda n=n: outer(n) for n in range(16)), done.set())
    )
    runner.start()
    assert done.wait(timeout=30), "the pool deadlocked"
    assert len(seen) == 16 * 8
    assert all(name.startswith("ca-watch-store") for name in seen)


def test_a_failure_inside_the_pool_reaches_the_caller() -> None:
    def fails() -> None:
        raise ValueError("storage said no")

    def outer() -> None:
        submit(fails).result()

    with pytest.raises(ValueError, match="storage said no"):
        run_all([outer, outer])


def test_a_forked_process_gets_a_working_pool() -> None:
    """A process forked after the pool started threads inherits the pool but not its threads;
    `make mutation` forks a test process per mutant, and before the fix every storage write
    there waited forever on a pool with no workers."""
    import os
    import time

    run_all(lambda: time.sleep(0.01) for _ in range(16))  # every worker thread started
    child = os.fork()
    if child == 0:  # the child: exit 0 only if the pool runs work within 5 s
        finished = threading.Event()
        threading.Thread(
            target=lambda: (run_all([lambda: None, lambda: None]), finished.set()), daemon=True
        ).start()
        os._exit(0 if finished.wait(5) else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the forked process could not use the pool"
