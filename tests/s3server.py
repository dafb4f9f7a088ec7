"""S3 for the tests: a moto server on 127.0.0.1 (or a real endpoint), buckets, and a faulty proxy.

Test modules import the fixtures they use::

    from tests.s3server import aws_env, moto_endpoint, s3_bucket, s3_storage  # noqa: F401

``DATASAFE_TEST_S3_URL`` points the contract tests at a real S3 or S3-compatible endpoint instead of
moto, for example ``s3://my-test-bucket/datasafe-ci?region=eu-west-1`` or
``s3://test/ci?endpoint_url=http://127.0.0.1:9000&addressing_style=path`` (the query takes any
S3Settings field). Credentials come from the usual AWS variables (``AWS_ACCESS_KEY_ID``/
``AWS_SECRET_ACCESS_KEY`` or ``AWS_PROFILE``). Each test works below a fresh prefix of that URL and
removes it afterwards; the bucket must exist. Fault tests always use moto behind
:class:`FaultyProxy`, which forwards requests verbatim and so cannot pass them on to a server that
checks signatures.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import urlsplit

import pytest

from datasafe.storage.s3 import S3Settings, S3Storage

S3_URL_ENV = "DATASAFE_TEST_S3_URL"
#: the fake credentials moto accepts
ACCESS_KEY = "testing"
SECRET_KEY = "testing-secret-key-0123456789"
REGION = "us-east-1"


# -- servers and buckets -----------------------------------------------------------------------
@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of a moto S3 server shared by the session."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        pytest.skip("no S3: install moto[server] or set DATASAFE_TEST_S3_URL")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Fake credentials and no AWS configuration from the developer's machine (moto runs only)."""
    if os.environ.get(S3_URL_ENV):
        return  # a real endpoint: its credentials come from the environment
    for name in list(os.environ):
        if name.startswith("AWS_") or name.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@functools.cache
def moto_client(endpoint: str) -> Any:
    """A plain boto3 client for setting up and inspecting moto (not the code under test)."""
    import boto3

    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
    )


def new_bucket(endpoint: str, *, object_lock: bool = False) -> str:
    name = f"ds-test-{secrets.token_hex(6)}"
    moto_client(endpoint).create_bucket(Bucket=name, ObjectLockEnabledForBucket=object_lock)
    return name


def drop_bucket(endpoint: str, bucket: str) -> None:
    """Free moto's memory: objects, versions, unfinished uploads, the bucket (best effort)."""
    client = moto_client(endpoint)
    try:
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            for up in page.get("Uploads", ()):
                client.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
        for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                client.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"],
                                     BypassGovernanceRetention=True)
        client.delete_bucket(Bucket=bucket)
    except Exception as exc:  # a test that locked objects in COMPLIANCE mode, for one
        logging.getLogger(__name__).debug("could not drop bucket %s: %s", bucket, exc)


@pytest.fixture
def s3_bucket(moto_endpoint: str, aws_env: None) -> Iterator[str]:
    """A fresh, empty moto bucket."""
    bucket = new_bucket(moto_endpoint)
    yield bucket
    drop_bucket(moto_endpoint, bucket)


@dataclass
class S3Target:
    """Where a test's S3 storage lives: a moto bucket or a fresh prefix of DATASAFE_TEST_S3_URL."""

    url: str
    settings: S3Settings
    #: the moto endpoint, or None for a real one
    endpoint: str | None
    made: list[S3Storage] = field(default_factory=list)

    def storage(self, **settings: Any) -> S3Storage:
        merged = self.settings.model_dump(exclude_unset=True) | settings
        storage = S3Storage(self.url, S3Settings(**merged))
        self.made.append(storage)
        return storage


def _with_prefix(url: str, extra: str) -> str:
    base, sep, query = url.partition("?")
    return f"{base.rstrip('/')}/{extra}{sep}{query}"


@pytest.fixture
def s3_target(request: pytest.FixtureRequest, aws_env: None) -> Iterator[S3Target]:
    """A place for one test's objects; the real endpoint when DATASAFE_TEST_S3_URL is set."""
    real = os.environ.get(S3_URL_ENV)
    small_parts = S3Settings(part_size=5 << 20)
    if real:
        target = S3Target(_with_prefix(real, f"dstest-{secrets.token_hex(5)}"), small_parts, None)
        yield target
        S3Storage(target.url, small_parts).delete_prefix("")
        return
    endpoint = request.getfixturevalue("moto_endpoint")
    bucket = new_bucket(endpoint)
    settings = S3Settings(endpoint_url=endpoint, addressing_style="path", part_size=5 << 20)
    yield S3Target(f"s3://{bucket}/repo", settings, endpoint)
    drop_bucket(endpoint, bucket)


@pytest.fixture
def s3_storage(s3_target: S3Target) -> S3Storage:
    """A fresh S3Storage with 5 MiB parts, below its own prefix."""
    return s3_target.storage()


# -- the faulty proxy --------------------------------------------------------------------------
FaultKind = Literal["error", "cut_request", "cut_response"]


@dataclass
class Fault:
    """What the proxy does to the next ``times`` requests that match.

    ``error`` answers with ``status`` and an S3 error document (``code``, ``message``) or ``body``;
    ``cut_request`` reads ``after_bytes`` of the request body and drops the connection;
    ``cut_response`` forwards the request and drops the connection after ``after_bytes`` of the answer.
    """

    kind: FaultKind
    times: int = 1
    method: str | None = None
    #: request matches when the path-and-query contains this
    contains: str | None = None
    status: int = 500
    code: str = "InternalError"
    message: str = "injected by the test proxy"
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    after_bytes: int = 64 << 10
    served: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.contains is None or self.contains in path)


@dataclass(frozen=True)
class Request:
    method: str
    #: path and query
    path: str
    #: header names in lower case
    headers: dict[str, str]


_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "expect", "upgrade", "te"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                out += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return bytes(out)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        proxy = self.server.proxy
        proxy.seen.append(Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
        fault = proxy.take(self.command, self.path)
        if fault is not None and fault.kind == "cut_request":
            self.rfile.read(min(fault.after_bytes, int(self.headers.get("Content-Length") or 0)))
            self._drop()
            return
        body = self._body()
        if fault is not None and fault.kind == "error":
            self._send_error(fault)
            return
        status, reason, headers, answer = proxy.forward(self.command, self.path, dict(self.headers.items()), body)
        self.send_response_only(status, reason)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP and (name.lower() != "content-length" or self.command == "HEAD"):
                self.send_header(name, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if fault is not None and fault.kind == "cut_response":
            self.wfile.write(answer[: fault.after_bytes])
            self.wfile.flush()
            self._drop()
            return
        self.wfile.write(answer)

    def _send_error(self, fault: Fault) -> None:
        body = fault.body
        if body is None:
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{fault.code}</Code><Message>{fault.message}</Message>"
                "<RequestId>proxy</RequestId></Error>"
            ).encode()
        self.send_response_only(fault.status)
        self.send_header("Content-Type", "application/xml")
        for name, value in fault.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client hung up first
            self.connection.shutdown(socket.SHUT_RDWR)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultyProxy


class FaultyProxy:
    """A threaded HTTP proxy on 127.0.0.1 in front of moto that misbehaves when told to."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        #: every request seen
        self.seen: list[Request] = []
        self._server = _ProxyServer(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FaultyProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.served < fault.times and fault.matches(method, path):
                    fault.served += 1
                    return fault
        return None

    def count(self, method: str, contains: str = "") -> int:
        return len(self.requests(method, contains))

    def requests(self, method: str, contains: str = "") -> list[Request]:
        """The requests seen with this method whose path and query contain ``contains``."""
        return [r for r in self.seen if r.method == method and contains in r.path]

    def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self._upstream, timeout=60)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"}
            sent["Content-Length"] = str(len(body))
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            return resp.status, resp.reason, resp.getheaders(), resp.read()
        finally:
            conn.close()


@pytest.fixture
def faulty_proxy(moto_endpoint: str) -> Iterator[FaultyProxy]:
    proxy = FaultyProxy(moto_endpoint).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def proxied(faulty_proxy: FaultyProxy, s3_bucket: str) -> Callable[..., S3Storage]:
    """Make an S3Storage of ``s3_bucket`` that talks through the faulty proxy."""

    def make(**settings: Any) -> S3Storage:
        base: dict[str, Any] = {"endpoint_url": faulty_proxy.url, "addressing_style": "path", "part_size": 5 << 20}
        return S3Storage(f"s3://{s3_bucket}/repo", S3Settings(**(base | settings)))

    return make
