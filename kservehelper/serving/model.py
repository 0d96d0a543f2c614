"""``KServeModel``: a user's plain model class, served as a real ``kserve.Model``.

The user's class has ``load()`` and ``predict(...)`` (and optionally ``generate(...)`` and
``after_predict(results)``). ``KServeModel`` is KServe's side of it (the hooks KServe calls,
readiness, the seed API); each request goes through the model's
:class:`~kservehelper.serving.pipeline.Pipeline`: validated against the method's signature,
queued for a slot, run (sync methods in a thread, so the server keeps answering health
checks), and encoded: a dict as is, any other value as ``{"output": value}``, files as URLs,
generators as streams. ``"running_time"`` is added to every non-stream response.
"""

from __future__ import annotations

import gc
import pathlib
from typing import Any

import kserve

from kservehelper.schema.signature import main_signature, model_schema, signatures_of
from kservehelper.serving import cancellation, outputs, streaming
from kservehelper.serving.pipeline import Pipeline
from kservehelper.serving.streaming import ModelStream
from kservehelper.settings import get_settings
from kservehelper.types import Path

__all__ = ["KServeModel", "ModelStream"]


def _setting(value: int | None, name: str, minimum: int) -> int:
    if value is None:
        value = int(getattr(get_settings(), name))
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def freeze_heap_after_load() -> None:
    """Leave the objects alive once the model is loaded out of every later garbage collection.

    A serving process holds over a hundred thousand long-lived objects (KServe, pandas, the
    Kubernetes client, the model), and each full collection walks all of them while the event
    loop waits: ~80 ms every few thousand requests (~15 µs a request on average; see
    docs/benchmarks.md). ``gc.freeze()`` moves them to a generation the collector skips; the
    requests' own garbage is collected as before. The cost: a frozen object that later becomes
    part of a garbage cycle is never reclaimed (at most what existed at start-up).
    """
    gc.freeze()


class KServeModel(kserve.Model):
    """Serves a user model class on the KServe model server.

    Args:
        name: The model name: requests go to ``/v1/models/{name}:predict``.
        model_class: The user's class (``load()``, ``predict(...)``, optional ``generate``).
        max_concurrency: How many predictions may run at once; more requests queue. Default
            1 (``$KSERVEHELPER_MAX_CONCURRENCY``), which keeps single-GPU models safe.
        max_queue: How many requests may wait for a slot; more are answered 503 at once,
            with ``Retry-After``. Default 64 (``$KSERVEHELPER_MAX_QUEUE``); 0 never queues.
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
        max_queue: int | None = None,
        upload_to: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name)
        self.ready: bool = False
        self.model_class = model_class
        self.signatures = signatures_of(model_class)
        self.max_concurrency = _setting(max_concurrency, "max_concurrency", 1)
        self.max_queue = _setting(max_queue, "max_queue", 0)
        self.upload_to = upload_to or get_settings().upload_to
        self.model_kwargs = kwargs
        self.model = model_class(**kwargs)
        #: Set by ``kservehelper predict``: output files are moved here instead of delivered,
        #: and file inputs may be local paths.
        self.local_output_dir: pathlib.Path | None = None
        self.pipeline = Pipeline(self, self.max_concurrency, self.max_queue)

    # -- lifecycle -------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        # A multi-process server (workers > 1) pickles the model into each spawned worker.
        # The user's instance is not sent (loaded weights may not pickle, and each process
        # needs its own copy): every worker makes and loads its own in __setstate__.
        # Signatures hold pydantic models made at run time, which do not pickle either; the
        # pipeline (queue, slots) is per process.
        state = self.__dict__.copy()
        state.update(model=None, ready=False, signatures=None, pipeline=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.signatures = signatures_of(self.model_class)
        self.model = self.model_class(**self.model_kwargs)
        self.pipeline = Pipeline(self, self.max_concurrency, self.max_queue)
        # Not load(): KServe's parent kills a worker that does not answer its ping within 5 s,
        # and the worker answers only once unpickled. It loads once serving (not ready until).
        from kservehelper.serving.worker_load import load_when_serving

        load_when_serving(self)
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

    async def healthy(self) -> bool:
        """Readiness (KServe's ``/v1/models/{name}``): loaded, and not shutting down."""
        return self.ready and not self.pipeline.draining

    # -- KServe entry points ---------------------------------------------------------------

    async def predict(
        self,
        payload: Any,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | ModelStream:
        return await self.pipeline.run("predict", payload)

    async def generate(
        self, payload: Any, headers: dict[str, str] | None = None
    ) -> dict[str, Any] | ModelStream:
        return await self.pipeline.run("generate", payload)

    async def run(self, method: str, payload: Any) -> dict[str, Any] | ModelStream:
        """Serve one request to ``method`` (``predict`` or ``generate``)."""
        return await self.pipeline.run(method, payload)

    def schema(self) -> dict[str, Any]:
        """The model's inputs (JSON Schema) and outputs, per served method."""
        return model_schema(self.name, self.signatures)

    def docs(self) -> dict[str, Any]:
        """The input descriptions (the original project's ``/v1/docs/{name}``)."""
        return main_signature(self.signatures).docs()

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
    def cancelled() -> bool:
        """Whether the request being served was abandoned: its client disconnected, or the
        server's shutdown grace period ran out.

        A sync ``predict`` cannot be interrupted from outside; a long one can check this
        between steps and return early (its result is discarded anyway)::

            for step in range(steps):
                if KServeModel.cancelled():
                    return None
                ...

        ``async`` methods are cancelled outright (``asyncio.CancelledError`` at their
        current ``await``) and stream generators are closed after the item they are
        producing, so they need not check. Outside a request it is always ``False``.
        """
        return cancellation.is_cancelled()

    @staticmethod
    def serve(
        name: str,
        model_class: type,
        num_replicas: int | None = None,
        *,
        max_concurrency: int | None = None,
        max_queue: int | None = None,
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
            max_queue: Requests that may wait for a slot (default 64); more are answered
                503 with ``Retry-After``.
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
                max_queue=max_queue,
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
