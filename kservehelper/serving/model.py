"""``KServeModel``: a user's plain model class, served as a real ``kserve.Model``.

The user's class has ``load()`` and ``predict(...)`` (and optionally ``generate(...)`` and
``after_predict(results)``). Each request is validated against the method's signature, the
method runs (sync methods in a thread, so the server keeps answering health checks), and the
result is encoded: a dict as is, any other value as ``{"output": value}``, files as URLs,
generators as streams. ``"running_time"`` is added to every non-stream response.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import os
import pathlib
import shutil
import tempfile
import time
import typing
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import kserve
import pydantic

from kservehelper.errors import InputError
from kservehelper.schema.signature import (
    ModelSignature,
    OutputKind,
    main_signature,
    model_schema,
    signatures_of,
)
from kservehelper.serving import outputs, streaming
from kservehelper.serving.inputs import fetch_file, needs_file
from kservehelper.settings import get_settings
from kservehelper.types import Path

logger = logging.getLogger("kserve.kservehelper")


@dataclass
class ModelStream:
    """A streaming result: batches of items as they are produced, a per-item transform
    (output files become URLs), and what to do when the stream ends."""

    batches: AsyncIterator[list[Any]]
    close: Callable[[], None]
    transform: Callable[[Any], Awaitable[Any]] | None = None


def _max_concurrency(value: int | None) -> int:
    if value is None:
        value = get_settings().max_concurrency
    if value < 1:
        raise ValueError(f"max_concurrency must be at least 1, got {value}")
    return value


class KServeModel(kserve.Model):
    """Serves a user model class on the KServe model server.

    Args:
        name: The model name: requests go to ``/v1/models/{name}:predict``.
        model_class: The user's class (``load()``, ``predict(...)``, optional ``generate``).
        max_concurrency: How many predictions may run at once; more requests queue. Default
            1 (``$KSERVEHELPER_MAX_CONCURRENCY``), which keeps single-GPU models safe.
        upload_to: Where output files go when a request has no ``upload_webhook``
            (``$KSERVEHELPER_UPLOAD_TO``). Unset: small files come back as ``data:`` URIs.
        **kwargs: Passed to ``model_class(...)``.
    """

    def __init__(
        self,
        name: str,
        model_class: type,
        *,
        max_concurrency: int | None = None,
        upload_to: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name)
        self.ready: bool = False
        self.model_class = model_class
        self.signatures = signatures_of(model_class)
        self.max_concurrency = _max_concurrency(max_concurrency)
        self.upload_to = upload_to or get_settings().upload_to
        self.model_kwargs = kwargs
        self.model = model_class(**kwargs)
        #: Set by ``kservehelper predict``: output files are moved here instead of delivered,
        #: and file inputs may be local paths.
        self.local_output_dir: pathlib.Path | None = None
        self._limiter: asyncio.Semaphore | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        # A multi-process server (workers > 1) pickles the model into each spawned worker.
        # The user's instance is not sent (loaded weights may not pickle, and each process
        # needs its own copy): every worker makes and loads its own in __setstate__.
        # Signatures hold pydantic models made at run time, which do not pickle either.
        state = self.__dict__.copy()
        state.update(model=None, ready=False, _limiter=None, signatures=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.signatures = signatures_of(self.model_class)
        self.model = self.model_class(**self.model_kwargs)
        self.load()
        # The worker imports KServe's app afresh: give it kservehelper's routes before KServe
        # adds its own (KServe builds the worker's routes right after unpickling).
        from kservehelper.serving.http import install_routes
        from kservehelper.serving.kserve_compat import kserve_app

        install_routes(kserve_app(), {self.name: self})

    def load(self) -> bool:
        """Call the user's ``load()`` once; the server reports ready only after it returns."""
        if not self.ready:
            user_load = getattr(self.model, "load", None)
            if callable(user_load):
                user_load()
            self.ready = True
        return bool(self.ready)

    @property
    def limiter(self) -> asyncio.Semaphore:
        if self._limiter is None:
            self._limiter = asyncio.Semaphore(self.max_concurrency)
        return self._limiter

    # -- KServe entry points ---------------------------------------------------------------

    async def predict(
        self,
        payload: Any,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | ModelStream:
        return await self.run("predict", payload)

    async def generate(
        self, payload: Any, headers: dict[str, str] | None = None
    ) -> dict[str, Any] | ModelStream:
        return await self.run("generate", payload)

    def schema(self) -> dict[str, Any]:
        """The model's inputs (JSON Schema) and outputs, per served method."""
        return model_schema(self.name, self.signatures)

    def docs(self) -> dict[str, Any]:
        """The input descriptions (the original project's ``/v1/docs/{name}``)."""
        return main_signature(self.signatures).docs()

    # -- one request -----------------------------------------------------------------------

    async def run(self, method: str, payload: Any) -> dict[str, Any] | ModelStream:
        """Validate ``payload``, call the user's method, encode its result."""
        started = time.perf_counter()
        signature = self.signatures.get(method)
        if signature is None:
            raise InputError(
                f"this model has no {method}() method; use "
                + " or ".join(f":{m}" for m in self.signatures)
            )
        destination = self._destination_of(require_json_object(payload, signature), signature)
        kwargs = signature.validate(payload)
        generated = outputs.track_outputs()  # removed at the end, whatever happens
        workdir = await self._materialize_files(signature, kwargs)
        limiter = self.limiter
        await limiter.acquire()
        handed_over = False
        try:
            result = await self._call(method, **kwargs)
            if streaming.is_stream(result):
                handed_over = True
                return self._stream(result, destination, limiter, workdir, generated)
        except BaseException:
            outputs.remove_files(generated)
            raise
        finally:
            if not handed_over:
                limiter.release()
                _remove_dir(workdir)
        try:
            response = await self._encode(signature, result, destination)
        finally:
            outputs.remove_files(generated)
        response = await self._after_predict(response)
        response["running_time"] = f"{time.perf_counter() - started:.6f}s"
        return response

    def _destination_of(self, payload: dict[str, Any], signature: ModelSignature) -> str | None:
        """Where this request's output files go: its ``upload_webhook``, else the server's
        default. Checked before the model runs, so a bad destination costs no prediction; not
        checked when the method cannot return files (2.0's clients send ``upload_webhook``
        to every model, ``"http://localhost"`` to those returning a dict too)."""
        requested = payload.get("upload_webhook")
        if requested is not None and not isinstance(requested, str):
            raise _webhook_error("must be a URL string", "string_type")
        if not may_return_files(self.model_class, signature.method, signature.output_kind):
            return None
        if requested and outputs.is_local_destination(requested):
            # A client must not make the server write files into its own folders; a local
            # folder is the server operator's choice (upload_to).
            raise _webhook_error(
                "a local folder is not accepted from a request; send an http(s) webhook URL, "
                "s3://bucket/prefix or gs://bucket/prefix",
                "local_destination_refused",
            )
        destination = requested or self.upload_to
        if destination is not None:
            outputs.check_destination(destination)
        return destination

    async def _after_predict(self, response: dict[str, Any]) -> dict[str, Any]:
        """The user's optional ``after_predict(results)`` hook (seed API)."""
        after = getattr(self.model, "after_predict", None)
        if not callable(after):
            return response
        result = await after(response) if inspect.iscoroutinefunction(after) else after(response)
        if not isinstance(result, dict):
            raise TypeError(f"after_predict() must return a dict, returned {type(result).__name__}")
        return result

    async def _materialize_files(
        self, signature: ModelSignature, kwargs: dict[str, Any]
    ) -> pathlib.Path | None:
        file_fields = [f for f in signature.fields.values() if needs_file(f, kwargs[f.name])]
        if not file_fields:
            return None
        allow_local = self.local_output_dir is not None
        workdir = pathlib.Path(tempfile.mkdtemp(prefix="kservehelper-inputs-"))
        try:
            for fld in file_fields:
                value = kwargs[fld.name]
                if fld.is_list:
                    kwargs[fld.name] = [
                        await fetch_file(f"{fld.name}.{i}", v, workdir / str(i), allow_local)
                        for i, v in enumerate(value)
                    ]
                else:
                    kwargs[fld.name] = await fetch_file(fld.name, value, workdir, allow_local)
        except BaseException:
            _remove_dir(workdir)
            raise
        return workdir

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call a method of the user's model: async ones on the event loop, sync ones in a
        worker thread (so the server keeps answering while they work)."""
        function = getattr(self.model, method)
        if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
            result = function(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result
        loop = asyncio.get_running_loop()
        # copy_context: generate_filepath records the request's files (outputs.track_outputs)
        call = functools.partial(function, *args, **kwargs)
        return await loop.run_in_executor(None, contextvars.copy_context().run, call)

    def _stream(
        self,
        result: Any,
        destination: str | None,
        limiter: asyncio.Semaphore,
        workdir: pathlib.Path | None,
        generated: list[pathlib.Path],
    ) -> ModelStream:
        def close() -> None:
            limiter.release()
            _remove_dir(workdir)
            outputs.remove_files(generated)  # files the generator made but never yielded

        async def deliver_item(item: Any) -> Any:
            if isinstance(item, os.PathLike):
                paths = outputs.check_output_paths([item], "stream")
                return (await self._deliver(paths, destination))[0]
            return item

        batches = streaming.iterate_batches(streaming.as_stream(result))
        return ModelStream(batches=batches, close=close, transform=deliver_item)

    async def _encode(
        self, signature: ModelSignature, result: Any, destination: str | None
    ) -> dict[str, Any]:
        kind = signature.output_kind
        if kind is OutputKind.VALUE:
            # Unannotated methods returning files are served as files, like annotated ones.
            if isinstance(result, os.PathLike):
                kind = OutputKind.FILE
            elif (
                isinstance(result, (list, tuple))
                and result
                and all(isinstance(r, os.PathLike) for r in result)
            ):
                kind = OutputKind.FILES
        if kind in (OutputKind.FILE, OutputKind.FILES):
            items = [result] if kind is OutputKind.FILE else result
            if not isinstance(items, (list, tuple)):
                raise TypeError(
                    f"{signature.method}() is annotated to return a list of files "
                    f"but returned {type(result).__name__}"
                )
            paths = outputs.check_output_paths(items, signature.method)
            return {"output": await self._deliver(paths, destination)}
        if isinstance(result, dict):
            return dict(result)
        if isinstance(result, pydantic.BaseModel):
            return {"output": result.model_dump(mode="json")}
        return {"output": result}

    async def _deliver(self, paths: list[pathlib.Path], destination: str | None) -> list[str]:
        if self.local_output_dir is not None:
            return [str(p) for p in outputs.move_to_folder(paths, self.local_output_dir)]
        try:
            return await outputs.deliver_files(paths, destination)
        finally:
            outputs.remove_files(paths)

    # -- seed API --------------------------------------------------------------------------

    @staticmethod
    def generate_filepath(filename: str) -> Path:
        """A unique path for an output file (see :func:`outputs.generate_filepath`)."""
        return outputs.generate_filepath(filename)

    @staticmethod
    def wrap_generator(source: Any) -> streaming.StreamOutput:
        """Stream the items of ``source`` (a generator function or a generator)."""
        return streaming.wrap_generator(source)

    @staticmethod
    def serve(
        name: str,
        model_class: type,
        num_replicas: int | None = None,
        *,
        max_concurrency: int | None = None,
        upload_to: str | None = None,
        workers: int | None = None,
        http_port: int | None = None,
        host: str | None = None,
        enable_grpc: bool | None = None,
        predictor_host: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Load ``model_class`` and serve it as ``name`` on the KServe model server.

        Args:
            num_replicas: Copies of the model on Ray Serve behind this one server, each its
                own process (``pip install "kservehelper[ray]"``; see docs/scaling.md).
                Default 1: no Ray.
            max_concurrency: Predictions running at once (default 1); more requests queue.
            upload_to: Default destination of output files (a webhook URL, s3://, gs://).
            workers: Processes serving requests (KServe's multi-process server), each with its
                own copy of the model: for CPU-bound models. Default 1.
            http_port: The HTTP port (default 8080).
            host: The address to listen on (``$KSERVEHELPER_HOST``; default: all interfaces,
                as in a container). ``"127.0.0.1"`` keeps a development server private.
            enable_grpc: Whether KServe also starts its gRPC server.
            predictor_host: For a transformer (a class with preprocess/postprocess): the
                ``host:port`` of the predictor it forwards to.
            **kwargs: Passed to ``model_class(...)``.

        KServe's own command-line flags keep working (``python model.py --http_port 9000
        --workers 2 --predictor_host ...``); arguments given here win over them. A problem
        found before serving starts (a port already taken, a bad setting, a model class that
        cannot be served) exits with one ``error:`` line (``SystemExit``).
        """
        from kservehelper.errors import KServeHelperError
        from kservehelper.serving.server import start_model_server

        try:
            start_model_server(
                name,
                model_class,
                max_concurrency=max_concurrency,
                upload_to=upload_to,
                workers=workers,
                http_port=http_port,
                host=host,
                enable_grpc=enable_grpc,
                predictor_host=predictor_host,
                model_kwargs=kwargs,
                num_replicas=num_replicas,
            )
        except KServeHelperError as exc:
            # `python model.py`: a start-up problem (a port taken, a bad setting) is one line.
            raise SystemExit(f"error: {exc}") from None


@functools.lru_cache(maxsize=64)
def may_return_files(model_class: type, method: str, kind: OutputKind) -> bool:
    """Whether a method's result can hold output files: a file, files or stream output, or no
    return annotation to say otherwise (a transformer's is its ``postprocess``'s)."""
    if kind is not OutputKind.VALUE:
        return True
    name = "postprocess" if method == "preprocess" else method
    try:
        return "return" not in typing.get_type_hints(getattr(model_class, name))
    except Exception:  # an unresolvable annotation: assume it may
        return True


def require_json_object(payload: Any, signature: ModelSignature) -> dict[str, Any]:
    """The request body, which must be a JSON object of named inputs (else HTTP 400)."""
    if not isinstance(payload, dict):
        example = next(iter(signature.fields), "input")
        raise InputError(
            f'the request body must be a JSON object of named inputs, e.g. {{"{example}": ...}}',
            [{"loc": [], "msg": "expected a JSON object", "type": "model_type"}],
        )
    return payload


def _webhook_error(message: str, kind: str) -> InputError:
    return InputError(
        f"invalid input 'upload_webhook': {message}",
        [{"loc": ["upload_webhook"], "msg": message, "type": kind}],
    )


def _remove_dir(path: pathlib.Path | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
