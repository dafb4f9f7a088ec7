"""Masking blocks of rows in worker processes.

Masking is CPU-bound Python, so threads would take turns; forked processes mask blocks side by
side. Each worker inherits the table's :class:`~datasafe.masking.batch.BatchMasker` (transformers,
Faker pools, key) at the fork instead of receiving it pickled. Blocks and masked blocks travel
through memory shared with the workers; the pipes carry only which slot to read and the result's
small parts (unique-key hashes, errors).

Block ``k`` goes to worker ``k % workers`` and results are taken in block order, so the masked
table is byte for byte what masking in one process writes; uniqueness is decided by the parent,
in row order, from the hashes the workers return. At most :data:`IN_FLIGHT` blocks per worker
are in flight, which bounds memory.
"""

from __future__ import annotations

import gc
import mmap
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Generator, Iterable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from datasafe.errors import DatasafeError
from datasafe.masking.batch import BatchMasker, BatchResult

#: blocks in flight per worker
IN_FLIGHT = 2
#: shared bytes per slot for a block and for its masked form; larger ones go through the pipe
IN_SIZE = 2 << 20
OUT_SIZE = 4 << 20
_SLOT = IN_SIZE + OUT_SIZE


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def can_fork() -> bool:
    """Whether workers can be forked (they inherit the masker instead of receiving it pickled)."""
    return "fork" in multiprocessing.get_all_start_methods()


def masked_blocks(masker: BatchMasker, blocks: Iterable[bytes], workers: int
                  ) -> Generator[tuple[bytes, BatchResult], None, None]:
    """``(block, masker.mask(block))`` for every block, in order, masked by ``workers`` processes.

    Raises:
        DatasafeError: a worker process ended without answering (killed, out of memory).
    """
    gc.collect()
    gc.freeze()  # the workers share the parent's objects: keep the collector from touching (copying) them
    try:
        pool = _Pool(masker, workers)
        try:
            pending: deque[tuple[int, bytes]] = deque()
            for k, block in enumerate(blocks):
                if len(pending) >= IN_FLIGHT * workers:
                    done, block_done = pending.popleft()
                    yield block_done, pool.result(done)
                pool.send(k, block)
                pending.append((k, block))
            while pending:
                done, block_done = pending.popleft()
                yield block_done, pool.result(done)
            pool.close()
        finally:
            pool.stop()
    finally:
        gc.unfreeze()


class _Pool:
    """Forked workers, each with a pipe and :data:`IN_FLIGHT` slots of shared memory."""

    def __init__(self, masker: BatchMasker, workers: int) -> None:
        self.workers = workers
        self.shared = mmap.mmap(-1, workers * IN_FLIGHT * _SLOT)  # anonymous and shared with the children
        self.processes: list[BaseProcess] = []
        context = multiprocessing.get_context("fork")
        pipes = [context.Pipe() for _ in range(workers)]
        self.conns = [mine for mine, _ in pipes]
        try:
            for w, (_, theirs) in enumerate(pipes):
                others = [c for pair in pipes for c in pair if c is not theirs]
                process = context.Process(target=_serve, args=(masker, theirs, others, self.shared),
                                          name=f"datasafe-mask-{w}", daemon=True)
                process.start()
                self.processes.append(process)
        except BaseException:
            self.stop()
            raise
        finally:
            for _, theirs in pipes:
                theirs.close()

    def _slot(self, k: int) -> tuple[int, Connection, int]:
        w = k % self.workers
        return w, self.conns[w], (w * IN_FLIGHT + (k // self.workers) % IN_FLIGHT) * _SLOT

    def send(self, k: int, block: bytes) -> None:
        w, conn, offset = self._slot(k)
        try:
            if len(block) <= IN_SIZE:
                self.shared[offset:offset + len(block)] = block
                conn.send((offset, len(block), None))
            else:
                conn.send((offset, len(block), block))
        except OSError:
            raise self._gone(w) from None

    def result(self, k: int) -> BatchResult:
        w, conn, offset = self._slot(k)
        try:
            size, result = conn.recv()
        except (EOFError, OSError):
            raise self._gone(w) from None
        if size >= 0:
            start = offset + IN_SIZE
            result.data = self.shared[start:start + size]
        return result  # type: ignore[no-any-return]

    def _gone(self, w: int) -> DatasafeError:
        process = self.processes[w]
        process.join(1)
        return DatasafeError(f"a masking worker process stopped unexpectedly (exit code {process.exitcode})")

    def close(self) -> None:
        """Let the workers finish."""
        for conn in self.conns:
            conn.send(None)
        for process in self.processes:
            process.join()

    def stop(self) -> None:
        """Stop whatever still runs (after an error) and free the shared memory."""
        for process in self.processes:
            if process.is_alive():
                process.terminate()
            process.join()
        for conn in self.conns:
            conn.close()
        self.shared.close()


def _serve(masker: BatchMasker, conn: Connection, others: list[Connection], shared: mmap.mmap) -> None:
    """A worker's loop: mask the blocks the parent announces until it says stop (or goes away)."""
    # Ctrl-C reaches the whole process group: the parent stops the workers, which ignore it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for other in others:  # so that a parent that dies closes this worker's pipe for good
        other.close()
    while True:
        try:
            message: Any = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        offset, size, inline = message
        result = masker.mask(inline if inline is not None else shared[offset:offset + size])
        data, result.data = result.data, b""
        if len(data) <= OUT_SIZE:
            shared[offset + IN_SIZE:offset + IN_SIZE + len(data)] = data
            reply = (len(data), result)
        else:
            result.data = data
            reply = (-1, result)
        try:
            conn.send(reply)
        except Exception:
            if result.error is None:
                raise
            # an error that cannot be pickled: send what it said (nothing was written yet)
            result.error = DatasafeError(f"{type(result.error).__name__}: {result.error}")
            conn.send(reply)


class Background:
    """One function run in a forked process beside the rest of the work; its result (or the
    exception it raised) comes back through a pipe when :meth:`result` asks for it.

    The child inherits everything at the fork (nothing is pickled on the way in); what it returns
    must pickle. With ``nice``, it runs at that lower priority: on CPU time the rest leaves over.
    :meth:`stop` ends it early (a failed run); :meth:`result` more than once is an error.
    """

    def __init__(self, name: str, target: Callable[[], Any], *, nice: int = 0) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, theirs = context.Pipe(duplex=False)
        self._process = context.Process(target=_run_background, args=(target, theirs, self._conn, nice), name=name,
                                        daemon=True)
        gc.collect()
        gc.freeze()  # as for the workers: the child's collector must not touch (copy) the parent's objects
        try:
            self._process.start()
        finally:
            gc.unfreeze()
        theirs.close()

    def result(self) -> Any:
        """Wait for the function's result; raises what it raised (DatasafeError if it died)."""
        try:
            ok, value = self._conn.recv()
        except (EOFError, OSError):
            self._process.join(1)
            raise DatasafeError(f"background process {self._process.name} stopped unexpectedly (exit code "
                                f"{self._process.exitcode})") from None
        finally:
            self._conn.close()
        self._process.join()
        if not ok:
            raise value
        return value

    def stop(self) -> None:
        """End the process now, if it still runs."""
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._conn.close()


def _run_background(target: Callable[[], Any], conn: Connection, parents: Connection, nice: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides, as for the workers
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parents.close()
    if nice:
        os.nice(nice)
    try:
        reply: tuple[bool, Any] = (True, target())
    except BaseException as exc:  # sent back: the parent raises it, where it asks for the result
        reply = (False, exc)
    try:
        conn.send(reply)
    except Exception as exc:  # a result or an error that does not pickle
        conn.send((False, DatasafeError(f"{type(exc).__name__}: {exc}")))
    conn.close()
