"""S3 storage: objects in a bucket below a prefix, ``s3://bucket/prefix``, through boto3.

Works with AWS S3 and S3-compatible servers (MinIO, Ceph RGW) that support conditional writes
(``If-None-Match: *``). Every object is uploaded with a SHA-256 checksum that S3 verifies on
receipt; objects smaller than ``part_size`` go up in one PutObject, larger ones as a multipart
upload with up to ``concurrency`` parts in flight. A multipart upload that fails or is aborted
is aborted on S3 too, so no orphan parts stay behind. boto3 is imported only when an S3
location is opened.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import logging
import os
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, BinaryIO

from pydantic import BaseModel

from datasafe.errors import ConfigError, DatasafeError, DependencyError, IntegrityError, NotFound, StorageError
from datasafe.humanize import count
from datasafe.redact import redact
from datasafe.storage.base import ObjectStat, ObjectWriter, StorageBackend
from datasafe.storage.s3_settings import S3Settings, parse_location
from datasafe.storage.s3_transfer import READ_BUFFER, S3Reader, S3Writer, b64, normalize_checksum

__all__ = ["S3Settings", "S3Storage", "parse_location"]

log = logging.getLogger(__name__)

#: written and removed again by check_writable
PROBE_KEY = ".datasafe-write-probe"
#: objects per DeleteObjects request (the S3 maximum)
DELETE_BATCH = 1000

_NOT_FOUND = {"NoSuchKey", "NotFound", "404"}
_CREDENTIALS = {
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired",
    "InvalidToken", "InvalidClientTokenId", "InvalidSecurity", "AuthFailure",
}
_WRONG_REGION = {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException", "301"}
_ACCESS = {"AccessDenied", "AllAccessDisabled", "403", "Forbidden"}
_CONDITION_FAILED = {"PreconditionFailed", "ConditionalRequestConflict"}



def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class S3Storage(StorageBackend):
    """Objects below ``prefix/`` in ``bucket``."""

    scheme = "s3"

    @classmethod
    def from_location(cls, location: str, settings: BaseModel | None = None) -> S3Storage:
        if settings is not None and not isinstance(settings, S3Settings):
            raise TypeError(f"s3 settings must be S3Settings, not {type(settings).__name__}")
        return cls(location, settings)

    def __init__(self, location: str, settings: S3Settings | None = None) -> None:
        self.bucket, self.prefix, self.settings = parse_location(location, settings)
        try:
            import boto3  # deferred: start-up time (an optional extra)
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
        def make_client() -> Any:
            try:
                return self._session.client("s3", config=Config(**config), **client_args)
            except self._errors as exc:
                raise self._error(exc, "connect") from exc

        self._make_client = make_client
        self._client_of: tuple[int, Any] = (os.getpid(), make_client())

    @property
    def _client(self) -> Any:
        """The boto3 client of this process. A forked child (a masking worker, the leak audit's
        background scan) gets its own: sharing the parent's pooled connections would interleave
        the two processes' responses on one socket and garble what each reads."""
        pid, client = self._client_of
        if pid != os.getpid():
            client = self._make_client()
            self._client_of = (os.getpid(), client)
        return client

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
            ChecksumSHA256=b64(hashlib.sha256(data).digest()), **self._write_args(), **extra,
        )

    # -- objects -----------------------------------------------------------------------------
    def open_write(self, key: str) -> ObjectWriter:
        return S3Writer(self, self._object_key(key))

    def open_read(self, key: str) -> BinaryIO:
        full = self._object_key(key)
        response = self._call("GetObject", full, Bucket=self.bucket, Key=full)
        return io.BufferedReader(S3Reader(self, full, response), buffer_size=READ_BUFFER)

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
            checksum=normalize_checksum(head.get("ChecksumSHA256"), head.get("ETag")),
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
                f"could not delete {count(len(errors), 'object')} below {self._where(folder)}: "
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

    def retain_for(self, days: int) -> bool:
        if self.settings.object_lock_mode is None:
            return False
        if self.settings.object_lock_days != days:
            self.settings = self.settings.model_copy(update={"object_lock_days": days})
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

