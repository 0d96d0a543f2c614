"""Caches against a real SeaweedFS: memory LRU, disk LRU across threads and processes."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from kservehelper.cache import DiskCache, MemoryLRUCache, ModelCache
from kservehelper.storage.base import StorageSettings
from kservehelper.storage.transfer import download, upload
from tests.fixtures_storage import SeaweedS3


def test_memory_lru_loads_once_and_evicts() -> None:
    cache: MemoryLRUCache[str] = MemoryLRUCache(max_items=2)
    calls: list[str] = []

    def loader(key: str):
        def load() -> str:
            calls.append(key)
            time.sleep(0.05)
            return key.upper()

        return load

    threads = [
        threading.Thread(target=cache.get_or_load, args=("a", loader("a"))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == ["a"]
    cache.get_or_load("b", loader("b"))
    assert cache.get("a") == "A"  # a is now the most recent
    cache.get_or_load("c", loader("c"))
    assert "b" not in cache and "a" in cache and "c" in cache


@pytest.fixture
def bucket_files(seaweedfs: SeaweedS3) -> tuple[str, StorageSettings]:
    bucket = seaweedfs.new_bucket()
    client = seaweedfs.client()
    for name in ("a.bin", "b.bin", "c.bin"):
        client.put_object(Bucket=bucket, Key=f"models/{name}", Body=name.encode() * 100)
    return bucket, StorageSettings(s3_endpoint_url=seaweedfs.endpoint)


def test_disk_cache_hits_misses_and_evicts_lru(bucket_files, tmp_path: Path) -> None:
    bucket, settings = bucket_files
    cache = DiskCache(tmp_path / "cache", max_bytes=1000, settings=settings)
    a = cache.get(f"s3://{bucket}/models/a.bin")
    assert a.name == "a.bin" and a.read_bytes() == b"a.bin" * 100
    assert cache.get(f"s3://{bucket}/models/a.bin") == a and cache.downloads == 1
    cache.get(f"s3://{bucket}/models/b.bin")
    cache.get(f"s3://{bucket}/models/a.bin")  # a is now more recent than b
    cache.get(f"s3://{bucket}/models/c.bin")  # 1500 bytes > 1000: b goes
    assert f"s3://{bucket}/models/b.bin" not in cache
    assert f"s3://{bucket}/models/a.bin" in cache and cache.size() == 1000
    assert not (
        tmp_path / "cache" / "objects" / DiskCache.key_of(f"s3://{bucket}/models/b.bin")
    ).exists()


def _get_in_process(directory: str, uri: str, endpoint: str, out: multiprocessing.Queue) -> None:
    cache = DiskCache(
        directory, max_bytes=10_000, settings=StorageSettings(s3_endpoint_url=endpoint)
    )
    out.put((str(cache.get(uri)), cache.downloads))


def test_disk_cache_is_shared_by_processes(bucket_files, seaweedfs, tmp_path: Path) -> None:
    bucket, _ = bucket_files
    uri = f"s3://{bucket}/models/a.bin"
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    processes = [
        context.Process(target=_get_in_process, args=(str(tmp_path), uri, seaweedfs.endpoint, out))
        for _ in range(3)
    ]
    for process in processes:
        process.start()
    results = [out.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(30)
    assert len({path for path, _ in results}) == 1
    assert sum(downloads for _, downloads in results) == 1
    assert Path(results[0][0]).read_bytes() == b"a.bin" * 100


def test_model_cache_combines_both(bucket_files, tmp_path: Path) -> None:
    bucket, settings = bucket_files
    loads: list[Path] = []

    def load(path: Path) -> bytes:
        loads.append(path)
        return path.read_bytes()

    cache = ModelCache(load, max_models=1, disk=DiskCache(tmp_path, 10_000, settings))
    assert cache.get(f"s3://{bucket}/models/b.bin") == b"b.bin" * 100
    assert cache.get(f"s3://{bucket}/models/b.bin") == b"b.bin" * 100
    assert len(loads) == 1 and cache.disk is not None and cache.disk.downloads == 1


def test_transfer_folders_round_trip(seaweedfs, tmp_path: Path) -> None:
    bucket = seaweedfs.new_bucket()
    settings = StorageSettings(s3_endpoint_url=seaweedfs.endpoint)
    source = tmp_path / "weights"
    (source / "sub").mkdir(parents=True)
    (source / "config.json").write_text("{}")
    (source / "sub" / "unet.bin").write_bytes(b"u" * 5000)
    written = upload(source, f"s3://{bucket}/sdxl", settings=settings, progress=True)
    assert sorted(written) == [
        f"s3://{bucket}/sdxl/config.json",
        f"s3://{bucket}/sdxl/sub/unet.bin",
    ]
    back = download(f"s3://{bucket}/sdxl", tmp_path / "back", settings=settings)
    assert sorted(p.relative_to(tmp_path / "back").as_posix() for p in back) == [
        "config.json",
        "sub/unet.bin",
    ]
    single = download(f"s3://{bucket}/sdxl/sub/unet.bin", tmp_path / "one.bin", settings=settings)
    assert single[0].read_bytes() == b"u" * 5000


def test_transfer_with_gcs(fake_gcs, tmp_path: Path) -> None:
    bucket = fake_gcs.new_bucket()
    settings = StorageSettings(gcs_endpoint_url=fake_gcs.endpoint)
    path = tmp_path / "model.onnx"
    path.write_bytes(b"onnx" * 1000)
    assert upload(path, f"gs://{bucket}/m/", settings=settings) == [f"gs://{bucket}/m/model.onnx"]
    (local,) = download(f"gs://{bucket}/m/model.onnx", tmp_path / "x.onnx", settings=settings)
    assert local.read_bytes() == path.read_bytes()


def test_disk_cache_put_lookup_and_order_of_use(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "cache", max_bytes=25, settings=StorageSettings())
    for name in ("a", "b", "c"):
        source = tmp_path / name
        source.write_bytes(name.encode() * 10)
        assert cache.put(f"s3://bucket/{name}.bin", source).read_bytes() == name.encode() * 10
    # 30 bytes > 25: the least recently used ("a") went when "c" came in.
    assert [uri for uri, _ in cache.entries()] == ["s3://bucket/b.bin", "s3://bucket/c.bin"]
    assert cache.lookup("s3://bucket/a.bin") is None
    assert cache.lookup("s3://bucket/b.bin") is not None  # b is now the most recent
    assert [uri for uri, _ in cache.entries()] == ["s3://bucket/c.bin", "s3://bucket/b.bin"]
    cache.shrink(10)
    assert [uri for uri, _ in cache.entries()] == ["s3://bucket/b.bin"] and cache.size() == 10
    replacement = tmp_path / "b2"
    replacement.write_bytes(b"new")
    assert cache.put("s3://bucket/b.bin", replacement).read_bytes() == b"new"
    assert cache.size() == 3


def test_disk_cache_get_with_a_fetch_function(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "cache", max_bytes=1000, settings=StorageSettings())
    calls: list[Path] = []

    def fetch(target: Path) -> None:
        calls.append(target)
        target.write_bytes(b"weights")

    first = cache.get("hf://org/model/weights.bin", fetch=fetch)
    assert first.name == "weights.bin" and first.read_bytes() == b"weights"
    assert cache.get("hf://org/model/weights.bin", fetch=fetch) == first and len(calls) == 1

    def broken(target: Path) -> None:
        target.write_bytes(b"half")
        raise ConnectionError("dropped")

    with pytest.raises(ConnectionError):
        cache.get("hf://org/model/other.bin", fetch=broken)
    # Nothing half-written is left or recorded: the next get fetches again.
    assert "hf://org/model/other.bin" not in cache
    assert not [p for p in (tmp_path / "cache" / "objects").rglob("*") if "other" in p.name]
    assert cache.get("hf://org/model/other.bin", fetch=fetch).read_bytes() == b"weights"
