"""The ``kservehelper`` command: thin wiring of the modules behind it.

Each command imports what it needs inside its body, so ``kservehelper --help`` and the build
commands never import the serving stack (kserve, FastAPI, numpy).
"""

from __future__ import annotations

from typing import Annotated

import typer

from kservehelper import __version__

app = typer.Typer(
    name="kservehelper",
    help="Serve a Python model class on KServe, and build, push and deploy its image.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
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


def main() -> None:
    """Console-script entry point."""
    app()
