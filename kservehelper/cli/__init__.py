"""The ``kservehelper`` command line: one module per command group, registered on one app.

* :mod:`.serve`: ``serve``
* :mod:`.predict`: ``predict``, ``schema``
* :mod:`.image`: ``build``, ``push``, ``dockerfile``, ``init``, ``config-schema``
* :mod:`.deploy`: ``deploy``
* :mod:`.upload`: ``upload-server``
"""

from __future__ import annotations

# Importing a command module registers its commands; --help lists them in this order.
from kservehelper.cli import serve  # isort: split

from kservehelper.cli import predict  # isort: split

from kservehelper.cli import image  # isort: split

import sys

from kservehelper.cli import deploy, upload
from kservehelper.cli.app import app, run_app

__all__ = ["app", "deploy", "image", "main", "predict", "serve", "upload"]


def main() -> None:
    """Console-script entry point (also ``python -m kservehelper``)."""
    run_app(sys.argv[1:])
