"""The ``kservehelper`` typer app, the options its commands share, and the one ``fail()``.

Every command module registers itself on :data:`app` (``kservehelper.cli`` imports them all).
Commands import what they need inside their bodies, so ``kservehelper --help`` and the build
commands never import the serving stack (kserve, FastAPI, numpy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer

from kservehelper import __version__

app = typer.Typer(
    name="kservehelper",
    help="Serve a Python model class on KServe, and build, push and deploy its image.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    # A crash must not print local variables: they may hold credentials or user data.
    pretty_exceptions_show_locals=False,
)


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
) -> None:
    """Serve a Python model class on KServe, and build, push and deploy its image."""


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
    """Print ``error: <message>`` on stderr and exit with ``code``: every command's way out."""
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(code)


DockerOption = Annotated[
    Optional[str],  # noqa: UP045 - typer reads the annotation at run time (Python 3.10)
    typer.Option(
        "--docker",
        help="The docker client binary. [default: $KSERVEHELPER_DOCKER, else docker on PATH]",
    ),
]
