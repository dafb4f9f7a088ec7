"""S3 settings: the ``s3:`` section of datasafe.yml and ``s3://bucket/prefix`` locations."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from datasafe.errors import ConfigError
from datasafe.redact import redact
from datasafe.units import parse_size

MIB = 1 << 20
#: S3's smallest allowed part (all but the last) and largest part; at most 10,000 parts per object
MIN_PART_SIZE = 5 * MIB
MAX_PART_SIZE = 5 << 30
MAX_PARTS = 10_000

_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$")


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
    part_size: int = Field(8 * MIB, description="bytes per uploaded part, 5MiB to 5GiB")
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
