"""A small pool of connection-owning worker threads that share one queue of tables."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg

from datasafe.engines.postgres.connection import db_error

T = TypeVar("T")


def run_workers(
    jobs: int,
    items: Sequence[T],
    open_connection: Callable[[], psycopg.Connection[Any]],
    work: Callable[[psycopg.Connection[Any], T, threading.Event], None],
    what: str,
    finish: Callable[[psycopg.Connection[Any]], object] | None = None,
) -> None:
    """Process ``items`` in order with ``jobs`` threads, each on its own connection.

    The first failure stops the others (they poll the event) and is re-raised; so is a signal
    arriving in the calling thread, after every worker has stopped, so the caller can clean up
    knowing nothing is still writing.
    """
    queue = deque(items)
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            conn = open_connection()
        except BaseException as exc:
            errors.append(exc)
            stop.set()
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
        except psycopg.Error as exc:
            errors.append(db_error(what, exc))
            stop.set()
        except BaseException as exc:
            errors.append(exc)
            stop.set()
        finally:
            conn.close()

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
