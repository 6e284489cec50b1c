"""One thread pool for independent storage round trips (writes side by side)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

_POOL_PREFIX = "ca-watch-store"
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix=_POOL_PREFIX)


def _new_pool_after_fork() -> None:
    # A forked child inherits the executor but none of its threads: work submitted there would
    # wait forever. (The Functions host does not fork; test runners and `make mutation` do.)
    global _POOL
    _POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix=_POOL_PREFIX)


os.register_at_fork(after_in_child=_new_pool_after_fork)


def _in_pool() -> bool:
    # A pool thread that waited on tasks of the same pool could deadlock it: run inline.
    return threading.current_thread().name.startswith(_POOL_PREFIX)


def submit(task: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
    if _in_pool():
        done: Future[Any] = Future()
        try:
            done.set_result(task(*args, **kwargs))
        except BaseException as exc:  # handed to the caller through the future, as the pool would
            done.set_exception(exc)
        return done
    return _POOL.submit(task, *args, **kwargs)


def run_all(tasks: Iterable[Callable[[], object]]) -> None:
    """Run independent storage calls side by side (each is a network round trip);
    re-raise the first failure so the host retries the event."""
    pending = list(tasks)
    if len(pending) == 1 or _in_pool():
        for task in pending:
            task()
        return
    for future in [_POOL.submit(task) for task in pending]:
        future.result()
