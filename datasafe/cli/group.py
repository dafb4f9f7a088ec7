"""The ``datasafe`` click group: the global options every command accepts, and the one place
every failure becomes one line on stderr and its exit code (:class:`DatasafeGroup`)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from datasafe import __version__
from datasafe.cli.state import State
from datasafe.errors import DatasafeError, ExitCode
from datasafe.redact import redact

log = logging.getLogger("datasafe.cli")
F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES_HELP = "\b\nExit codes:\n" + "\n".join(
    f"  {int(c):>3}  {c.name.lower()}" for c in ExitCode
)


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
        from datasafe.cli.output import setup_logging  # deferred: start-up time

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
    from datasafe.cli.output import setup_logging  # deferred: start-up time

    setup_logging(state.log_format, quiet=state.quiet, debug=state.debug)
