"""2.0's caches from ``kservehelper.cache``: 2.0's signatures and behaviour over today's caches;
the S3 ones against a real SeaweedFS."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest

from kservehelper import cache
from kservehelper.compat import cache as v2
from tests.fixtures_storage import SeaweedS3

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_2_0_signatures_get_the_adapters_and_todays_the_caches(tmp_path: Path) -> None:
    assert isinstance(cache.DiskCache(), v2.DiskCache)  # 2.0: every argument has a default
    assert isinstance(cache.DiskCache(2, cache_dir=str(tmp_path)), v2.DiskCache)
    assert isinstance(cache.DiskCache(cache_dir=str(tmp_path), capacity=10), v2.DiskCache)
    today = cache.DiskCache(tmp_path / "today", 100)
    assert type(today) is cache.DiskCache
    assert type(cache.DiskCache(directory=tmp_path / "kw", max_bytes=5)) is cache.DiskCache
    assert isinstance(cache.ModelCache(cache_dir=str(tmp_path)), v2.ModelCache)
    assert isinstance(cache.ModelCache(model_load_func=len, cache_dir=str(tmp_path)), v2.ModelCache)
    assert type(cache.ModelCache(len)) is cache.ModelCache
    assert type(cache.ModelCache(load_fn=len, max_models=2)) is cache.ModelCache
    assert cache.MemoryCache is v2.MemoryCache and cache.DiskLRUCache is v2.DiskLRUCache
    lru = cache.MemoryLRUCache(num_cached_objects=2)  # 2.0's keyword
    assert lru.capacity == lru.max_items == 2
    with pytest.raises(AttributeError, match="no attribute 'DiskLRUCach'"):
        cache.DiskLRUCach  # noqa: B018


def test_memory_cache_reads_models_json_and_loads_once(tmp_path: Path) -> None:
    (tmp_path / "models.json").write_text(json.dumps({"a": "a.bin", "b": "b.bin"}))
    loads: list[str] = []

    def load(path: str) -> str:
        loads.append(path)
        return Path(path).name.upper()

    models = cache.MemoryCache(folder=str(tmp_path), num_cached_objects=2, load_func=load)
    assert models["a"] == "A.BIN" and models["a"] == "A.BIN"
    assert loads == [str(tmp_path / "a.bin")]
    (tmp_path / "models.json").write_text(json.dumps({"a": "a.bin", "c": "new.bin"}))
    assert models["c"] == "NEW.BIN"  # an unknown name re-reads models.json
    assert models["plain.bin"] == "PLAIN.BIN"  # a file name in the folder works too
    assert set(models.cache.cache) == {"c", "plain.bin"}  # 2 most recent


@pytest.mark.parametrize("key", ["../secret", "/etc/passwd", "a/../../b", ""])
def test_memory_cache_refuses_keys_that_leave_its_folder(tmp_path: Path, key: str) -> None:
    models = cache.MemoryCache(folder=str(tmp_path), num_cached_objects=1, load_func=str)
    with pytest.raises(ValueError, match="neither a model name"):
        models[key]


def test_memory_cache_needs_load_func_and_returns_none_when_loading_fails(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="load_func"):
        cache.MemoryCache(folder=str(tmp_path), num_cached_objects=1)

    def broken(path: str) -> None:
        raise OSError(f"cannot read {path}")

    assert cache.MemoryCache(str(tmp_path), 1, load_func=broken)["x"] is None


def _file(path: Path, size: int) -> str:
    path.write_bytes(b"x" * size)
    return str(path)


def test_disk_lru_cache_keeps_2_0_layout_and_eviction(tmp_path: Path) -> None:
    disk = cache.DiskLRUCache(capacity=32, cache_dir=str(tmp_path / "c"))
    disk["one"] = _file(tmp_path / "1", 8)
    assert disk["one"] == str(tmp_path / "c" / "one") and disk.total_size == 8
    assert Path(disk["one"]).read_bytes() == b"x" * 8
    disk["two"] = _file(tmp_path / "2", 30)
    disk["one"]  # now the most recently used
    disk["three"] = _file(tmp_path / "3", 4)  # 38 >= 32 before adding: "two" goes
    assert list(disk.cache) == ["one", "three"] and disk.total_size == 12
    assert not (tmp_path / "c" / "two").exists()
    assert disk["two"] is None
    # Another cache on the same folder (another process, in 2.0's use) sees the same index.
    again = cache.DiskLRUCache(capacity=32, cache_dir=str(tmp_path / "c"))
    assert again["three"] == str(tmp_path / "c" / "three")


@pytest.mark.parametrize("key", ["../escape", "a/b", ".kservehelper-cache", ""])
def test_disk_lru_cache_refuses_keys_that_are_not_file_names(tmp_path: Path, key: str) -> None:
    disk = cache.DiskLRUCache(capacity=100, cache_dir=str(tmp_path / "c"))
    with pytest.raises(ValueError, match="key"):
        disk[key] = _file(tmp_path / "f", 3)
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [".kservehelper-cache"]


@pytest.fixture
def s3(seaweedfs: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> tuple[SeaweedS3, str]:
    """A bucket, reached the way 2.0 code configures S3 (region, keys; endpoint from env)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", seaweedfs.endpoint)
    return seaweedfs, seaweedfs.new_bucket()


def _credentials(seaweedfs: SeaweedS3, bucket: str) -> dict[str, str]:
    return {
        "aws_bucket": bucket,
        "aws_region_name": "us-east-1",
        "aws_access_key_id": seaweedfs.env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": seaweedfs.env["AWS_SECRET_ACCESS_KEY"],
    }


def test_disk_cache_uploads_on_set_and_downloads_on_a_miss(s3, tmp_path: Path) -> None:
    seaweedfs, bucket = s3
    writer = cache.DiskCache(cache_dir=str(tmp_path / "a"), **_credentials(seaweedfs, bucket))
    assert writer.set("lora/style.safetensors", _file(tmp_path / "w", 1000)) is True
    stored = seaweedfs.client().get_object(Bucket=bucket, Key="lora/style.safetensors")
    assert stored["Body"].read() == b"x" * 1000
    assert Path(writer.get("lora/style.safetensors") or "").read_bytes() == b"x" * 1000
    # A fresh cache (another pod) downloads it once.
    reader = cache.DiskCache(cache_dir=str(tmp_path / "b"), **_credentials(seaweedfs, bucket))
    path = reader.get("lora/style.safetensors")
    assert path is not None and Path(path).read_bytes() == b"x" * 1000
    assert path.startswith(str(tmp_path / "b")) and reader.get("lora/style.safetensors") == path
    assert reader.store.downloads == 1


def test_disk_cache_failures_return_none_or_false_and_leave_nothing(s3, tmp_path: Path) -> None:
    seaweedfs, bucket = s3
    disk = cache.DiskCache(cache_dir=str(tmp_path), **_credentials(seaweedfs, bucket))
    assert disk.get("missing.bin") is None
    assert disk.get("../../outside") is None  # a key is an object name, never a local path
    assert not list((tmp_path / "kservehelper-cache" / "objects").rglob("*.partial"))
    assert not (tmp_path.parent / "outside").exists()
    assert disk.set("x", str(tmp_path / "no-such-file")) is False
    wrong = cache.DiskCache(cache_dir=str(tmp_path), **_credentials(seaweedfs, "no-such-bucket"))
    assert wrong.set("x", _file(tmp_path / "f", 5)) is False


def test_disk_cache_without_a_bucket_is_local_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BUCKET", raising=False)
    disk = cache.DiskCache(cache_dir=str(tmp_path))
    assert disk.storage is None
    assert disk.get("k") is None
    assert disk.set("k", _file(tmp_path / "f", 5)) is True
    assert Path(disk.get("k") or "").read_bytes() == b"xxxxx"
    assert {disk._shard_index(i) for i in range(200)} == set(range(10))  # 2.0's helper


def test_model_cache_loads_from_the_bucket_once(s3, tmp_path: Path) -> None:
    seaweedfs, bucket = s3
    loads: list[str] = []

    def load(path: str) -> bytes:
        loads.append(path)
        return Path(path).read_bytes()

    models = cache.ModelCache(
        cache_dir=str(tmp_path / "a"),
        num_mem_objects=1,
        model_load_func=load,
        **_credentials(seaweedfs, bucket),
    )
    assert models.set("m1", _file(tmp_path / "m1", 10)) is True
    assert models.get("m1") == b"x" * 10 and len(loads) == 1  # loaded by set, kept in memory
    seaweedfs.client().put_object(Bucket=bucket, Key="m2", Body=b"y" * 7)
    assert models.get("m2") == b"y" * 7  # downloaded, loaded; m1 leaves the memory
    assert models.get("m1") == b"x" * 10 and len(loads) == 3  # reloaded from the disk copy
    assert models.get("nothing-here") is None
    paths = cache.ModelCache(cache_dir=str(tmp_path / "b"), **_credentials(seaweedfs, bucket))
    assert Path(paths.get("m2") or "").read_bytes() == b"y" * 7  # no load func: the path


def test_v2_caches_warn_once_each() -> None:
    from kservehelper.deprecation import forget_warnings

    forget_warnings()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            cache.MemoryCache("", 1, load_func=str)
    assert len([w for w in caught if "MemoryCache" in str(w.message)]) == 1
    assert os.path.basename(caught[0].filename) == "test_cache.py"
