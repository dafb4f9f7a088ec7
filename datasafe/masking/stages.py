"""The reading and the writing of a masked table, each in a helper thread.

While worker processes mask, the main process reads the source chunks (SHA-256, zstd, BLAKE3)
and writes the masked ones (BLAKE3, zstd, SHA-256, storage). zstd and the hashes let go of the
GIL while they work, so running the reading and the writing in threads of their own puts them
side by side with the main thread's work instead of after it: for a table whose masking is
cheap, the main process is what limits the speed.

Either stage hands its failure to the main thread, at the item where it happened: what was read
before a corrupt chunk still arrives first, and a write that failed makes the next call fail.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Protocol

#: items (blocks of about a MiB) waiting between a stage and the main thread
DEPTH = 4
_POLL_S = 0.1
_END = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetched(items: Iterable[bytes], depth: int = DEPTH) -> Iterator[bytes]:
    """``items``, produced ahead in a helper thread; the producer's exception is raised in order."""
    q: queue.Queue[object] = queue.Queue(depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer
            put(_Failure(exc))
            return
        put(_END)

    thread = threading.Thread(target=run, name="datasafe-read", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


class Sink(Protocol):
    def write(self, data: bytes, rows: int | None = None) -> None: ...


class BackgroundWriter:
    """Calls ``sink.write`` in a helper thread, in order; :meth:`close` waits for the last one."""

    def __init__(self, sink: Sink, depth: int = DEPTH) -> None:
        self._sink = sink
        self._q: queue.Queue[object] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="datasafe-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _END:
                return
            if self._error is None:
                try:
                    self._sink.write(*item)  # type: ignore[misc]
                except BaseException as exc:  # raised in the main thread by the next call
                    self._error = exc

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, data: bytes, rows: int | None = None) -> None:
        self._check()
        self._q.put((data, rows))

    def close(self) -> None:
        """Wait until everything is written; raises what a write raised."""
        if self._thread.is_alive():
            self._q.put(_END)
            self._thread.join()
        self._check()

    def stop(self) -> None:
        """Drop what waits and end the thread (after a failure elsewhere); raises nothing."""
        while True:
            try:
                self._q.get_nowait()
            except queue.Empty:
                break
        if self._thread.is_alive():
            self._q.put(_END)
            self._thread.join()
