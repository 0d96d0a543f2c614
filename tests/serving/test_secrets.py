"""Secret scrubbing of log records (tracebacks included) and JSON bodies."""

from __future__ import annotations

import io
import logging

import pytest

from kservehelper.serving import secrets


@pytest.fixture
def log() -> io.StringIO:
    secrets.install_log_scrubber()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("test.secrets")
    logger.addHandler(handler)
    logger.propagate = False
    yield stream
    logger.removeHandler(handler)


def test_request_secrets_are_scrubbed_while_the_request_runs(log: io.StringIO) -> None:
    logger = logging.getLogger("test.secrets")
    with secrets.request_secrets(["hunter2-secret"]):
        logger.error("token %s refused", "hunter2-secret")
        try:
            raise RuntimeError("hunter2-secret is wrong")
        except RuntimeError:
            logger.exception("call failed")
        assert secrets.scrub_json({"e": ["x hunter2-secret"]}) == {"e": ["x **********"]}
        assert secrets.scrub_bytes(b'{"m": "hunter2-secret"}') == b'{"m": "**********"}'
    logger.error("after: %s", "hunter2-secret")
    text = log.getvalue()
    assert "token ********** refused" in text
    assert "RuntimeError: ********** is wrong" in text
    assert "after: hunter2-secret" in text  # the request is over: nothing to hide any more


def test_standing_secrets_are_always_scrubbed_longest_first(log: io.StringIO) -> None:
    secrets.add_standing(["standing-key-123", "standing-key-123-longer", "", None])
    logging.getLogger("test.secrets").warning("%s / %s", "standing-key-123-longer",
                                              "standing-key-123")  # fmt: skip
    assert log.getvalue().strip() == "********** / **********"
    assert secrets.scrub("x standing-key-123") == "x **********"


def test_secrets_in_json_strings_are_matched_as_json_encodes_them() -> None:
    with secrets.request_secrets(['quo"te\\secret']):
        assert secrets.scrub_bytes(b'{"m": "a quo\\"te\\\\secret"}') == b'{"m": "a **********"}'
