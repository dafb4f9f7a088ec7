"""The exception hierarchy of datasafe.

Every error a user can cause or meet derives from :class:`DatasafeError` and carries the
process exit code the CLI returns for it. The codes are part of the public interface
(documented in ``docs/cli.md``); cron jobs and monitoring branch on them.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of the ``datasafe`` command."""

    OK = 0
    ERROR = 1  #: unexpected internal error (a bug: please report it)
    USAGE = 2  #: bad command line: unknown option, missing or ambiguous argument, arguments that do not go together
    CONFIG = 3  #: a setting is invalid or missing: datasafe.yml, a source or target URL, a name, a tag or a key
    CONNECTION = 4  #: a database server could not be reached or refused the login
    STORAGE = 5  #: the storage location cannot be read or written (missing, read-only, full)
    INTEGRITY = 6  #: a snapshot is corrupt, incomplete or failed verification
    NOT_FOUND = 7  #: the snapshot, source or table named does not exist
    REFUSED = 8  #: a safety check refused the operation (non-empty target, ...)
    LOCKED = 9  #: another datasafe process holds the lock
    DEPENDENCY = 10  #: a required tool or library is missing or too old (pg_dump, psycopg)
    DATABASE = 11  #: the database server reported an error, or the role lacks a privilege the operation needs
    INTERRUPTED = 130  #: stopped by SIGINT or SIGTERM
    BROKEN_PIPE = 141  #: stdout was closed early (a reader such as head quit); the rest of the output is dropped


class DatasafeError(Exception):
    """Base class: a one-line message and an exit code."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(DatasafeError):
    """The command line is wrong in a way the option parser cannot tell: a URL without a database,
    an ambiguous snapshot reference, a missing source, a snapshot and a target of different engines."""

    exit_code = ExitCode.USAGE


class ConfigError(DatasafeError):
    """The configuration file, a source or a target is invalid."""

    exit_code = ExitCode.CONFIG


class ConnectionFailed(DatasafeError):
    """A database server could not be reached or rejected the credentials."""

    exit_code = ExitCode.CONNECTION


class StorageError(DatasafeError):
    """The storage location cannot be read or written."""

    exit_code = ExitCode.STORAGE


class IntegrityError(DatasafeError):
    """A snapshot is corrupt, incomplete, or does not match its manifest."""

    exit_code = ExitCode.INTEGRITY


class NotFound(DatasafeError):
    """A snapshot, source or table does not exist."""

    exit_code = ExitCode.NOT_FOUND


class Refused(DatasafeError):
    """A safety rule refused the operation."""

    exit_code = ExitCode.REFUSED


class LockHeld(DatasafeError):
    """Another process holds the lock."""

    exit_code = ExitCode.LOCKED


class DependencyError(DatasafeError):
    """A required external tool or optional library is missing or too old."""

    exit_code = ExitCode.DEPENDENCY


class DatabaseError(DatasafeError):
    """The database server reported an error during a backup or restore."""

    exit_code = ExitCode.DATABASE


class PrivilegeError(DatabaseError):
    """The role datasafe connects as lacks a privilege the operation needs (CREATEDB, CREATE).

    Told apart from other server errors because the fix is a grant (or another role), never a
    retry, and the message names the privilege, the role and the server."""


class Interrupted(DatasafeError):
    """The operation was stopped by a signal."""

    exit_code = ExitCode.INTERRUPTED
