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
