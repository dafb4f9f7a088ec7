"""S3 when things go wrong: failing, throttling and dropped connections through a faulty proxy,
and the one-line errors for a missing bucket, refused access, bad credentials and a wrong region.
Also: settings that must reach S3 (storage class, encryption, Object Lock) and settings errors.

Everything talks real HTTP to a moto server on 127.0.0.1 (tests/s3server.py).
"""

# The fixtures imported from tests.s3server are test parameters by design (conftest.py is not ours).
# ruff: noqa: F811

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from datasafe.errors import ConfigError, DatasafeError, DependencyError, ExitCode, StorageError
from datasafe.storage import open_storage
from datasafe.storage.s3 import S3Settings, S3Storage
from tests.s3server import (  # noqa: F401
    SECRET_KEY,
    Fault,
    FaultyProxy,
    aws_env,
    drop_bucket,
    faulty_proxy,
    moto_client,
    moto_endpoint,
    new_bucket,
    proxied,
    s3_bucket,
)

MIB = 1 << 20
Make = Callable[..., S3Storage]
#: 3 parts of 5 MiB, 5 MiB and 1 MiB
DATA = os.urandom(11 * MIB)


def write_big(storage: S3Storage, key: str, data: bytes = DATA) -> str | None:
    with storage.open_write(key) as writer:
        for start in range(0, len(data), MIB):
            writer.write(data[start : start + MIB])
    return writer.checksum


def assert_stored(storage: S3Storage, key: str, checksum: str | None, data: bytes = DATA) -> None:
    assert hashlib.sha256(storage.read_bytes(key)).digest() == hashlib.sha256(data).digest()
    assert storage.stat(key).checksum == checksum
    assert storage.open_uploads() == []


def one_line(exc: DatasafeError) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text
    assert SECRET_KEY not in text and SECRET_KEY not in (exc.hint or "") and SECRET_KEY not in repr(exc)
    return text


# -- transient failures are retried --------------------------------------------------------------
def test_internal_errors_on_parts_are_retried(proxied: Make, faulty_proxy: FaultyProxy) -> None:
    storage = proxied()
    fault = faulty_proxy.inject(Fault("error", times=3, method="PUT", contains="partNumber=", status=500))
    checksum = write_big(storage, "obj")
    assert fault.served == 3
    assert faulty_proxy.count("PUT", "partNumber=") == 3 + 3  # three parts, three of them sent twice
    assert_stored(storage, "obj", checksum)


def test_throttling_is_retried(proxied: Make, faulty_proxy: FaultyProxy) -> None:
    storage = proxied()
    fault = faulty_proxy.inject(Fault("error", times=2, status=503, code="SlowDown", message="Please reduce"))
    checksum = write_big(storage, "obj")
    storage.write_bytes("small", b"small object")
    assert fault.served == 2
    assert_stored(storage, "obj", checksum)
    assert storage.read_bytes("small") == b"small object"


def test_connection_cut_while_sending_a_part(proxied: Make, faulty_proxy: FaultyProxy) -> None:
    storage = proxied()
    fault = faulty_proxy.inject(Fault("cut_request", times=1, method="PUT", contains="partNumber=2"))
    try:
        checksum = write_big(storage, "obj")
        outcome = "retried"
    except StorageError as exc:
        one_line(exc)
        outcome = "failed"
    assert fault.served == 1
    assert storage.open_uploads() == []  # in both outcomes
    # botocore retries a dropped connection: the part is sent again and the object is complete
    assert outcome == "retried"
    assert faulty_proxy.count("PUT", "partNumber=2") == 2
    assert_stored(storage, "obj", checksum)


def test_connection_cut_on_every_attempt_aborts_the_upload(proxied: Make, faulty_proxy: FaultyProxy) -> None:
    storage = proxied(max_attempts=3)
    fault = faulty_proxy.inject(Fault("cut_request", times=1000, method="PUT", contains="partNumber=2"))
    with pytest.raises(StorageError) as caught:
        write_big(storage, "obj")
    assert fault.served == 3
    assert one_line(caught.value) == (
        f"connection to the S3 endpoint {faulty_proxy.url} failed during UploadPart of s3://{storage.bucket}/repo/obj"
    )
    assert faulty_proxy.count("DELETE", "uploadId=") == 1  # AbortMultipartUpload
    assert storage.open_uploads() == []
    assert not storage.exists("obj")


def test_refused_abort_is_logged_and_the_first_error_raised(proxied: Make, faulty_proxy: FaultyProxy,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    storage = proxied(max_attempts=1)
    faulty_proxy.inject(Fault("error", times=1000, method="PUT", contains="partNumber=2", status=500))
    faulty_proxy.inject(Fault("error", times=1000, method="DELETE", contains="uploadId=", status=403,
                              code="AccessDenied"))
    with pytest.raises(StorageError, match=r"UploadPart of .*/repo/obj failed: InternalError"):
        write_big(storage, "obj")
    assert storage.open_uploads() == ["obj"]  # what a lifecycle rule has to clean up
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"access denied to s3://{storage.bucket}/repo/obj (AbortMultipartUpload); its parts stay until a "
        "lifecycle rule (AbortIncompleteMultipartUpload) removes them"
    ]


def test_errors_that_outlast_the_retries(proxied: Make, faulty_proxy: FaultyProxy) -> None:
    storage = proxied(max_attempts=2)
    faulty_proxy.inject(Fault("error", times=1000, method="PUT", status=500))
    with pytest.raises(StorageError) as caught:
        storage.write_bytes("small", b"data")
    assert one_line(caught.value) == (
        f"S3 PutObject of s3://{storage.bucket}/repo/small failed after 2 attempts: "
        "InternalError: injected by the test proxy"
    )
    assert caught.value.exit_code == ExitCode.STORAGE
    assert faulty_proxy.count("PUT") == 2


def test_read_resumes_after_a_cut_response(proxied: Make, faulty_proxy: FaultyProxy) -> None:
    storage = proxied()
    checksum = write_big(storage, "obj")
    fault = faulty_proxy.inject(Fault("cut_response", times=2, method="GET", contains="/repo/obj", after_bytes=3 * MIB))
    assert_stored(storage, "obj", checksum)
    assert fault.served == 2
    assert faulty_proxy.count("GET", "/repo/obj") == 3  # the first GET, then two ranged ones

    faulty_proxy.inject(Fault("cut_response", times=1000, method="GET", contains="/repo/obj", after_bytes=MIB))
    with pytest.raises(StorageError, match=r"connection lost while reading s3://.*/repo/obj at byte"):
        storage.read_bytes("obj")


# -- errors a user must act on ------------------------------------------------------------------
def test_missing_bucket(moto_endpoint: str, aws_env: None) -> None:
    storage = S3Storage("s3://no-such-bucket-ds/repo", S3Settings(endpoint_url=moto_endpoint))
    assert not storage.exists("")
    for call in (lambda: storage.write_bytes("k", b"1"), lambda: list(storage.list("")), storage.check_writable,
                 lambda: storage.list_dirs(""), lambda: storage.create_exclusive("lease", b"1")):
        with pytest.raises(StorageError) as caught:
            call()
        assert one_line(caught.value) == "bucket no-such-bucket-ds does not exist"
        assert caught.value.exit_code == ExitCode.STORAGE


def test_cli_backup_to_a_missing_bucket(moto_endpoint: str, aws_env: None, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from datasafe.cli.main import cli
    from datasafe.demo import create_shop

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    create_shop(tmp_path / "shop.db", customers=10)
    result = CliRunner().invoke(cli, ["backup", f"sqlite:///{tmp_path / 'shop.db'}", "--storage", "s3://no-such-bucket-ds/x"])
    assert result.exit_code == ExitCode.STORAGE, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("datasafe: error:")]
    assert errors == [
        "datasafe: error: bucket no-such-bucket-ds does not exist (create it or check the storage URL)"
    ], result.output
    assert "Traceback" not in result.output


def test_access_denied(proxied: Make, faulty_proxy: FaultyProxy) -> None:
    storage = proxied()
    faulty_proxy.inject(Fault("error", times=1000, method="PUT", status=403, code="AccessDenied",
                              message="User: arn:aws:iam::1:user/backup is not authorized"))
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: storage.write_bytes("k", b"1"), "k (PutObject)"),
        (lambda: write_big(storage, "big"), "big (UploadPart)"),
        (storage.check_writable, ".datasafe-write-probe (PutObject)"),
    ]
    for call, what in cases:
        with pytest.raises(StorageError) as caught:
            call()
        assert one_line(caught.value) == f"access denied to s3://{storage.bucket}/repo/{what}"
        assert "docs/storage.md" in (caught.value.hint or "")
    assert storage.open_uploads() == []  # the big object's upload was aborted (DELETE is allowed)


def test_check_writable_without_delete_permission(proxied: Make, faulty_proxy: FaultyProxy) -> None:
    storage = proxied()
    faulty_proxy.inject(Fault("error", times=1000, method="DELETE", status=403, code="AccessDenied"))
    storage.check_writable()  # a backup role may lack s3:DeleteObject
    assert faulty_proxy.count("PUT", ".datasafe-write-probe") == 1


def test_delete_refused_by_object_lock(proxied: Make, faulty_proxy: FaultyProxy) -> None:
    storage = proxied()
    storage.write_bytes("snap/a", b"1")
    storage.write_bytes("snap/b", b"2")
    body = (b'<?xml version="1.0" encoding="UTF-8"?><DeleteResult><Error><Key>repo/snap/a</Key>'
            b"<Code>AccessDenied</Code><Message>Access Denied because object protected by object lock."
            b"</Message></Error></DeleteResult>")
    faulty_proxy.inject(Fault("error", method="POST", contains="delete", status=200, body=body))
    with pytest.raises(StorageError) as caught:
        storage.delete_prefix("snap")
    assert one_line(caught.value) == (
        f"could not delete 1 object below s3://{storage.bucket}/repo/snap/: AccessDenied on repo/snap/a"
    )
    assert "Object Lock" in (caught.value.hint or "")


@pytest.mark.parametrize(("code", "expected"), [
    ("InvalidAccessKeyId", "AWS credentials were rejected (InvalidAccessKeyId from {url})"),
    ("SignatureDoesNotMatch", "AWS credentials were rejected (SignatureDoesNotMatch from {url})"),
    ("ExpiredToken", "AWS credentials have expired (ExpiredToken from {url})"),
])
def test_bad_credentials(proxied: Make, faulty_proxy: FaultyProxy, code: str, expected: str) -> None:
    storage = proxied()
    # a server that echoes the secret must not get it into the message either
    faulty_proxy.inject(Fault("error", times=1000, status=403, code=code, message=f"bad key {SECRET_KEY}"))
    for call in (lambda: storage.write_bytes("k", b"1"), lambda: list(storage.list(""))):
        with pytest.raises(ConfigError) as caught:
            call()
        assert one_line(caught.value) == expected.format(url=faulty_proxy.url)
        assert caught.value.exit_code == ExitCode.CONFIG


def test_secret_echoed_in_another_error_is_masked(proxied: Make, faulty_proxy: FaultyProxy) -> None:
    storage = proxied()
    faulty_proxy.inject(Fault("error", status=400, code="InvalidArgument", message=f"odd value {SECRET_KEY}"))
    with pytest.raises(StorageError) as caught:
        storage.write_bytes("k", b"1")
    assert one_line(caught.value) == (
        f"S3 PutObject of s3://{storage.bucket}/repo/k failed: InvalidArgument: odd value ***"
    )


def test_no_credentials(moto_endpoint: str, aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    storage = S3Storage("s3://bucket-x/repo", S3Settings(endpoint_url=moto_endpoint, max_attempts=1))
    with pytest.raises(ConfigError) as caught:
        storage.write_bytes("k", b"1")
    assert one_line(caught.value) == "AWS credentials for s3://bucket-x/repo are missing or incomplete"


def test_wrong_region(proxied: Make, faulty_proxy: FaultyProxy) -> None:
    storage = proxied(region="us-east-1")
    body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AuthorizationHeaderMalformed</Code>'
            b"<Message>the region 'us-east-1' is wrong; expecting 'eu-west-1'</Message>"
            b"<Region>eu-west-1</Region></Error>")
    faulty_proxy.inject(Fault("error", times=1000, method="PUT", status=400, body=body))
    faulty_proxy.inject(Fault("error", times=1000, method="HEAD", status=301,
                              headers={"x-amz-bucket-region": "eu-west-1"}))
    for call in (lambda: storage.write_bytes("k", b"1"), lambda: storage.stat("k")):
        with pytest.raises(ConfigError) as caught:
            call()
        assert one_line(caught.value) == f"bucket {storage.bucket} is in region eu-west-1, not us-east-1"
        assert caught.value.hint == "set region: eu-west-1 in the s3 settings (or AWS_REGION)"


def test_unreachable_endpoint(aws_env: None) -> None:
    storage = S3Storage("s3://bucket-x/repo", S3Settings(endpoint_url="http://127.0.0.1:9", max_attempts=2))
    with pytest.raises(StorageError) as caught:
        storage.write_bytes("k", b"1")
    assert one_line(caught.value) == "cannot reach the S3 endpoint http://127.0.0.1:9 (PutObject s3://bucket-x/repo/k)"
    assert caught.value.exit_code == ExitCode.STORAGE


# -- settings reach S3 --------------------------------------------------------------------------
def test_storage_class_and_encryption_reach_s3(moto_endpoint: str, s3_bucket: str) -> None:
    settings = S3Settings(endpoint_url=moto_endpoint, part_size="5MiB", storage_class="STANDARD_IA", sse="AES256")
    storage = S3Storage(f"s3://{s3_bucket}/repo", settings)
    storage.write_bytes("small", b"x")
    write_big(storage, "big")
    client = moto_client(moto_endpoint)
    for key in ("repo/small", "repo/big"):
        head = client.head_object(Bucket=s3_bucket, Key=key)
        assert (head.get("StorageClass"), head.get("ServerSideEncryption")) == ("STANDARD_IA", "AES256")


def test_object_lock_retention(moto_endpoint: str, aws_env: None) -> None:
    bucket = new_bucket(moto_endpoint, object_lock=True)
    proxy = FaultyProxy(moto_endpoint).start()  # only to see the headers sent
    try:
        settings = S3Settings(endpoint_url=proxy.url, addressing_style="path", part_size=5 * MIB,
                              object_lock_mode="GOVERNANCE", object_lock_days=35)
        storage = S3Storage(f"s3://{bucket}/repo", settings)
        before = datetime.now(timezone.utc).replace(microsecond=0)
        storage.write_bytes("small", b"x")
        write_big(storage, "big")
        after = datetime.now(timezone.utc)
        head = moto_client(moto_endpoint).head_object(Bucket=bucket, Key="repo/small")
        assert head["ObjectLockMode"] == "GOVERNANCE"
        assert before + timedelta(days=35) <= head["ObjectLockRetainUntilDate"] <= after + timedelta(days=35)
        # moto keeps no retention for multipart objects: check what CreateMultipartUpload asked for
        (create,) = proxy.requests("POST", "/repo/big?uploads")
        assert create.headers["x-amz-object-lock-mode"] == "GOVERNANCE"
        until = datetime.fromisoformat(create.headers["x-amz-object-lock-retain-until-date"].replace("Z", "+00:00"))
        assert before + timedelta(days=35) <= until <= after + timedelta(days=35)
    finally:
        proxy.stop()
        drop_bucket(moto_endpoint, bucket)


def test_object_lock_on_a_bucket_without_it(moto_endpoint: str, s3_bucket: str) -> None:
    settings = S3Settings(endpoint_url=moto_endpoint, object_lock_mode="COMPLIANCE", object_lock_days=1)
    with pytest.raises(ConfigError) as caught:
        S3Storage(f"s3://{s3_bucket}/repo", settings).write_bytes("k", b"1")
    assert one_line(caught.value).startswith(f"bucket {s3_bucket} does not accept object_lock_mode: ")
    assert caught.value.hint == "Object Lock must be enabled on the bucket; see docs/storage.md"


def test_location_and_settings(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = S3Storage("s3://my-bucket/some/prefix/?region=eu-west-1&part_size=32MiB&concurrency=4")
    assert (storage.bucket, storage.prefix, storage.url) == ("my-bucket", "some/prefix", "s3://my-bucket/some/prefix")
    assert (storage.settings.region, storage.settings.part_size, storage.settings.concurrency) == (
        "eu-west-1", 32 * MIB, 4)
    # query parameters override the settings from datasafe.yml, the rest is kept
    merged = open_storage("s3://my-bucket?concurrency=3", {"s3": S3Settings(sse="AES256", concurrency=1)})
    assert isinstance(merged, S3Storage)
    assert (merged.prefix, merged.settings.sse, merged.settings.concurrency) == ("", "AES256", 3)
    assert storage._client.meta.region_name == "eu-west-1"
    assert merged._client.meta.region_name == "us-east-1"  # AWS_DEFAULT_REGION, as for the AWS CLI
    monkeypatch.setenv("AWS_REGION", "eu-central-1")  # which the AWS CLI prefers to AWS_DEFAULT_REGION
    assert S3Storage("s3://my-bucket")._client.meta.region_name == "eu-central-1"
    assert S3Storage("s3://my-bucket?region=ap-south-1")._client.meta.region_name == "ap-south-1"


@pytest.mark.parametrize(("location", "message"), [
    ("s3://my-bucket/p?part_size=1MiB",
     "s3://my-bucket/p: part_size: Value error, part_size must be between 5MiB and 5GiB"),
    ("s3://my-bucket/p?colour=blue", "s3://my-bucket/p: colour: unknown setting"),
    ("s3://my-bucket/p?sse_kms_key_id=k1",
     "s3://my-bucket/p: settings: Value error, sse_kms_key_id needs sse: aws:kms"),
    ("s3://my-bucket/p?object_lock_days=3", "s3://my-bucket/p: settings: Value error, "
     "object_lock_days needs object_lock_mode (GOVERNANCE or COMPLIANCE)"),
    ("s3://my-bucket/p?sse=DES", "s3://my-bucket/p: sse: Input should be 'AES256' or 'aws:kms'"),
    ("s3://AKIA:secret@my-bucket/p", "an s3:// location cannot hold credentials"),
    ("s3://x/p", "invalid S3 bucket name 'x' in 's3://x/p'"),
    ("s3:///p", "invalid S3 location 's3:///p': expected s3://bucket/prefix"),
    ("s3://my-bucket/p?region=eu west", "invalid AWS region 'eu west'"),
    ("s3://my-bucket/a/../b", "invalid prefix 'a/../b' in s3://my-bucket/"),
])
def test_bad_locations(location: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_storage(location)
    assert str(caught.value) == message
    assert "secret" not in str(caught.value)


def test_missing_boto3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # makes `import boto3` fail
    with pytest.raises(DependencyError, match=r"pip install 'datasafe\[s3\]'"):
        open_storage("s3://my-bucket/p")


def test_storage_package_does_not_import_boto3() -> None:
    code = ("import sys, datasafe.storage, datasafe.commands.repository, datasafe.transfer.backup; "
            "sys.exit('boto3' in sys.modules or 'botocore' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
