"""The bundled upload server: the other half of the webhook protocol, so nobody has to write one.

``kservehelper upload-server --dest s3://bucket/prefix`` (or ``gs://...`` or a local folder)
answers the three protocols the model runtime speaks and stores each file in the destination:

* ``POST /upload``: multipart field ``file`` → ``{"url": ...}``
* ``POST /upload_batch``: fields ``file_0`` ... with header ``NUM_FILES`` → ``{"urls": [...]}``
* ``PUT /{filename}``: the body is the file → ``201``, ``Location`` header and ``{"url": ...}``

URLs are presigned / signed object-store URLs (or plain URIs, per ``KSERVEHELPER_OBJECT_URLS``);
with a local folder the server itself serves the files under ``/files/``. An optional bearer
token guards the upload routes (not the downloads), and request bodies have a size limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile

from kservehelper.errors import UploadError
from kservehelper.storage.base import Destination, StorageSettings, redact
from kservehelper.storage.local import LocalDestination
from kservehelper.storage.registry import resolve

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 2 * 1024**3
UPLOAD_PATHS = ("/upload", "/upload_batch")


class BadUpload(Exception):
    """A request the server refuses, with its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def safe_filename(name: str | None) -> str:
    """The last path component of a client-supplied name; never empty, ``.`` or ``..``."""
    base = PurePosixPath((name or "").replace("\\", "/")).name.strip()
    return base if base not in ("", ".", "..") else "file"


class UploadStore:
    """Stores uploaded files in the destination and returns their URLs."""

    def __init__(self, dest: str, settings: StorageSettings | None = None) -> None:
        settings = settings or StorageSettings.from_env()
        if "://" not in dest:  # a folder, possibly relative to where the server starts
            dest = str(Path(dest).resolve())
        # --dest is this server's operator's choice: trusted, not a request's destination.
        self.destination: Destination = resolve(dest, settings, field_name="dest", trusted=True)
        self.spool = Path(tempfile.mkdtemp(prefix="kservehelper-upload-server-"))

    @property
    def local_folder(self) -> Path | None:
        """The folder files land in when the destination is local, else ``None``."""
        if isinstance(self.destination, LocalDestination):
            return self.destination.folder
        return None

    async def store(self, source: Path, base_url: str) -> str:
        """Deliver a spooled file; returns its URL. The spooled file is removed."""
        try:
            local = self.local_folder
            if isinstance(self.destination, LocalDestination) and local is not None:
                target = await asyncio.to_thread(self.destination.store, source, move=True)
                relative = target.relative_to(local).as_posix()
                return f"{base_url.rstrip('/')}/files/{quote(relative)}"
            return await self.destination.upload_file(source)
        finally:
            shutil.rmtree(source.parent, ignore_errors=True)

    def spool_path(self, filename: str) -> Path:
        """A fresh temporary path named ``filename`` (its folder is unique)."""
        folder = self.spool / uuid.uuid4().hex
        folder.mkdir(parents=True)
        return folder / safe_filename(filename)

    async def spool_upload(self, upload: UploadFile) -> Path:
        """Copy a parsed multipart file to a real path the destinations can read."""
        path = self.spool_path(upload.filename or "file")

        def copy() -> None:
            upload.file.seek(0)
            with path.open("wb") as target:
                shutil.copyfileobj(upload.file, target, 1024 * 1024)

        await asyncio.to_thread(copy)
        return path

    async def close(self) -> None:
        await self.destination.aclose()
        shutil.rmtree(self.spool, ignore_errors=True)


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(
    dest: str,
    *,
    token: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    public_url: str | None = None,
    settings: StorageSettings | None = None,
) -> FastAPI:
    """The upload server as an ASGI app (``kservehelper upload-server`` runs it with uvicorn).

    Args:
        dest: ``s3://bucket/prefix``, ``gs://bucket/prefix`` or a local folder.
        token: If set, upload requests must send ``Authorization: Bearer <token>``.
        max_bytes: Largest request body accepted (413 past it).
        public_url: Base URL clients reach this server at, for the URLs of files in a local
            folder; defaults to the URL the request came in on.
        settings: Retries, URL expiry, ... for the destination; default from the environment.
    """
    store = UploadStore(dest, settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await store.close()

    app = FastAPI(
        title="kservehelper upload server", docs_url=None, redoc_url=None, lifespan=lifespan
    )
    app.state.store = store
    if store.local_folder is not None:
        store.local_folder.mkdir(parents=True, exist_ok=True)
        app.mount("/files", StaticFiles(directory=store.local_folder), name="files")

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        """Authentication and the body size limit, before any body is read."""
        if request.method in ("POST", "PUT"):
            if token:
                sent = request.headers.get("authorization", "")
                if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
                    return error_response(401, "missing or wrong bearer token")
            length = request.headers.get("content-length")
            if length is None:
                return error_response(411, "Content-Length is required")
            if not length.isdigit():
                return error_response(400, "Content-Length must be a number of bytes")
            if int(length) > max_bytes:
                return error_response(413, f"request body is larger than {max_bytes} bytes")
        return await call_next(request)

    @app.exception_handler(BadUpload)
    async def bad_upload(_: Request, error: BadUpload) -> JSONResponse:
        return error_response(error.status, str(error))

    @app.exception_handler(UploadError)
    async def upload_failed(_: Request, error: UploadError) -> JSONResponse:
        logger.warning("%s", error)
        return error_response(502, str(error))

    def base_url(request: Request) -> str:
        return public_url or str(request.base_url)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "dest": redact(dest)}

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, str]:
        async with request.form(max_files=1, max_fields=10) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise BadUpload(400, "expected a multipart/form-data body with a 'file' field")
            spooled = await store.spool_upload(upload)
        return {"url": await store.store(spooled, base_url(request))}

    @app.post("/upload_batch")
    async def upload_batch(request: Request) -> dict[str, list[str]]:
        raw = request.headers.get("num_files", "")
        if not raw.isdigit() or int(raw) < 1:
            raise BadUpload(400, "header NUM_FILES must be the number of files (1 or more)")
        count = int(raw)
        async with request.form(max_files=count, max_fields=count + 10) as form:
            spooled = []
            try:
                for index in range(count):
                    upload = form.get(f"file_{index}")
                    if not isinstance(upload, UploadFile):
                        raise BadUpload(
                            400, f"NUM_FILES is {count} but field 'file_{index}' is missing"
                        )
                    spooled.append(await store.spool_upload(upload))
            except BaseException:
                for path in spooled:
                    shutil.rmtree(path.parent, ignore_errors=True)
                raise
        urls = await asyncio.gather(*(store.store(path, base_url(request)) for path in spooled))
        return {"urls": list(urls)}

    @app.put("/{name:path}")
    async def put(name: str, request: Request) -> JSONResponse:
        path = store.spool_path(name)
        try:
            with path.open("wb") as target:
                async for chunk in request.stream():
                    target.write(chunk)
        except BaseException:
            shutil.rmtree(path.parent, ignore_errors=True)
            raise
        url = await store.store(path, base_url(request))
        return JSONResponse({"url": url}, status_code=201, headers={"Location": url})

    return app


def admitting_settings(host: str, port: int, public_url: str | None, token: bool) -> list[str]:
    """The model-server settings that let requests send files to this server: model servers
    refuse private addresses (and send the upload token to no one) unless told."""
    if public_url:
        parts = urlsplit(public_url)
        origin = f"{parts.scheme}://{parts.netloc}"
    else:
        shown = "HOST" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
        origin = f"http://{shown}:{port}"
    lines = [f"KSERVEHELPER_ALLOWED_DESTINATIONS={origin}"]
    if token:
        lines.append(f"KSERVEHELPER_UPLOAD_TOKEN_ORIGINS={origin}")
    return lines


def run_upload_server(
    dest: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    public_url: str | None = None,
) -> None:
    """Serve :func:`create_app` with uvicorn until interrupted."""
    import uvicorn

    app = create_app(dest, token=token, max_bytes=max_bytes, public_url=public_url)
    settings = admitting_settings(host, port, public_url, token is not None)
    print(
        "Model servers admit this server as a request's upload_webhook with:\n  "
        + "\n  ".join(settings)
        + ("\n(HOST: the address model servers reach this machine at)" if "HOST" in settings[0]
           else ""),
        flush=True,
    )  # fmt: skip
    uvicorn.run(app, host=host, port=port, log_level="info")
