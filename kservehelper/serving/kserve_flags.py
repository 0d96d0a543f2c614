"""KServe's model-server flags on ``kservehelper serve``'s command line, checked before KServe
reads them.

KServe parses ``sys.argv`` with its own argparse parser the moment ``kserve.model_server`` is
imported, and that parser accepts abbreviations: ``kservehelper serve --prot 8080`` (a typo of
``--port``) reaches it as ``--protocol 8080`` and ends the process with KServe's 22-line usage
and an error about ``--protocol``. So ``serve`` imports KServe with an empty command line, checks
the arguments it did not recognise itself against KServe's flags (exactly, no abbreviations),
and hands KServe the checked ones. This is the KServe internal that must run *before* KServe is
imported, which is why it is not in :mod:`~kservehelper.serving.kserve_compat` (imported with
KServe); ``HostBoundModelServer`` there reads the flags from the parsed namespace.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Iterable, Sequence

from kservehelper.errors import ServeError


def import_kserve_with_flags(arguments: Sequence[str], own_options: Iterable[str]) -> None:
    """Import KServe's model server with ``arguments`` as its command-line flags.

    ``arguments`` are what ``serve`` did not recognise; ``own_options`` are serve's options,
    suggested for a typo along with KServe's flags. Raises :class:`ServeError` for an unknown
    option (with "did you mean"), a stray argument or a bad flag value.
    """
    saved = sys.argv
    sys.argv = saved[:1]  # KServe parses sys.argv when imported: it sees nothing here
    try:
        from kserve import model_server
    finally:
        sys.argv = saved
    parser: argparse.ArgumentParser = model_server.parser
    known = {option for action in parser._actions for option in action.option_strings}
    for argument in arguments:
        flag = argument.split("=", 1)[0]
        if flag.startswith("-") and flag not in known:
            raise ServeError(_unknown_option(flag, [*own_options, *sorted(known)]))
    parsed, leftover = _parse(parser, list(arguments))
    if leftover:
        raise ServeError(
            f"unexpected argument {leftover[0]!r}: serve takes one model folder "
            "(`kservehelper serve --help` lists the options)"
        )
    # The same namespace object KServe's ModelServer and gRPC server read their settings from.
    vars(model_server.args).update(vars(parsed))
    if parsed.enable_docs_url:
        from kservehelper.serving.kserve_compat import enable_docs_url

        enable_docs_url(model_server.app)


def passes_flag(arguments: Sequence[str], flag: str) -> bool:
    """Whether ``flag`` (``--enable_grpc``) is among the checked pass-through ``arguments``."""
    return any(argument.split("=", 1)[0] == flag for argument in arguments)


def _parse(
    parser: argparse.ArgumentParser, arguments: list[str]
) -> tuple[argparse.Namespace, list[str]]:
    """KServe's parser on ``arguments``, raising instead of printing usage and exiting."""
    exit_on_error, allow_abbrev = parser.exit_on_error, parser.allow_abbrev
    parser.exit_on_error, parser.allow_abbrev = False, False
    try:
        return parser.parse_known_args(arguments)
    except argparse.ArgumentError as error:
        name = error.argument_name or "a KServe flag"
        raise ServeError(f"{name}: {error.message}") from None
    finally:
        parser.exit_on_error, parser.allow_abbrev = exit_on_error, allow_abbrev


def _unknown_option(flag: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(flag, candidates, n=2, cutoff=0.6)
    if not close:  # an abbreviation, as KServe's parser would have taken it
        close = [c for c in candidates if c.startswith(flag)][:2]
    suggestion = f" (did you mean {' or '.join(close)}?)" if close else ""
    return f"no such option: {flag}{suggestion}; `kservehelper serve --help` lists the options"
