"""Large ``data:`` URIs taken out of a request body before it is parsed, and put back where
they do not feed a file input."""

from __future__ import annotations

import base64
import os

import orjson
import pytest

from kservehelper.serving.request_body import (
    SPOOL_THRESHOLD,
    Spool,
    restore_unclaimed,
    spool_data_uris,
    take_spooled,
    use_spool,
)


def uri(payload: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode()}"


@pytest.fixture
def spool() -> Spool:
    made = Spool()
    yield made
    made.remove()


def test_large_data_uris_are_decoded_to_disk_and_replaced(spool: Spool) -> None:
    first, second = os.urandom(SPOOL_THRESHOLD), os.urandom(SPOOL_THRESHOLD * 2)
    text = {"image": uri(first), "frames": [uri(second, "video/mp4"), "small"], "n": 3}
    body = bytearray(orjson.dumps(text))
    spool_data_uris(body, spool)
    assert len(body) < 400
    payload = orjson.loads(body)
    assert payload["n"] == 3 and payload["frames"][1] == "small"
    use_spool(spool)
    image = take_spooled(payload["image"])
    assert image is not None and image.path.read_bytes() == first
    assert image.header == "data:image/png;base64"
    assert take_spooled(payload["image"]) is None  # claimed once
    frame = take_spooled(payload["frames"][0])
    assert frame is not None and frame.path.read_bytes() == second


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": "small"}',
        b'{"a": "data:,' + b"x" * SPOOL_THRESHOLD + b'"}',  # not base64: parsed as usual
        b'{"a": "data:image/png;base64,' + b"A" * (SPOOL_THRESHOLD + 1) + b'"}',  # bad length
        b'{"a": "data:image/png;base64,' + b"A=A=" * SPOOL_THRESHOLD + b'"}',  # bad padding
        b'{"a": "data:image/png;base64,' + b"AAA\\/" * SPOOL_THRESHOLD + b'"}',  # an escape
        b'{"data:image/png;base64,' + b"AAAA" * SPOOL_THRESHOLD + b'": 1}',  # a key
        b'{"a": "x\\"data:image/png;base64,' + b"AAAA" * SPOOL_THRESHOLD + b'"}',  # inside
        b'{"a": "data:image/png;base64,' + b"AAAA" * SPOOL_THRESHOLD,  # unterminated
    ],
)
def test_anything_else_is_left_as_sent(spool: Spool, body: bytes) -> None:
    original = bytearray(body)
    spool_data_uris(original, spool)
    assert original == body and not spool.files


def test_placeholders_outside_file_inputs_get_their_text_back(spool: Spool) -> None:
    large = uri(os.urandom(SPOOL_THRESHOLD))
    body = bytearray(orjson.dumps({"image": large, "caption": large, "nested": {"x": [large]}}))
    spool_data_uris(body, spool)
    restored = restore_unclaimed(orjson.loads(body), {"image"}, spool)
    assert restored["caption"] == large and restored["nested"] == {"x": [large]}
    assert restored["image"].startswith("kservehelper-spooled:")


def test_a_forged_placeholder_is_just_a_string(spool: Spool) -> None:
    use_spool(spool)
    assert take_spooled("kservehelper-spooled:" + "0" * 32) is None
