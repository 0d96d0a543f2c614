"""2.0's ``kservehelper.storage.S3Storage`` (against SeaweedFS) and ``kservehelper.utils``
(``upload_files`` against the bundled upload server, ``flock``)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from kservehelper.errors import InputError, UploadError
from tests.fixtures_storage import SeaweedS3, start_upload_server, stop_process

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def storage(seaweedfs: SeaweedS3, monkeypatch: pytest.MonkeyPatch):
    from kservehelper.storage import S3Storage

    monkeypatch.setenv("AWS_ENDPOINT_URL", seaweedfs.endpoint)
    bucket = seaweedfs.new_bucket()
    return S3Storage(
        bucket=bucket,
        region_name="us-east-1",
        aws_access_key_id=seaweedfs.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=seaweedfs.env["AWS_SECRET_ACCESS_KEY"],
    )


def test_s3_storage_round_trip_small_and_multipart(storage, seaweedfs, tmp_path: Path) -> None:
    small = tmp_path / "small.bin"
    small.write_bytes(b"s" * 100)
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (17 * 4096))  # 17 MiB: past the multipart threshold
    assert storage.upload(filename=str(small), key="models/small.bin") is True
    assert storage.upload(str(big), "models/big.bin", method="multipart") is True  # 2.0 kwarg
    listed = seaweedfs.client().list_objects_v2(Bucket=storage.bucket)["Contents"]
    assert {item["Key"]: item["Size"] for item in listed} == {
        "models/small.bin": 100,
        "models/big.bin": big.stat().st_size,
    }
    assert storage.download(key="models/big.bin", filename=str(tmp_path / "back.bin")) is True
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()


def test_s3_storage_failures_are_false_and_leave_no_file(storage, tmp_path: Path) -> None:
    target = tmp_path / "never.bin"
    assert storage.download("no/such/key", str(target)) is False
    assert not target.exists() and list(tmp_path.iterdir()) == []
    assert storage.upload(str(tmp_path / "missing.bin"), "k") is False


def test_s3_storage_with_default_credentials(seaweedfs, monkeypatch, tmp_path: Path) -> None:
    """Empty keys (2.0's defaults when unset) mean boto3's standard chain, here the env."""
    from kservehelper.storage import S3Storage

    monkeypatch.setenv("AWS_ENDPOINT_URL", seaweedfs.endpoint)
    storage = S3Storage(seaweedfs.new_bucket(), "us-east-1", "", "")
    source = tmp_path / "a.txt"
    source.write_text("chain")
    assert storage.upload(str(source), "a.txt") is True
    with pytest.raises(ValueError, match="bucket"):
        S3Storage("", "us-east-1", "", "")


@pytest.fixture(scope="module")
def upload_server(tmp_path_factory: pytest.TempPathFactory):
    dest = tmp_path_factory.mktemp("received")
    server, process = start_upload_server(str(dest))
    yield server
    stop_process(process)


@pytest.fixture(autouse=True)
def _admit_the_upload_server(upload_server, monkeypatch: pytest.MonkeyPatch) -> None:
    """A webhook on loopback is one allow-list entry (the outbound policy, docs/security.md)."""
    from kservehelper.settings import reset_settings

    monkeypatch.setenv("KSERVEHELPER_ALLOWED_DESTINATIONS", upload_server.url)
    reset_settings()


def test_upload_files_speaks_both_2_0_webhooks(upload_server, tmp_path: Path) -> None:
    from kservehelper.utils import upload_files

    paths = []
    for index in range(3):
        path = tmp_path / f"image_{index}.jpg"
        path.write_bytes(bytes([index]) * 50)
        paths.append(path)
    for route in ("upload", "upload_batch"):
        result = upload_files(f"{upload_server.url}/{route}", [str(p) for p in paths], timeout=30)
        assert list(result) == ["output"] and len(result["output"]) == 3
        for path, url in zip(paths, result["output"], strict=True):
            assert httpx.get(url).content == path.read_bytes()  # in the order given
    assert all(path.exists() for path in paths)  # the caller's files are left alone


def test_upload_files_refuses_bad_destinations_and_files(upload_server, tmp_path: Path) -> None:
    from kservehelper.utils import upload_files

    path = tmp_path / "a.txt"
    path.write_text("a")
    with pytest.raises(InputError, match="unknown destination"):
        upload_files("ftp://example.invalid/upload", [path])
    with pytest.raises(FileNotFoundError, match="not a file"):
        upload_files(f"{upload_server.url}/upload", [tmp_path / "missing.txt"])
    with pytest.raises(UploadError, match=r"a\.txt"):
        upload_files(f"{upload_server.url}/nothing-here/upload", [path], timeout=10)


def test_flock_excludes_other_holders(tmp_path: Path) -> None:
    from kservehelper.utils import flock

    order: list[str] = []
    holding = threading.Event()

    def other() -> None:
        holding.wait(30)
        with flock(tmp_path / "lock"):
            order.append("other")

    thread = threading.Thread(target=other)
    thread.start()
    with flock(tmp_path / "lock"):
        holding.set()
        time.sleep(0.2)  # the other thread is now waiting on the lock, whatever the load
        order.append("first")
    thread.join(30)
    assert order == ["first", "other"]
    # filelock is re-entrant per object, not per path: a second lock object waits.
    with (
        flock(tmp_path / "lock2"),
        pytest.raises(TimeoutError, match="lock2"),
        flock(tmp_path / "lock2", timeout=0.1),
    ):
        pass
