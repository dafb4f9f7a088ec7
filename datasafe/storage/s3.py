"""S3 storage: objects in a bucket below a prefix, ``s3://bucket/prefix``, through boto3.

Works with AWS S3 and S3-compatible servers (MinIO, Ceph RGW) that support conditional writes
(``If-None-Match: *``). Every object is uploaded with a SHA-256 checksum that S3 verifies on
receipt; objects smaller than ``part_size`` go up in one PutObject, larger ones as a multipart
upload with up to ``concurrency`` parts in flight. A multipart upload that fails or is aborted
is aborted on S3 too, so no orphan parts stay behind. boto3 is imported only when an S3
location is opened.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import hashlib
import io
import logging
import os
import re
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, BinaryIO, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from datasafe.errors import ConfigError, DatasafeError, DependencyError, IntegrityError, NotFound, StorageError
from datasafe.redact import redact
from datasafe.storage.base import ObjectStat, ObjectWriter, StorageBackend

log = logging.getLogger(__name__)

MIB = 1 << 20
#: S3's smallest allowed part (all but the last) and largest part; at most 10,000 parts per object
MIN_PART_SIZE = 5 * MIB
MAX_PART_SIZE = 5 << 30
MAX_PARTS = 10_000
#: written and removed again by check_writable
PROBE_KEY = ".datasafe-write-probe"
#: objects per DeleteObjects request (the S3 maximum)
DELETE_BATCH = 1000
READ_BUFFER = 1 * MIB

_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$")
_NOT_FOUND = {"NoSuchKey", "NotFound", "404"}
_CREDENTIALS = {
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired",
    "InvalidToken", "InvalidClientTokenId", "InvalidSecurity", "AuthFailure",
}
_WRONG_REGION = {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException", "301"}
_ACCESS = {"AccessDenied", "AllAccessDisabled", "403", "Forbidden"}
_CONDITION_FAILED = {"PreconditionFailed", "ConditionalRequestConflict"}


class S3Settings(BaseModel):
    """How datasafe talks to S3: the ``s3:`` section of datasafe.yml.

    Values left unset come from the AWS configuration as for the AWS CLI: the profile, its
    config file, the ``AWS_*`` environment variables and the instance or container role.
    """

    model_config = ConfigDict(extra="forbid")

    region: str | None = Field(None, description="bucket region; default from the AWS configuration")
    profile: str | None = Field(None, description="AWS profile; default AWS_PROFILE or 'default'")
    endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, Ceph); default AWS")
    addressing_style: Literal["auto", "virtual", "path"] = "auto"
    storage_class: str | None = Field(None, description="STANDARD_IA, INTELLIGENT_TIERING, GLACIER_IR, ...")
    sse: Literal["AES256", "aws:kms"] | None = Field(None, description="server-side encryption")
    sse_kms_key_id: str | None = Field(None, description="KMS key for sse: aws:kms; default the AWS managed key")
    part_size: int = Field(16 * MIB, description="bytes per uploaded part, 5MiB to 5GiB")
    concurrency: int = Field(2, ge=1, le=64, description="parts of one object uploaded in parallel")
    retry_mode: Literal["standard", "adaptive"] = "standard"
    max_attempts: int = Field(8, ge=1, le=100, description="attempts per request, the first included")
    object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] | None = None
    object_lock_days: int | None = Field(None, ge=1, le=36500, description="retention from the time of writing")
    connect_timeout: float | None = Field(None, gt=0, description="seconds; default 60")
    read_timeout: float | None = Field(None, gt=0, description="seconds; default 60")

    @field_validator("part_size", mode="before")
    @classmethod
    def _size(cls, v: object) -> int:
        from datasafe.config import parse_size  # not at import: config imports the storage package

        n = parse_size(v)
        if not MIN_PART_SIZE <= n <= MAX_PART_SIZE:
            raise ValueError("part_size must be between 5MiB and 5GiB")
        return n

    @field_validator("storage_class")
    @classmethod
    def _storage_class(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Z][A-Z0-9_]*", v):
            raise ValueError("storage_class is an S3 storage class such as STANDARD_IA or GLACIER_IR")
        return v

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("endpoint_url must start with http:// or https://")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> S3Settings:
        if self.sse_kms_key_id and self.sse != "aws:kms":
            raise ValueError("sse_kms_key_id needs sse: aws:kms")
        if self.object_lock_days is not None and self.object_lock_mode is None:
            raise ValueError("object_lock_days needs object_lock_mode (GOVERNANCE or COMPLIANCE)")
        return self


def parse_location(location: str, settings: S3Settings | None = None) -> tuple[str, str, S3Settings]:
    """Split ``s3://bucket/prefix?setting=value`` into bucket, prefix and settings.

    Query parameters override ``settings`` and accept the same names (for example
    ``?endpoint_url=http://127.0.0.1:9000&addressing_style=path``).
    """
    parts = urlsplit(location)
    if parts.scheme.lower() != "s3" or not parts.netloc:
        raise ConfigError(f"invalid S3 location {redact(location)!r}: expected s3://bucket/prefix")
    if "@" in parts.netloc:
        raise ConfigError(
            "an s3:// location cannot hold credentials",
            hint="use the AWS credential chain: AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a role",
        )
    bucket = parts.netloc
    if not _BUCKET.match(bucket):
        raise ConfigError(f"invalid S3 bucket name {bucket!r} in {location.split('?')[0]!r}")
    prefix = unquote(parts.path).strip("/")
    if ".." in prefix.split("/") or "//" in prefix:
        raise ConfigError(f"invalid prefix {prefix!r} in s3://{bucket}/")
    resolved = settings or S3Settings()
    query = parse_qsl(parts.query, keep_blank_values=True)
    if query:
        values: dict[str, object] = resolved.model_dump(exclude_unset=True)
        values.update(dict(query))
        try:
            resolved = S3Settings.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            name = ".".join(str(p) for p in first["loc"]) or "settings"
            msg = "unknown setting" if first["type"] == "extra_forbidden" else first["msg"]
            raise ConfigError(f"s3://{bucket}/{prefix}: {name}: {msg}") from None
    return bucket, prefix, resolved


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _normalize_checksum(value: str | None, etag: str | None) -> str | None:
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


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class _Part:
    number: int
    etag: str
    digest: bytes


class S3Storage(StorageBackend):
    """Objects below ``prefix/`` in ``bucket``."""

    scheme = "s3"

    def __init__(self, location: str, settings: S3Settings | None = None) -> None:
        self.bucket, self.prefix, self.settings = parse_location(location, settings)
        try:
            import boto3
            import botocore.exceptions
            from botocore.config import Config
        except ImportError as exc:
            raise DependencyError("S3 storage needs boto3: pip install 'datasafe[s3]'") from exc
        self._bce = botocore.exceptions
        #: every exception boto3 raises for a failed request
        self._errors: tuple[type[Exception], ...] = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)
        s = self.settings
        try:
            self._session = boto3.session.Session(profile_name=s.profile)
        except botocore.exceptions.ProfileNotFound as exc:
            raise ConfigError(f"AWS profile {s.profile!r} not found", hint="check ~/.aws/config") from exc
        config: dict[str, Any] = {
            "retries": {"mode": s.retry_mode, "total_max_attempts": s.max_attempts},
            # parts in flight of several objects written at once, plus reads
            "max_pool_connections": max(16, 4 * s.concurrency),
        }
        if s.addressing_style != "auto":  # "auto" leaves it to the AWS config file, like the CLI
            config["s3"] = {"addressing_style": s.addressing_style}
        if s.connect_timeout is not None:
            config["connect_timeout"] = s.connect_timeout
        if s.read_timeout is not None:
            config["read_timeout"] = s.read_timeout
        client_args: dict[str, Any] = {}
        # the AWS CLI reads AWS_REGION before AWS_DEFAULT_REGION; botocore only knows the latter
        region = s.region or os.environ.get("AWS_REGION")
        if region:
            client_args["region_name"] = region
        if s.endpoint_url:
            client_args["endpoint_url"] = s.endpoint_url
        try:
            self._client = self._session.client("s3", config=Config(**config), **client_args)
        except self._errors as exc:
            raise self._error(exc, "connect") from exc

    # -- naming ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @property
    def endpoint(self) -> str:
        """The endpoint requests go to, safe to print."""
        return redact(str(self._client.meta.endpoint_url))

    def _full(self, key: str) -> str:
        """The S3 key of ``key`` ("" for the root)."""
        clean = key.strip("/")
        if ".." in clean.split("/") or "//" in clean:
            raise StorageError(f"invalid object key {key!r}")
        if not clean:
            return self.prefix
        return f"{self.prefix}/{clean}" if self.prefix else clean

    def _object_key(self, key: str) -> str:
        full = self._full(key)
        if not key.strip("/"):
            raise StorageError(f"invalid object key {key!r}: empty")
        return full

    def _folder(self, prefix: str) -> str:
        """The S3 ``Prefix`` that lists what is below the folder ``prefix``."""
        full = self._full(prefix)
        return f"{full}/" if full else ""

    def _relative(self, full: str) -> str:
        return full[len(self.prefix) + 1 :] if self.prefix else full

    def _where(self, full: str | None) -> str:
        return f"s3://{self.bucket}/{full}" if full else self.url

    # -- errors ------------------------------------------------------------------------------
    def _error(self, exc: Exception, operation: str, full: str | None = None) -> DatasafeError:
        """One line for a failed request; never a credential."""
        error = self._classify(exc, operation, full)
        error.message = self._scrub(error.message)
        error.args = (error.message,)
        return error

    def _scrub(self, text: str) -> str:
        text = redact(text)
        try:
            creds = self._session.get_credentials()
        except Exception:  # resolving credentials failed: there is nothing to scrub
            return text
        for secret in (getattr(creds, "secret_key", None), getattr(creds, "token", None)):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _classify(self, exc: Exception, operation: str, full: str | None) -> DatasafeError:
        bce = self._bce
        where = self._where(full)
        if isinstance(exc, bce.ClientError):
            return self._client_error(exc, operation, where)
        if isinstance(exc, (bce.NoCredentialsError, bce.PartialCredentialsError, bce.CredentialRetrievalError)):
            return ConfigError(
                f"AWS credentials for {self.url} are missing or incomplete",
                hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with an IAM role",
            )
        if isinstance(exc, bce.InvalidRegionError):
            return ConfigError(f"invalid AWS region {exc.kwargs.get('region_name')!r}", hint="for example eu-west-1")
        if isinstance(exc, bce.NoRegionError):
            return ConfigError("no AWS region configured", hint="set region in the s3 settings or AWS_REGION")
        if isinstance(exc, (bce.EndpointConnectionError, bce.ConnectTimeoutError, bce.ProxyConnectionError)):
            return StorageError(
                f"cannot reach the S3 endpoint {self.endpoint} ({operation} {where})",
                hint="check endpoint_url/region and the network",
            )
        if isinstance(exc, bce.SSLError):
            return StorageError(f"TLS error talking to the S3 endpoint {self.endpoint} ({operation} {where})")
        if isinstance(exc, (bce.ReadTimeoutError, bce.ConnectionClosedError, bce.ResponseStreamingError)):
            return StorageError(
                f"connection to the S3 endpoint {self.endpoint} failed during {operation} of {where}",
                hint=f"it failed {self.settings.max_attempts} times; check the network or raise max_attempts",
            )
        if isinstance(exc, bce.FlexibleChecksumError):
            return IntegrityError(f"{where}: the bytes received do not match the checksum S3 stores for them")
        return StorageError(f"S3 {operation} of {where} failed: {_one_line(str(exc))}")

    def _client_error(self, exc: Any, operation: str, where: str) -> DatasafeError:
        response = exc.response
        err = response.get("Error", {})
        meta = response.get("ResponseMetadata", {})
        code = str(err.get("Code", ""))
        status = meta.get("HTTPStatusCode")
        message = _one_line(str(err.get("Message", "")))
        if code == "NoSuchBucket":
            return StorageError(f"bucket {self.bucket} does not exist", hint="create it or check the storage URL")
        if code in _NOT_FOUND:
            return NotFound(f"{where} does not exist")
        if code == "NoSuchUpload":
            return StorageError(f"the multipart upload of {where} no longer exists (aborted by someone else?)")
        if code in _CREDENTIALS:
            what = "have expired" if "Expired" in code else "were rejected"
            return ConfigError(
                f"AWS credentials {what} ({code} from {self.endpoint})",
                hint="check AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the role datasafe runs as",
            )
        if code == "RequestTimeTooSkewed":
            return ConfigError("the clock of this machine is off: S3 refuses the request signatures",
                               hint="synchronize the clock (NTP)")
        region = err.get("Region") or meta.get("HTTPHeaders", {}).get("x-amz-bucket-region")
        configured = self._client.meta.region_name
        if code in _WRONG_REGION or status == 301 or (status == 400 and region and region != configured):
            if region:
                return ConfigError(f"bucket {self.bucket} is in region {region}, not {configured}",
                                   hint=f"set region: {region} in the s3 settings (or AWS_REGION)")
            return ConfigError(f"bucket {self.bucket} is not in region {configured}",
                               hint="set region in the s3 settings (or AWS_REGION) to the bucket's region")
        if code in _ACCESS or status == 403:
            return StorageError(f"access denied to {where} ({operation})",
                                hint="the IAM policy of the role datasafe runs as must allow this; see docs/storage.md")
        if code == "InvalidObjectState":
            return StorageError(f"{where} is archived ({operation}): restore it from its archive storage class first")
        if self.settings.object_lock_mode and "objectlock" in message.lower().replace(" ", ""):
            return ConfigError(f"bucket {self.bucket} does not accept object_lock_mode: {message}",
                               hint="Object Lock must be enabled on the bucket; see docs/storage.md")
        attempts = int(meta.get("RetryAttempts", 0)) + 1
        tried = f" after {attempts} attempts" if attempts > 1 else ""
        detail = f": {message}" if message else ""
        return StorageError(f"S3 {operation} of {where} failed{tried}: {code or status}{detail}")

    def _call(self, operation: str, full: str | None, **kwargs: Any) -> Any:
        """Run one S3 API operation (``PutObject``) and map its failure to a datasafe error."""
        method = getattr(self._client, re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower())
        try:
            return method(**kwargs)
        except self._errors as exc:
            raise self._error(exc, operation, full) from exc

    def _code(self, exc: Exception) -> str:
        if isinstance(exc, self._bce.ClientError):
            return str(exc.response.get("Error", {}).get("Code", ""))
        return ""

    def _write_args(self) -> dict[str, Any]:
        """Storage class, encryption and retention: passed with every write."""
        s = self.settings
        args: dict[str, Any] = {}
        if s.storage_class:
            args["StorageClass"] = s.storage_class
        if s.sse:
            args["ServerSideEncryption"] = s.sse
        if s.sse_kms_key_id:
            args["SSEKMSKeyId"] = s.sse_kms_key_id
        if s.object_lock_mode and s.object_lock_days:
            args["ObjectLockMode"] = s.object_lock_mode
            args["ObjectLockRetainUntilDate"] = datetime.now(timezone.utc) + timedelta(days=s.object_lock_days)
        return args

    def _put(self, full: str, data: bytes, **extra: Any) -> Any:
        return self._client.put_object(
            Bucket=self.bucket, Key=full, Body=data, ChecksumAlgorithm="SHA256",
            ChecksumSHA256=_b64(hashlib.sha256(data).digest()), **self._write_args(), **extra,
        )

    # -- objects -----------------------------------------------------------------------------
    def open_write(self, key: str) -> ObjectWriter:
        return _S3Writer(self, self._object_key(key))

    def open_read(self, key: str) -> BinaryIO:
        full = self._object_key(key)
        response = self._call("GetObject", full, Bucket=self.bucket, Key=full)
        return io.BufferedReader(_S3Reader(self, full, response), buffer_size=READ_BUFFER)

    def exists(self, key: str) -> bool:
        if not key.strip("/"):
            # a prefix needs no creating: the location exists when its bucket does
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except self._errors as exc:
                if self._code(exc) in {"404", "NoSuchBucket", "NotFound"}:
                    return False
                raise self._error(exc, "HeadBucket") from exc
            return True
        full = self._full(key)
        try:
            self._call("HeadObject", full, Bucket=self.bucket, Key=full)
            return True
        except NotFound:
            pass
        # a "folder": some object below it
        listed = self._call("ListObjectsV2", full, Bucket=self.bucket, Prefix=f"{full}/", MaxKeys=1)
        return bool(listed.get("KeyCount", 0))

    def size(self, key: str) -> int:
        full = self._object_key(key)
        return int(self._call("HeadObject", full, Bucket=self.bucket, Key=full)["ContentLength"])

    def stat(self, key: str) -> ObjectStat:
        full = self._object_key(key)
        head = self._call("HeadObject", full, Bucket=self.bucket, Key=full, ChecksumMode="ENABLED")
        return ObjectStat(
            size=int(head["ContentLength"]),
            checksum=_normalize_checksum(head.get("ChecksumSHA256"), head.get("ETag")),
        )

    def _pages(self, operation: str, full: str | None, **kwargs: Any) -> Iterator[dict[str, Any]]:
        name = re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
        pages = self._client.get_paginator(name).paginate(Bucket=self.bucket, **kwargs)
        try:
            yield from pages
        except self._errors as exc:
            raise self._error(exc, operation, full) from exc

    def list(self, prefix: str) -> Iterator[str]:
        folder = self._folder(prefix)
        for page in self._pages("ListObjectsV2", folder, Prefix=folder):
            for item in page.get("Contents", ()):
                full = item["Key"]
                if not full.endswith("/"):  # "folder" placeholders made by consoles are not objects
                    yield self._relative(full)

    def list_dirs(self, prefix: str) -> builtins.list[str]:
        folder = self._folder(prefix)
        names = [
            item["Prefix"][len(folder) :].rstrip("/")
            for page in self._pages("ListObjectsV2", folder, Prefix=folder, Delimiter="/")
            for item in page.get("CommonPrefixes", ())
        ]
        return sorted(n for n in names if n)

    def delete(self, key: str) -> None:
        full = self._object_key(key)
        self._call("DeleteObject", full, Bucket=self.bucket, Key=full)

    def delete_prefix(self, prefix: str) -> None:
        folder = self._folder(prefix)
        batch: builtins.list[dict[str, str]] = []
        for page in self._pages("ListObjectsV2", folder, Prefix=folder):
            for item in page.get("Contents", ()):
                batch.append({"Key": item["Key"]})
                if len(batch) == DELETE_BATCH:
                    self._delete_batch(folder, batch)
                    batch = []
        if batch:
            self._delete_batch(folder, batch)

    def _delete_batch(self, folder: str, batch: builtins.list[dict[str, str]]) -> None:
        result = self._call("DeleteObjects", folder, Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        errors = result.get("Errors") or []
        if errors:
            first = errors[0]
            raise StorageError(
                f"could not delete {len(errors)} object(s) below {self._where(folder)}: "
                f"{first.get('Code', '?')} on {first.get('Key', '?')}",
                hint="Object Lock retention or a missing s3:DeleteObject permission; see docs/storage.md",
            )

    def create_exclusive(self, key: str, data: bytes) -> bool:
        full = self._object_key(key)
        try:
            self._put(full, data, IfNoneMatch="*")
        except self._errors as exc:
            if self._code(exc) not in _CONDITION_FAILED:
                raise self._error(exc, "PutObject", full) from exc
            retried = isinstance(exc, self._bce.ClientError) and exc.response.get(
                "ResponseMetadata", {}).get("RetryAttempts", 0)
            if retried:
                # an earlier attempt whose answer was lost may have created it: then it is ours
                try:
                    return self.read_bytes(key) == data
                except NotFound:
                    return False
            return False
        return True

    def check_writable(self) -> None:
        full = self._full(PROBE_KEY)
        try:
            self._put(full, b"")
        except self._errors as exc:
            raise self._error(exc, "PutObject", full) from exc
        try:
            self._client.delete_object(Bucket=self.bucket, Key=full)
        except self._errors as exc:
            # a backup role need not be allowed to delete: the put above is what matters
            if self._code(exc) not in _ACCESS:
                raise self._error(exc, "DeleteObject", full) from exc

    def open_uploads(self, prefix: str = "") -> builtins.list[str]:
        """Keys of unfinished multipart uploads below the folder ``prefix``, sorted."""
        folder = self._folder(prefix)
        keys = [
            self._relative(item["Key"])
            for page in self._pages("ListMultipartUploads", folder, Prefix=folder)
            for item in page.get("Uploads", ())
        ]
        return sorted(keys)


class _S3Writer(ObjectWriter):
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
        self._in_flight: set[Future[_Part]] = set()
        self._parts: list[_Part] = []
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

    def _upload_part(self, number: int, body: bytes) -> _Part:
        digest = hashlib.sha256(body).digest()
        response = self._s3._call(
            "UploadPart", self._full, Bucket=self._s3.bucket, Key=self._full, UploadId=self._upload_id,
            PartNumber=number, Body=body, ChecksumAlgorithm="SHA256", ChecksumSHA256=_b64(digest),
        )
        return _Part(number, str(response["ETag"]), digest)

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
                digest = _b64(hashlib.sha256(body).digest())
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
        composite = f"{_b64(hashlib.sha256(b''.join(p.digest for p in parts)).digest())}-{len(parts)}"
        s3 = self._s3
        try:
            response = s3._client.complete_multipart_upload(
                Bucket=s3.bucket, Key=self._full, UploadId=self._upload_id,
                MultipartUpload={"Parts": [
                    {"PartNumber": p.number, "ETag": p.etag, "ChecksumSHA256": _b64(p.digest)} for p in parts
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
        reported = _normalize_checksum(response.get("ChecksumSHA256"), response.get("ETag"))
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


class _S3Reader(io.RawIOBase):
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
