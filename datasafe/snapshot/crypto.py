"""Client-side encryption of snapshots with age (X25519 recipients or a passphrase).

Each encrypted snapshot has its own X25519 key, generated at backup time: its chunks, schema
parts and full manifest are age-encrypted to that key's public half, after compression and
before they reach storage. The snapshot key itself is stored in the manifest header only in
*envelopes*: age-encrypted to the configured recipients (public keys, so the backup host holds
nothing that can decrypt) and/or to a passphrase. Reading needs one matching identity or the
passphrase; the header records recipient fingerprints, never a key.

The full manifest is stored encrypted (``manifest.age``): age is authenticated encryption, so a
changed or forged sealed manifest fails to decrypt, and since it lists every object's digest, a
changed, added, removed or swapped chunk is detected too. See docs/security.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasafe.errors import ConfigError, DependencyError, IntegrityError
from datasafe.storage.base import ObjectWriter

SCHEME = "age-x25519"
PASSPHRASE = "passphrase"
_EOF = object()
_ABORT = object()
#: plaintext/ciphertext pieces in flight between the caller and the age thread
_QUEUE_DEPTH = 8
_POLL_S = 0.5


def _pyrage() -> Any:
    try:
        import pyrage  # deferred: start-up time
    except ImportError as exc:  # pragma: no cover - pyrage is a core dependency
        raise DependencyError("encryption needs pyrage: pip install pyrage") from exc
    return pyrage


def _one_line(exc: BaseException | None) -> str:
    return " ".join(str(exc).split())


def fingerprint(recipient: str) -> str:
    """A short, stable name for a public key, safe to record and print."""
    return hashlib.sha256(recipient.strip().encode()).hexdigest()[:16]


def parse_recipient(text: str, where: str) -> Any:
    try:
        return _pyrage().x25519.Recipient.from_str(text.strip())
    except Exception:
        raise ConfigError(f"{where}: {text.strip()[:12]}… is not an age X25519 recipient (age1…)") from None


#: largest identity or recipients file read (each key is one line of under 100 bytes)
MAX_KEY_FILE_BYTES = 1 << 20


def load_identities(path: str | Path) -> list[Any]:
    """Identities (``AGE-SECRET-KEY-1…`` lines) from an identity file; comments are skipped."""
    p = Path(path).expanduser()
    try:
        with open(p, "rb") as fh:
            data = fh.read(MAX_KEY_FILE_BYTES + 1)  # --identity /dev/zero must not read forever
        lines = data.decode("utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"identity file {p}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"identity file {p} is not text: not an age identity file") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise ConfigError(f"identity file {p} is larger than {MAX_KEY_FILE_BYTES >> 10} KiB: not an age identity file")
    out = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            out.append(_pyrage().x25519.Identity.from_str(line))
        except Exception:
            raise ConfigError(f"identity file {p} line {n}: not an age identity (AGE-SECRET-KEY-1…)") from None
    if not out:
        raise ConfigError(f"identity file {p} holds no age identity")
    return out


def generate_identity() -> tuple[str, str]:
    """A new X25519 key pair as (identity, recipient) strings."""
    ident = _pyrage().x25519.Identity.generate()
    return str(ident), str(ident.to_public())


# -- streaming ---------------------------------------------------------------------------------
def _from_queue(q: queue.Queue[object]) -> Iterator[bytes]:
    """The pieces put into ``q`` until ``_EOF``; ``_ABORT`` makes the reader (age) fail."""
    while True:
        item = q.get()
        if item is _EOF:
            return
        if item is _ABORT:
            raise OSError("aborted")
        yield item  # type: ignore[misc]


class _IterReader(io.RawIOBase):
    """A readable stream over an iterator of byte pieces."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._it = pieces
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            piece = next(self._it, None)
            if piece is None:
                return 0
            self._buf = memoryview(piece)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class _WriterSink(io.RawIOBase):
    def __init__(self, out: ObjectWriter) -> None:
        self._out = out

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self._out.write(bytes(b))
        return len(b)


class EncryptingWriter(ObjectWriter):
    """Encrypts everything written to it into ``out``; age runs in a helper thread."""

    def __init__(self, recipient: Any, out: ObjectWriter) -> None:
        self._out = out
        self._q: queue.Queue[object] = queue.Queue(_QUEUE_DEPTH)
        self._error: BaseException | None = None
        self._done = False
        self._thread = threading.Thread(target=self._run, args=(recipient,), daemon=True, name="age-encrypt")
        self._thread.start()

    def _run(self, recipient: Any) -> None:
        try:
            _pyrage().encrypt_io(_IterReader(_from_queue(self._q)), _WriterSink(self._out), [recipient])
        except BaseException as exc:
            self._error = exc

    def _put(self, item: object) -> None:
        while True:
            if self._error is not None or not self._thread.is_alive():
                self._raise()
            try:
                self._q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def _raise(self) -> None:
        err = self._error
        if isinstance(err, Exception) and not isinstance(err, OSError):
            raise err
        raise IntegrityError(f"encryption failed: {_one_line(err)}") from err

    def write(self, data: bytes | memoryview) -> None:
        if data:
            self._put(bytes(data))

    def commit(self) -> None:
        self._put(_EOF)
        self._thread.join()
        if self._error is not None:
            self._out.abort()
            self._raise()
        self._out.commit()
        self.bytes_written = self._out.bytes_written
        self.checksum = getattr(self._out, "checksum", None)
        self._done = True

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        if self._thread.is_alive():
            with contextlib.suppress(queue.Full):
                self._q.put(_ABORT, timeout=5)
            self._thread.join(timeout=30)
        self._out.abort()


def decrypt_stream(identity: Any, pieces: Iterable[bytes], label: str) -> Iterator[bytes]:
    """Decrypt a stream of ciphertext pieces; IntegrityError names ``label`` if it fails."""
    out: queue.Queue[object] = queue.Queue(_QUEUE_DEPTH)
    stop = threading.Event()
    failure: list[BaseException] = []

    class _Sink(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            data = bytes(b)
            while not stop.is_set():
                try:
                    out.put(data, timeout=_POLL_S)
                    return len(b)
                except queue.Full:
                    continue
            raise OSError("reader went away")

    def run() -> None:
        try:
            _pyrage().decrypt_io(_IterReader(iter(pieces)), _Sink(), [identity])
        except BaseException as exc:
            failure.append(exc)
        finally:
            while not stop.is_set():
                try:
                    out.put(_EOF, timeout=_POLL_S)
                    break
                except queue.Full:
                    continue

    thread = threading.Thread(target=run, daemon=True, name="age-decrypt")
    thread.start()
    try:
        while True:
            item = out.get()
            if item is _EOF:
                break
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(timeout=30)
    if failure:
        exc = failure[0]
        if isinstance(exc, IntegrityError):
            raise exc
        raise IntegrityError(f"{label} cannot be decrypted: it was altered or is not from this snapshot "
                             f"({_one_line(exc)})")


# -- keys --------------------------------------------------------------------------------------
@dataclass
class SnapshotCipher:
    """The per-snapshot key: encrypts and decrypts that snapshot's objects."""

    identity: Any

    @classmethod
    def generate(cls) -> SnapshotCipher:
        return cls(_pyrage().x25519.Identity.generate())

    @property
    def recipient(self) -> Any:
        return self.identity.to_public()

    def writer(self, out: ObjectWriter) -> ObjectWriter:
        return EncryptingWriter(self.recipient, out)

    def decrypt(self, pieces: Iterable[bytes], label: str) -> Iterator[bytes]:
        return decrypt_stream(self.identity, pieces, label)

    def seal(self, data: bytes) -> bytes:
        return bytes(_pyrage().encrypt(data, [self.recipient]))

    def open(self, data: bytes, label: str) -> bytes:
        try:
            return bytes(_pyrage().decrypt(data, [self.identity]))
        except Exception as exc:
            raise IntegrityError(f"{label} cannot be decrypted: it was altered ({_one_line(exc)})") from None


@dataclass
class EncryptionSettings:
    """What the backup side needs: public recipients and/or a passphrase."""

    recipients: list[str] = field(default_factory=list)
    passphrase: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.recipients or self.passphrase)

    def envelope(self, cipher: SnapshotCipher) -> dict[str, Any]:
        """The manifest header's ``encryption`` section: who can read, and the wrapped key."""
        secret = str(cipher.identity).encode()
        section: dict[str, Any] = {"scheme": SCHEME, "recipients": [], "envelopes": []}
        if self.recipients:
            parsed = [parse_recipient(r, "encryption.recipients") for r in self.recipients]
            section["recipients"] = [{"type": "x25519", "fingerprint": fingerprint(r)} for r in self.recipients]
            section["envelopes"].append(
                {"kind": "x25519", "data": _pyrage().encrypt(secret, parsed, armored=True).decode()})
        if self.passphrase:
            section["recipients"].append({"type": PASSPHRASE, "fingerprint": PASSPHRASE})
            section["envelopes"].append(
                {"kind": PASSPHRASE, "data": _pyrage().passphrase.encrypt(secret, self.passphrase, armored=True)
                 .decode()})
        return section


@dataclass
class KeyRing:
    """What the reading side holds: identities and/or a passphrase."""

    identities: list[Any] = field(default_factory=list)
    passphrase: str | None = None
    sources: list[str] = field(default_factory=list)

    def unwrap(self, section: dict[str, Any], what: str) -> SnapshotCipher:
        """Recover the snapshot key from the header's envelopes, or say which key is needed."""
        pyrage = _pyrage()
        envelopes = section.get("envelopes") or []
        for env in envelopes:
            data = str(env.get("data", "")).encode()
            try:
                if env.get("kind") == "x25519" and self.identities:
                    secret = pyrage.decrypt(data, self.identities)
                elif env.get("kind") == PASSPHRASE and self.passphrase:
                    secret = pyrage.passphrase.decrypt(data, self.passphrase)
                else:
                    continue
            except Exception:
                continue
            try:
                return SnapshotCipher(pyrage.x25519.Identity.from_str(bytes(secret).decode()))
            except Exception:
                raise IntegrityError(f"{what}: its key envelope is damaged") from None
        readers = [r.get("fingerprint", "?") for r in section.get("recipients") or []]
        keys = ", ".join(f"recipient {r}" if r != PASSPHRASE else "the passphrase" for r in readers) or "nobody"
        have = ", ".join(self.sources) or "no identity and no passphrase"
        raise IdentityError(
            f"{what} is encrypted; it can be read with {keys}, but {have} matched",
            hint="pass --identity FILE (or set DATASAFE_IDENTITY_FILE) or set the passphrase variable",
        )


class IdentityError(ConfigError):
    """An encrypted snapshot cannot be opened with the keys at hand."""
