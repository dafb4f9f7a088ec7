"""The ``datasafe`` command: parse options, call :mod:`datasafe.api`, render the result.

Every failure ends in :func:`main`, which prints one line and exits with the error's code.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, NoReturn, TypeVar

import click

from datasafe import __version__, api
from datasafe.cli.options import apply_object_lock, parse_wait, policy_from, retention_options, wait_option
from datasafe.config import (
    LoadedConfig,
    encryption_settings,
    keyring,
    load_config,
    resolve_source,
    storage_location,
)
from datasafe.errors import DatasafeError, ExitCode, Interrupted
from datasafe.humanize import count
from datasafe.progress import NullProgress, Progress
from datasafe.redact import redact
from datasafe.snapshot.chunks import Compression
from datasafe.snapshot.repository import Repository

log = logging.getLogger("datasafe.cli")
F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES_HELP = "\b\nExit codes:\n" + "\n".join(
    f"  {int(c):>3}  {c.name.lower()}" for c in ExitCode
)


@dataclass
class State:
    config_path: str | None = None
    storage: str | None = None
    identity: str | None = None
    log_format: str = "auto"
    quiet: bool = False
    debug: bool = False
    _config: LoadedConfig | None = field(default=None, repr=False)

    @property
    def config(self) -> LoadedConfig:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def repository(self, *, writing: bool = False) -> Repository:
        """The storage with the keys to read it; ``writing`` adds the encryption recipients."""
        repo = api.open_repository(storage_location(self.config, self.storage), self.config.config.s3,
                                   config=self.config)
        repo.keyring = keyring(self.config, self.identity)
        if writing:
            repo.encryption = encryption_settings(self.config)
        return repo


def _remember(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is not None:
            setattr(ctx.ensure_object(State), name, value)

    return callback


def _logging(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    """``-q``, ``--debug`` and ``--log-format`` after the command name work like before it."""

    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is None or value is False:
            return
        state = ctx.ensure_object(State)
        setattr(state, name, value)
        from datasafe.cli.output import setup_logging

        setup_logging(state.log_format, quiet=state.quiet, debug=state.debug)

    return callback


#: the options every command accepts before or after its name; some commands leave out those they do not use
GLOBAL_OPTIONS = ("identity", "storage", "config", "quiet", "log_format", "debug")


def common_options(f: F) -> F:
    """Every global option, accepted before or after the command name."""
    return global_options()(f)


def global_options(*, without: tuple[str, ...] = ()) -> Callable[[F], F]:
    """The global options less ``without`` (those a command does not use: they would only confuse its --help)."""
    unknown = set(without) - set(GLOBAL_OPTIONS)
    if unknown:
        raise ValueError(f"no such global option: {', '.join(sorted(unknown))}")

    def decorate(f: F) -> F:
        if "debug" not in without:
            f = click.option("--debug", is_flag=True, default=None, expose_value=False, callback=_logging("debug"),
                             help="Debug logging and full tracebacks.")(f)
        if "log_format" not in without:
            f = click.option("--log-format", type=click.Choice(["auto", "human", "json"]), expose_value=False,
                             callback=_logging("log_format"),
                             help="Log lines on stderr: human on a terminal, JSON lines otherwise.  "
                                  "[default: auto]")(f)
        if "storage" not in without:
            f = click.option("--storage", metavar="URL", expose_value=False, callback=_remember("storage"),
                             help="Where snapshots live (path, file:// or s3://bucket/prefix URL). Default: "
                                  "$DATASAFE_STORAGE, config 'storage:', ./datasafe-backups.")(f)
        if "config" not in without:
            f = click.option("--config", "config_path", metavar="FILE", expose_value=False,
                             callback=_remember("config_path"),
                             help="Config file. Default: $DATASAFE_CONFIG, ./datasafe.yml.")(f)
        if "quiet" not in without:
            f = click.option("-q", "--quiet", is_flag=True, default=None, expose_value=False,
                             callback=_logging("quiet"), help="Only warnings and errors; no progress bars.")(f)
        if "identity" not in without:
            f = click.option("--identity", metavar="FILE", expose_value=False, callback=_remember("identity"),
                             help="age identity file for encrypted snapshots. Default: $DATASAFE_IDENTITY_FILE, "
                                  "config 'encryption.identity_file'.")(f)
        return f

    return decorate


def _state() -> State:
    return click.get_current_context().ensure_object(State)


@contextlib.contextmanager
def _progress(enabled: bool = True) -> Iterator[Progress]:
    state = _state()
    if not enabled or state.quiet or not sys.stderr.isatty():
        yield NullProgress()
        return
    from rich.console import Console

    from datasafe.cli.output import RichProgress

    with RichProgress(Console(stderr=True)) as bar:
        yield bar


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(_redacted(data), indent=2, ensure_ascii=False, default=str))


def _redacted(data: Any) -> Any:
    """``data`` with every string passed through :func:`redact` (URLs in results, old manifests)."""
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, dict):
        return {k: _redacted(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_redacted(v) for v in data]
    return data


def _stdout_closed(ctx: click.Context) -> NoReturn:
    """The reader of stdout went away (``datasafe list | head -1``): drop the rest quietly, exit 141."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # what is still buffered goes nowhere at exit
        os.close(devnull)
    except (OSError, ValueError):  # no file descriptor (an in-memory stdout)
        pass
    ctx.exit(int(ExitCode.BROKEN_PIPE))


class DatasafeGroup(click.Group):
    """Turns every failure into one line on stderr and its documented exit code."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except BrokenPipeError:  # --help or --version into a closed pipe
            _stdout_closed(ctx)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:
            _stdout_closed(ctx)
        except DatasafeError as exc:
            self._fail(ctx, str(exc), exc.hint, exc.exit_code, exc)
        except KeyboardInterrupt as exc:
            self._fail(ctx, "interrupted", None, ExitCode.INTERRUPTED, exc)
        except Exception as exc:
            if _debug(ctx):
                raise
            self._fail(ctx, f"internal error: {type(exc).__name__}: {exc}",
                       "rerun with --debug for a traceback", ExitCode.ERROR, exc)

    @staticmethod
    def _fail(ctx: click.Context, message: str, hint: str | None, code: int, exc: BaseException) -> None:
        if _debug(ctx):
            log.error("traceback", exc_info=exc)
        line = f"datasafe: error: {redact(message)}"
        if hint:
            line += f" ({redact(hint)})"
        line = " ".join(line.split())  # one line, whatever a library put into its message
        click.echo(line, err=True)
        ctx.exit(int(code))


def _debug(ctx: click.Context) -> bool:
    state = ctx.find_object(State)
    return bool(state and state.debug)


@click.group(cls=DatasafeGroup, epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="datasafe")
@common_options
@click.pass_context
def cli(ctx: click.Context) -> None:
    """datasafe: verified, compressed snapshots of PostgreSQL, MySQL/MariaDB and SQLite databases.

    \b
    Typical use:
      datasafe backup postgresql://backup@db.internal/shop --tag nightly
      datasafe list
      datasafe verify latest
      datasafe restore latest --target postgresql://localhost/shop_copy --confirm shop_copy --dry-run
    """
    state = ctx.ensure_object(State)
    from datasafe.cli.output import setup_logging

    setup_logging(state.log_format, quiet=state.quiet, debug=state.debug)


# -- backup --------------------------------------------------------------------------------------
@cli.command()
@global_options(without=("identity",))
@click.argument("source", required=False)
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Label the snapshot (repeatable).")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), help="Tables read in parallel (default 2).")
@click.option("--name", metavar="NAME", help="Storage name of a source given as a URL (default: database name).")
@click.option("--compression-level", type=click.IntRange(1, 22), help="zstd level (default 3).")
@click.option("--read-back", type=click.Choice(["digest", "full", "none"]), default="digest", show_default=True,
              help="Before success, re-read what was stored: 'digest' checks size and SHA-256 of every "
                   "stored byte, 'full' also decompresses and counts rows (as verify does).")
@click.option("--prune", "do_prune", is_flag=True,
              help="After a successful backup, prune the source's snapshots by its retention policy "
                   "(under the same lock).")
@retention_options
@wait_option
@click.option("--metrics-file", metavar="PATH",
              help="Record this run in a Prometheus textfile (default: config 'metrics_file').")
@click.option("--json", "as_json", is_flag=True, help="Print the snapshot summary as JSON.")
def backup(source: str | None, tags: tuple[str, ...], jobs: int | None, name: str | None,
           compression_level: int | None, read_back: str, do_prune: bool, wait: str | None,
           metrics_file: str | None, as_json: bool, **keep: Any) -> None:
    """Take a consistent snapshot of SOURCE and print its id.

    SOURCE is a source name from datasafe.yml or a database URL
    (postgresql://user@host/db, mysql://user@host/db, sqlite:///path/to/file.db). The snapshot is read back
    and checked before the command succeeds; a failed or killed backup leaves nothing
    that is listed as complete. One backup or prune per source runs at a time (a lock in
    the storage); another run exits with code 9 unless --wait is given.
    """
    from datasafe.ops.nightly import LockSettings, Reporting, backup_job
    from datasafe.ops.notify import Notifier

    state = _state()
    cfg = state.config
    src = resolve_source(cfg, source, name)
    comp = cfg.config.compression
    compression = Compression(level=compression_level or comp.level, threads=comp.threads)
    policy = policy_from(cfg, src.name, keep) if do_prune else None
    lock = LockSettings(cfg.config.lock.ttl_delta, parse_wait(wait))
    repo = state.repository(writing=True)
    n = cfg.config.notify
    from datasafe.ops.durations import parse_duration

    reporting = Reporting(metrics_file or cfg.config.metrics_file,
                          Notifier(n.healthcheck_url, n.webhook_url, parse_duration(n.timeout)))
    with _progress() as progress:
        manifest, pruned = backup_job(
            src, repo, lock=lock, reporting=reporting, prune=policy,
            lock_days=apply_object_lock(cfg, repo.storage, src.name),
            tags=tags, jobs=jobs or src.jobs or cfg.config.jobs, compression=compression,
            chunk_size=cfg.config.chunk_size, read_back=read_back, progress=progress)
    if pruned is not None:
        log.info("pruned %s of %s (%s)", count(len(pruned.removed), "snapshot"), src.name, pruned.policy.describe())
    if as_json:
        _emit_json({**_summary(manifest), **({"prune": pruned.as_dict()} if pruned else {})})
    else:
        click.echo(manifest.snapshot_id)


def _summary(m: Any) -> dict[str, Any]:
    return {
        "snapshot": m.snapshot_id, "source": m.source, "engine": m.engine, "database": m.database,
        "finished_at": m.finished_at.isoformat(), "tables": m.table_count, "rows": m.rows,
        "raw_bytes": m.raw_size, "stored_bytes": m.stored_size, "tags": m.tags,
    }


from datasafe.cli import commands, environments, keys, leaks, masking, ops, report, scan, snapshots  # noqa: E402, F401

_ = commands, environments, keys, masking, ops, snapshots  # imported to register their commands


def _install_signal_handlers() -> None:
    def on_term(signum: int, _frame: FrameType | None) -> None:
        raise Interrupted(f"stopped by {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, on_term)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    _install_signal_handlers()
    cli.main(args=argv, prog_name="datasafe")
