"""``python -m kservehelper``: the same as the ``kservehelper`` command."""

from kservehelper.cli import main

main()
