"""Streaming transfers for S3 storage: multipart uploads with checksums, resumable reads."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import logging
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from datasafe.errors import IntegrityError, NotFound, StorageError
from datasafe.storage.base import ObjectWriter
from datasafe.storage.s3_settings import MAX_PARTS

if TYPE_CHECKING:
    from datasafe.storage.s3 import S3Storage

log = logging.getLogger(__name__)

READ_BUFFER = 1 << 20


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def normalize_checksum(value: str | None, etag: str | None) -> str | None:
    """``sha256:<base64>`` or, for a multipart object, ``sha256:<base64>-<parts>``.

    Some servers leave the part count off the composite checksum of a multipart object; it is
    taken from the ETag (``"...-<parts>"``) so writer and stat always agree.
    """
    if not value:
        return None
    if "-" not in value and etag:
        count = etag.strip('"').rpartition("-")[2]
        if "-" in etag and count.isdigit():
            value = f"{value}-{count}"
    return f"sha256:{value}"


@dataclass(frozen=True)
class Part:
    number: int
    etag: str
    digest: bytes


class S3Writer(ObjectWriter):
    """Buffers up to ``part_size``; one PutObject if the object stays smaller, else a multipart upload.

    At most ``concurrency`` parts are in flight while the next one fills, so a writer holds at most
    ``part_size × (concurrency + 1)`` bytes.
    """

    def __init__(self, storage: S3Storage, full: str) -> None:
        self._s3 = storage
        self._full = full
        self._part_size = storage.settings.part_size
        self._concurrency = storage.settings.concurrency
        self._buf = bytearray()
        self._upload_id: str | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight: set[Future[Part]] = set()
        self._parts: list[Part] = []
        self._next_part = 1
        self._state: Literal["open", "committed", "aborted"] = "open"
        self.bytes_written = 0
        self.checksum = None

    def write(self, data: bytes | memoryview) -> None:
        if self._state != "open":
            raise StorageError(f"write to {self._s3._where(self._full)} after commit or abort")
        view = memoryview(data).cast("B")
        try:
            while view:
                room = self._part_size - len(self._buf)
                self._buf += view[:room]
                view = view[room:]
                if len(self._buf) >= self._part_size:
                    self._send_part()
        except BaseException:
            self.abort()
            raise
        self.bytes_written += memoryview(data).nbytes

    def _send_part(self) -> None:
        if self._upload_id is None:
            response = self._s3._call(
                "CreateMultipartUpload", self._full, Bucket=self._s3.bucket, Key=self._full,
                ChecksumAlgorithm="SHA256", **self._s3._write_args(),
            )
            self._upload_id = str(response["UploadId"])
            self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="datasafe-s3-upload")
        if self._next_part > MAX_PARTS:
            raise StorageError(
                f"{self._s3._where(self._full)} would need more than {MAX_PARTS} parts",
                hint="raise part_size in the s3 settings",
            )
        while len(self._in_flight) >= self._concurrency:
            self._collect(FIRST_COMPLETED)
        body, self._buf = bytes(self._buf), bytearray()
        assert self._pool is not None
        self._in_flight.add(self._pool.submit(self._upload_part, self._next_part, body))
        self._next_part += 1

    def _upload_part(self, number: int, body: bytes) -> Part:
        digest = hashlib.sha256(body).digest()
        response = self._s3._call(
            "UploadPart", self._full, Bucket=self._s3.bucket, Key=self._full, UploadId=self._upload_id,
            PartNumber=number, Body=body, ChecksumAlgorithm="SHA256", ChecksumSHA256=b64(digest),
        )
        return Part(number, str(response["ETag"]), digest)

    def _collect(self, how: str) -> None:
        done, _ = wait(self._in_flight, return_when=how)
        for future in done:
            self._in_flight.discard(future)
            self._parts.append(future.result())  # raises the part's error

    def commit(self) -> None:
        if self._state == "committed":
            return
        if self._state == "aborted":
            raise StorageError(f"commit of {self._s3._where(self._full)} after it was aborted")
        try:
            if self._upload_id is None:
                body, self._buf = bytes(self._buf), bytearray()
                digest = b64(hashlib.sha256(body).digest())
                self._s3._call(
                    "PutObject", self._full, Bucket=self._s3.bucket, Key=self._full, Body=body,
                    ChecksumAlgorithm="SHA256", ChecksumSHA256=digest, **self._s3._write_args(),
                )
                self.checksum = f"sha256:{digest}"
            else:
                if self._buf:
                    self._send_part()
                while self._in_flight:
                    self._collect(FIRST_COMPLETED)
                self.checksum = self._complete()
        except BaseException:
            self.abort()
            raise
        self._state = "committed"
        self._shutdown()

    def _complete(self) -> str:
        parts = sorted(self._parts, key=lambda p: p.number)
        composite = f"{b64(hashlib.sha256(b''.join(p.digest for p in parts)).digest())}-{len(parts)}"
        s3 = self._s3
        try:
            response = s3._client.complete_multipart_upload(
                Bucket=s3.bucket, Key=self._full, UploadId=self._upload_id,
                MultipartUpload={"Parts": [
                    {"PartNumber": p.number, "ETag": p.etag, "ChecksumSHA256": b64(p.digest)} for p in parts
                ]},
            )
        except s3._errors as exc:
            if s3._code(exc) != "NoSuchUpload":
                raise s3._error(exc, "CompleteMultipartUpload", self._full) from exc
            # a retry after a lost answer: the upload is complete if the object has our checksum
            try:
                stored = s3.stat(s3._relative(self._full)).checksum
            except NotFound:
                stored = None
            if stored != f"sha256:{composite}":
                raise s3._error(exc, "CompleteMultipartUpload", self._full) from exc
            self._upload_id = None
            return stored
        self._upload_id = None  # completed: nothing left to abort
        reported = normalize_checksum(response.get("ChecksumSHA256"), response.get("ETag"))
        if reported is not None and reported != f"sha256:{composite}":
            raise IntegrityError(
                f"S3 reports checksum {reported} for {s3._where(self._full)}, datasafe computed sha256:{composite}"
            )
        return f"sha256:{composite}"

    def abort(self) -> None:
        if self._state != "open":
            return
        self._state = "aborted"
        self._buf = bytearray()
        for future in self._in_flight:
            future.cancel()
        if self._in_flight:
            # a part still being sent could land after the abort and be kept: let it finish first
            wait(self._in_flight)
            self._in_flight.clear()
        self._shutdown()
        if self._upload_id is not None:
            s3 = self._s3
            try:
                s3._client.abort_multipart_upload(Bucket=s3.bucket, Key=self._full, UploadId=self._upload_id)
            except s3._errors as exc:
                if s3._code(exc) != "NoSuchUpload":  # NoSuchUpload: it is gone already
                    error = s3._error(exc, "AbortMultipartUpload", self._full)
                    log.warning("%s; its parts stay until a lifecycle rule (AbortIncompleteMultipartUpload) "
                                "removes them", error)
            self._upload_id = None

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None


class S3Reader(io.RawIOBase):
    """The body of a GetObject; a connection lost mid-body resumes with a ranged GET of the same version."""

    def __init__(self, storage: S3Storage, full: str, response: dict[str, Any]) -> None:
        self._s3 = storage
        self._full = full
        self._body = response["Body"]
        self._etag = response.get("ETag")
        self._size = int(response["ContentLength"])
        self._pos = 0
        self._resumes_left = storage.settings.max_attempts - 1
        bce = storage._bce
        self._stream_errors = (
            bce.ReadTimeoutError, bce.ResponseStreamingError, bce.IncompleteReadError, bce.ConnectionClosedError,
        )

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self._size or not view:
            return 0
        while True:
            try:
                data = self._body.read(len(view))
            except self._stream_errors as exc:
                self._resume(exc)
                continue
            except self._s3._errors as exc:
                raise self._s3._error(exc, "GetObject", self._full) from exc
            if not data:  # the server ended the body early
                self._resume(None)
                continue
            n = len(data)
            view[:n] = data
            self._pos += n
            return n

    def readall(self) -> bytes:
        out = bytearray()
        chunk = bytearray(READ_BUFFER)
        while n := self.readinto(chunk):
            out += memoryview(chunk)[:n]
        return bytes(out)

    def _resume(self, exc: Exception | None) -> None:
        where = self._s3._where(self._full)
        if self._resumes_left <= 0:
            raise StorageError(
                f"connection lost while reading {where} at byte {self._pos} of {self._size}",
                hint=f"it was resumed {self._s3.settings.max_attempts - 1} times; check the network",
            ) from exc
        self._resumes_left -= 1
        log.debug("resuming the read of %s at byte %d", where, self._pos)
        self._close_body()
        args: dict[str, Any] = {"Range": f"bytes={self._pos}-"}
        if self._etag:
            args["IfMatch"] = self._etag
        try:
            response = self._s3._client.get_object(Bucket=self._s3.bucket, Key=self._full, **args)
        except self._s3._errors as error:
            if self._s3._code(error) == "PreconditionFailed":
                raise StorageError(f"{where} was replaced while it was being read") from error
            raise self._s3._error(error, "GetObject", self._full) from error
        self._body = response["Body"]

    def _close_body(self) -> None:
        with contextlib.suppress(Exception):  # the connection is gone already
            self._body.close()

    def close(self) -> None:
        if not self.closed:
            self._close_body()
        super().close()
