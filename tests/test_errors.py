"""Each error carries its HTTP status: mapping an error to a status is a lookup."""

from __future__ import annotations

import binascii

import pytest

from kservehelper import errors


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.InputError("bad"), 400),
        (errors.RequestTooLarge("big"), 413),
        (errors.RequestTimeout("slow"), 408),
        (errors.HeadersTooLarge("long"), 431),
        (errors.NotFound("where"), 404),
        (errors.MethodNotAllowed("how", "POST"), 405),
        (errors.NotReady("wait"), 503),
        (errors.UploadError("lost"), 502),
        (errors.ConfigError("typo"), 500),
        (ValueError("model says no"), 400),
        (binascii.Error("bad base64"), 400),  # a ValueError
        (RuntimeError("boom"), 500),
        (KeyError("k"), 500),
    ],
)
def test_http_status_of(error: BaseException, status: int) -> None:
    assert errors.http_status_of(error) == status


def test_error_bodies() -> None:
    detail = [{"loc": ["x"], "msg": "m", "type": "t"}]
    assert errors.InputError("bad", detail).to_dict() == {"error": "bad", "detail": detail}
    assert errors.UploadError("lost").to_dict() == {"error": "lost", "type": "UploadError"}
