"""The ``kservehelper`` typer app, the options its commands share, and the one ``fail()``.

Every command module registers itself on :data:`app` (``kservehelper.cli`` imports them all).
Commands import what they need inside their bodies, so ``kservehelper --help`` and the build
commands never import the serving stack (kserve, FastAPI, numpy).

A user's mistake ends a command with one line on stderr, ``error: <what> ... <the fix>``, and a
non-zero exit; ``--debug`` adds the traceback (of the error and what caused it).
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import typer

from kservehelper import __version__
from kservehelper.deprecation import show_deprecations

app = typer.Typer(
    name="kservehelper",
    help="Serve a Python model class on KServe, and build, push and deploy its image.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    # A crash must not print local variables: they may hold credentials or user data.
    pretty_exceptions_show_locals=False,
)

DEBUG_FLAG = "--debug"
#: How an error line tells the user to get the traceback.
DEBUG_HINT = f"`kservehelper {DEBUG_FLAG} ...` shows the traceback"


class _CliState:
    """What the root options set for the command that runs (one command per process)."""

    debug: bool = False


state = _CliState()


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"kservehelper {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            DEBUG_FLAG,
            help="On an error, print the traceback too (also accepted after the command).",
        ),
    ] = False,
) -> None:
    """Serve a Python model class on KServe, and build, push and deploy its image."""
    state.debug = state.debug or debug
    show_deprecations()  # the user's 2.0 names, which Python hides outside __main__


ModelDir = Annotated[
    Path,
    typer.Argument(help="The model folder (holds model.py and config.yaml).", show_default=True),
]
ClassOption = Annotated[
    Optional[str],  # noqa: UP045 - typer reads the annotation at run time (Python 3.10)
    typer.Option("--class", help="The model class in the entrypoint. [default: config, Model]"),
]
NameOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--name", help="The KServe model name. [default: config, folder name]"),
]


def fail(error: BaseException, code: int = 1) -> NoReturn:
    """Print ``error: <message>`` on stderr and exit with ``code``: every command's way out.

    With ``--debug``, the traceback of ``error`` (and of the exception that caused it) comes
    first, for a bug report or a model whose failure the one line does not explain.
    """
    from kservehelper.errors import ModelError

    hint = ""
    if state.debug and (error.__traceback__ is not None or error.__cause__ is not None):
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    elif isinstance(error, ModelError) and not isinstance(
        error.__cause__, (SyntaxError, ModuleNotFoundError)
    ):
        # The model's own code failed: its traceback is what the user debugs with.
        hint = f" ({DEBUG_HINT})"
    typer.echo(f"error: {error}{hint}", err=True)
    raise typer.Exit(code)


def hoist_debug_flag(argv: list[str]) -> list[str]:
    """``--debug`` given after the command name moves in front of it, where typer reads it.

    Only arguments before a ``--`` are looked at; a value such as ``-i text=--debug`` is one
    argument that is not ``--debug``, and stays.
    """
    end = argv.index("--") if "--" in argv else len(argv)
    if DEBUG_FLAG not in argv[:end]:
        return argv
    rest = [arg for arg in argv[:end] if arg != DEBUG_FLAG] + argv[end:]
    return [DEBUG_FLAG, *rest]


def run_app(argv: list[str]) -> NoReturn:
    """Run the command line. Usage mistakes (an unknown option, a bad value) and exceptions no
    command expected (a bug) end in one line too."""
    argv = hoist_debug_flag(argv)
    state.debug = DEBUG_FLAG in argv[: argv.index("--") if "--" in argv else len(argv)]
    try:
        code = app(args=argv, prog_name="kservehelper", standalone_mode=False)
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        sys.exit(1)
    except OSError as exc:  # the machine said no (a file, a permission): not a bug
        _print_traceback(exc)
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:
        kind = _click_error_kind(exc)
        if kind is None:  # a bug
            _print_traceback(exc)
            hint = "" if state.debug else f" ({DEBUG_HINT}; please report it)"
            typer.echo(f"error: unexpected {type(exc).__name__}: {exc}{hint}", err=True)
            sys.exit(1)
        if kind == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]  # the help, as `kservehelper` alone asks
        else:
            typer.echo(f"error: {_usage_message(exc, kind)}", err=True)
        sys.exit(exc.exit_code)  # type: ignore[attr-defined]
    sys.exit(code if isinstance(code, int) else 0)


def _click_error_kind(exc: Exception) -> str | None:
    """Which of click's errors ``exc`` is, by class name: typer may carry its own click copy,
    whose classes are not ``click``'s."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    for kind in ("NoArgsIsHelpError", "UsageError", "ClickException"):
        if kind in names:
            return kind
    return None


def _usage_message(exc: Any, kind: str) -> str:
    message = " ".join(str(exc.format_message()).split())
    if kind != "UsageError":
        return message
    context = getattr(exc, "ctx", None)
    command = context.command_path if context is not None else "kservehelper"
    return f"{message} (`{command} --help` shows the usage)"


def _print_traceback(exc: BaseException) -> None:
    if state.debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)


DockerOption = Annotated[
    Optional[str],  # noqa: UP045 - typer reads the annotation at run time (Python 3.10)
    typer.Option(
        "--docker",
        help="The docker client binary. [default: $KSERVEHELPER_DOCKER, else docker on PATH]",
    ),
]
