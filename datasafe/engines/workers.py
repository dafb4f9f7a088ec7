"""A small pool of connection-owning worker threads that share one queue of tables (any engine)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from datasafe.errors import DatasafeError

T = TypeVar("T")
C = TypeVar("C")


def run_workers(
    jobs: int,
    items: Sequence[T],
    open_connection: Callable[[], C],
    work: Callable[[C, T, threading.Event], None],
    *,
    close: Callable[[C], Any],
    finish: Callable[[C], object] | None = None,
    map_error: Callable[[Exception], BaseException] | None = None,
) -> None:
    """Process ``items`` in order with ``jobs`` threads, each on its own connection.

    The first failure stops the others (they poll the event) and is re-raised, passed through
    ``map_error`` when it is not already a datasafe error; so is a signal arriving in the calling
    thread, after every worker has stopped, so the caller can clean up knowing nothing is still
    writing.
    """
    queue = deque(items)
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def fail(exc: BaseException) -> None:
        if map_error is not None and isinstance(exc, Exception) and not isinstance(exc, DatasafeError):
            exc = map_error(exc)
        errors.append(exc)
        stop.set()

    def worker() -> None:
        try:
            conn = open_connection()
        except BaseException as exc:
            fail(exc)
            return
        try:
            while not stop.is_set():
                with lock:
                    if not queue:
                        break
                    item = queue.popleft()
                work(conn, item, stop)
            if finish is not None and not stop.is_set():
                finish(conn)
        except BaseException as exc:
            fail(exc)
        finally:
            close(conn)

    threads = [threading.Thread(target=worker, name=f"datasafe-worker-{i}", daemon=True)
               for i in range(min(jobs, max(1, len(items))))]
    try:
        for th in threads:
            th.start()
        for th in threads:
            while th.is_alive():
                th.join(0.2)
    except BaseException:
        stop.set()
        for th in threads:
            if th.is_alive():
                th.join()
        raise
    if errors:
        raise errors[0]
