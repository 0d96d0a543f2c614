"""One request through a served model: admit → validate → slot → fetch → run → deliver → clean up.

A :class:`Request` owns everything the request takes: its place in the admission queue, its
slot, its working folder (input files) and the output files the model makes. They are
registered on an exit stack (:class:`Resources`) as they are taken and released when the
request ends, however it ends (answered, failed, client gone, server shutting down). A stream
takes the stack over (``pop_all``) and releases it when the stream is closed, after its
generator has stopped. While the model's sync code is still running in a thread (it cannot be
stopped), the slot and the files are released only when it returns.

``KServeModel``, the transformer and ``kservehelper predict`` all run requests through a
:class:`Pipeline`. A sync method with no input to download queues its call itself
(:mod:`~kservehelper.serving.sync_calls`: the thread that frees a slot runs the next call);
every other request waits for its slot here, then calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import os
import pathlib
import shutil
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from kservehelper.errors import (
    ClientDisconnected,
    DeadlineExceeded,
    InputError,
    KServeHelperError,
    ShuttingDown,
)
from kservehelper.schema.signature import ModelSignature
from kservehelper.serving import outputs, shutdown, streaming, workdirs
from kservehelper.serving.admission import Admission, count_abandoned
from kservehelper.serving.batching import Batcher, batch_settings, result_paths
from kservehelper.serving.cancellation import Cancellation, current_client
from kservehelper.serving.inputs import fetch_file, needs_file
from kservehelper.serving.request_checks import (
    destination_of,
    is_sync_method,
    may_return_files,
    require_json_object,
    webhook_error,
)
from kservehelper.serving.resources import Resources
from kservehelper.serving.sync_calls import SyncCall
from kservehelper.serving.threads import user_code_threads
from kservehelper.settings import env_name, get_settings


class ServedModel(Protocol):
    """What the pipeline needs from the model it serves (``KServeModel``)."""

    name: str
    model: Any
    model_class: type
    signatures: dict[str, ModelSignature]
    upload_to: str | None
    local_output_dir: pathlib.Path | None
    ready: bool

    def load(self) -> bool: ...


class Pipeline:
    """The requests of one served model: admission, slots, and what is still running."""

    def __init__(self, served: ServedModel, max_concurrency: int, max_queue: int) -> None:
        self.served = served
        self.admission = Admission(served.name, max_concurrency, max_queue)
        self.open: set[Request] = set()
        self._may_return_files = {
            method: may_return_files(served.model_class, signature)
            for method, signature in served.signatures.items()
        }
        self._file_inputs = {
            method: tuple(f.name for f in signature.fields.values() if f.is_file)
            for method, signature in served.signatures.items()
        }
        #: Methods served in batches (``@batch``), each with its batcher.
        self.batchers: dict[str, Batcher] = {}
        for method in served.signatures:
            settings = batch_settings(served.model, method)
            if settings is not None:
                self.batchers[method] = Batcher(
                    served.model, served.name, method, self.admission, settings
                )
        #: Methods whose calls queue as they are (sync; see sync_calls).
        self._queued_calls = {
            method for method in served.signatures if is_sync_method(served.model, method)
        }
        shutdown.register(self)

    @property
    def draining(self) -> bool:
        """Whether the server is shutting down (no new requests)."""
        return self.admission.closed

    def signature(self, method: str) -> ModelSignature:
        found = self.served.signatures.get(method)
        if found is None:
            raise InputError(
                f"this model has no {method}() method; use "
                + " or ".join(f":{m}" for m in self.served.signatures)
            )
        return found

    def request(self, signature: ModelSignature) -> Request:
        """A new request on ``signature``'s method: ``async with pipeline.request(sig) as r``."""
        if not self.served.ready:  # used directly, not through the server: load on first use
            self.served.load()
        method = signature.method
        file_inputs = self._file_inputs.get(method)
        if file_inputs is None:
            file_inputs = tuple(f.name for f in signature.fields.values() if f.is_file)
        return Request(self, signature, self._may_return_files.get(method, True), file_inputs)

    async def run(self, method: str, payload: Any) -> dict[str, Any] | streaming.ModelStream:
        """Serve one request to ``method``: the answer, or a stream the caller must close."""
        started = time.perf_counter()
        batcher = self.batchers.get(method)
        if batcher is not None:
            return await self._run_batched(batcher, method, payload, started)
        async with self.request(self.signature(method)) as request:
            kwargs = request.validate(payload)
            if method in self._queued_calls and not request.files_to_fetch(kwargs):
                result = await request.call_queued(method, **kwargs)
            else:
                await request.take_slot()
                await request.fetch_inputs(kwargs)
                result = await request.call(method, **kwargs)
            if streaming.is_stream(result):
                return request.stream(result)
            request.release_slot()
            response = await request.respond(result)
        response["running_time"] = f"{time.perf_counter() - started:.6f}s"
        return response

    async def _run_batched(
        self, batcher: Batcher, method: str, payload: Any, started: float
    ) -> dict[str, Any] | streaming.ModelStream:
        """Serve one request to a batched method: validated and its files downloaded on its
        own, then run in a batch (serving.batching), then answered on its own."""
        async with self.request(self.signature(method)) as request:
            batcher.expect()
            try:
                kwargs = request.validate(payload)
                await request.fetch_inputs(kwargs)
            except BaseException:
                batcher.unexpect()
                raise
            result = await request.join_batch(batcher, kwargs)
            if streaming.is_stream(result):
                return request.stream(result)
            response = await request.respond(result)
        response["running_time"] = f"{time.perf_counter() - started:.6f}s"
        return response

    # -- shutdown (serving.shutdown.Drainable) ---------------------------------------------

    def open_requests(self) -> int:
        return len(self.open)

    def stop_admitting(self) -> None:
        self.admission.close()

    def cancel_all(self, reason: KServeHelperError) -> None:
        """Cancel every open request (shutdown grace over)."""
        for request in list(self.open):
            request.cancellation.cancel(reason)


class Request:
    """One request's state and the resources it holds (see the module docstring)."""

    def __init__(
        self,
        pipeline: Pipeline,
        signature: ModelSignature,
        files_possible: bool,
        file_inputs: tuple[str, ...],
    ) -> None:
        self.pipeline = pipeline
        self.file_inputs = file_inputs
        self.served = pipeline.served
        self.signature = signature
        self.files_possible = files_possible
        self.cancellation = Cancellation()
        self.stage = "admitted"
        self.destination: str | None = None
        self._body: dict[str, Any] = {}
        self._stack = Resources()
        self._slot_since: float | None = None
        self._user_code: asyncio.Future[Any] | None = None
        self._queued_call: SyncCall | None = None
        self._files: list[pathlib.Path] = []

    async def __aenter__(self) -> Request:
        self.pipeline.admission.admit()  # 503 at once when full or shutting down
        self.pipeline.open.add(self)
        self._stack.callback(self._finished)
        self.cancellation.activate()
        self.cancellation.on_cancel(self._count_abandoned)
        receive = current_client()
        if receive is not None:
            self.cancellation.watch_client(receive)
        self._files = outputs.track_outputs()
        self._stack.callback(self.after_user_code, outputs.remove_files, self._files)
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self._stack.close()

    def _finished(self) -> None:
        self.cancellation.finish()
        self.pipeline.open.discard(self)

    def _count_abandoned(self, reason: KServeHelperError) -> None:
        stage = self.stage
        if stage == "queued" and self._queued_call is not None and self._queued_call.started_at:
            stage = "running"  # a thread took the call
        count_abandoned(self.served.name, stage, type(reason).__name__)

    def after_user_code(self, function: Callable[..., Any], *args: Any) -> None:
        """Call ``function(*args)`` now, or when the model's code running for this request
        in a thread returns (its slot and files are in use until then)."""
        running = self._user_code
        if running is not None and not running.done():
            running.add_done_callback(lambda _: function(*args))
        else:
            function(*args)

    # -- stages ----------------------------------------------------------------------------

    def validate(self, payload: Any) -> dict[str, Any]:
        """The method's keyword arguments from the request body (HTTP 400 if invalid)."""
        self.stage = "validating"
        body = require_json_object(payload, self.signature)
        self._body = body
        requested = body.get("upload_webhook")
        if requested is not None and not isinstance(requested, str):
            raise webhook_error("must be a URL string", "string_type")
        if self.files_possible:
            # Checked before the model runs, so a bad destination costs no prediction.
            self.destination = destination_of(body, self.served.upload_to)
        return self.signature.validate(body)

    async def take_slot(self) -> None:
        """Wait for a slot to run the model's code (cancelled if the client leaves)."""
        self.stage = "queued"
        async with self.cancellation.section():
            await self.pipeline.admission.acquire()
        self._slot_since = time.perf_counter()
        self._stack.callback(self.after_user_code, self.release_slot)

    def release_slot(self) -> None:
        """Give the slot back (also done when the request ends); does nothing if not held."""
        if self._slot_since is not None:
            held, self._slot_since = time.perf_counter() - self._slot_since, None
            self.pipeline.admission.release(held)
        queued = self._queued_call
        if queued is not None and queued.holds_slot and queued.future.done():
            queued.holds_slot = False  # a stream's slot, kept after its call returned
            self.pipeline.admission.release(time.perf_counter() - queued.started_at)

    def files_to_fetch(self, kwargs: dict[str, Any]) -> bool:
        """Whether the request has input files to download before the model runs."""
        fields = self.signature.fields
        return any(needs_file(fields[name], kwargs[name]) for name in self.file_inputs)

    async def fetch_inputs(self, kwargs: dict[str, Any]) -> None:
        """Replace file inputs (URLs, data: URIs) in ``kwargs`` by local files, into this
        request's working folder (removed when the request ends)."""
        fields = [
            field
            for field in (self.signature.fields[name] for name in self.file_inputs)
            if needs_file(field, kwargs[field.name])
        ]
        if not fields:
            return
        self.stage = "fetching"
        folder = workdirs.request_folder()
        self._stack.callback(
            self.after_user_code, functools.partial(shutil.rmtree, folder, ignore_errors=True)
        )
        allow_local = self.served.local_output_dir is not None
        async with self.cancellation.section():
            for fld in fields:
                value = kwargs[fld.name]
                if fld.is_list:
                    kwargs[fld.name] = [
                        await fetch_file(f"{fld.name}.{i}", v, folder / str(i), allow_local)
                        for i, v in enumerate(value)
                    ]
                else:
                    kwargs[fld.name] = await fetch_file(fld.name, value, folder, allow_local)

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call the model's ``method``: async ones on the event loop (cancelled when the
        request is), sync ones in a thread (``KServeModel.cancelled()`` turns true, and the
        result is discarded)."""
        self.stage = "running"
        function = getattr(self.served.model, method)
        if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
            async with self.cancellation.section():
                result = function(*args, **kwargs)
                return await result if inspect.isawaitable(result) else result
        running = user_code_threads().submit(function, *args, **kwargs)
        self._user_code = running
        try:
            async with self.cancellation.section():
                return await asyncio.shield(running)
        finally:
            if running.done():
                self._user_code = None

    async def call_queued(self, method: str, **kwargs: Any) -> Any:
        """Call the model's sync ``method``, the call itself waiting in the admission queue
        (see :mod:`~kservehelper.serving.sync_calls`). Abandoned while queued, it never
        runs; while running, ``KServeModel.cancelled()`` turns true and the result is
        discarded."""
        self.stage = "queued"
        function = getattr(self.served.model, method)
        queued = SyncCall(self.pipeline.admission, self.cancellation, function, (), kwargs)
        self._queued_call = queued
        self._user_code = queued.future
        self._stack.callback(self.after_user_code, self.release_slot)
        queued.start()
        try:
            async with self.cancellation.section():
                result = await asyncio.shield(queued.future)
        except BaseException:
            queued.withdraw()
            raise
        finally:
            if queued.future.done():
                self._user_code = None
        self.stage = "running"
        return result

    async def join_batch(self, batcher: Batcher, kwargs: dict[str, Any]) -> Any:
        """Run in the method's next batch; this request's result (its files are this
        request's to deliver or remove; a stream holds the batch's slot until closed)."""
        self.stage = "queued"
        result, slot = await batcher.join(kwargs, self.cancellation)
        self.stage = "running"
        self._files.extend(result_paths(result))
        if slot is not None:
            self._stack.callback(self.after_user_code, slot.let_go)
        return result

    async def respond(self, result: Any) -> dict[str, Any]:
        """The response body for a (non-stream) result: files delivered as URLs, the
        model's ``after_predict`` hook applied."""
        method = self.signature.method
        files = outputs.result_files(self.signature.output_kind, method, result)
        if files is None:
            response = outputs.value_response(result)
        else:
            response = {"output": await self.deliver(files)}
        return await self.after_predict(response)

    async def deliver(self, paths: list[pathlib.Path]) -> list[str]:
        """Send output files to the destination, within ``KSERVEHELPER_UPLOAD_DEADLINE``."""
        if self.served.local_output_dir is not None:  # kservehelper predict
            return [str(p) for p in outputs.move_to_folder(paths, self.served.local_output_dir)]
        self.stage = "delivering"
        if not self.files_possible and self.destination is None:
            # A method annotated with a plain type returned files after all (e.g. -> Any).
            self.destination = destination_of(self._body, self.served.upload_to)
        deadline = get_settings().upload_deadline
        try:
            async with self.cancellation.section():
                return await asyncio.wait_for(
                    outputs.deliver_files(paths, self.destination), deadline
                )
        except asyncio.TimeoutError:
            raise DeadlineExceeded(
                f"delivering {len(paths)} output file(s) took longer than the {deadline:g}s "
                f"allowed ({env_name('upload_deadline')}); the files were discarded. Check "
                "that the destination is reachable, or raise the deadline for large files"
            ) from None
        finally:
            outputs.remove_files(paths)

    async def after_predict(self, response: dict[str, Any]) -> dict[str, Any]:
        """The model's optional ``after_predict(results)`` hook (seed API)."""
        hook = getattr(self.served.model, "after_predict", None)
        if not callable(hook):
            return response
        result = await hook(response) if inspect.iscoroutinefunction(hook) else hook(response)
        if not isinstance(result, dict):
            raise TypeError(f"after_predict() must return a dict, returned {type(result).__name__}")
        return result

    def stream(self, result: Any) -> streaming.ModelStream:
        """Hand the request over to a stream of ``result``'s items (files delivered one by
        one); the stream releases the request when it is closed."""
        self.stage = "streaming"
        cancellation = self.cancellation
        source = streaming.ItemSource(streaming.as_stream(result), stop=cancellation)
        cancellation.on_cancel(lambda _: source.wake())
        # The HTTP server cancels the sending task itself when the client leaves.
        cancellation.interrupts = lambda reason: not isinstance(reason, ClientDisconnected)
        resources = self._stack.pop_all()

        async def batches() -> AsyncIterator[list[Any]]:
            items = source.batches()
            try:
                while True:
                    async with cancellation.section():
                        try:
                            batch = await items.__anext__()
                        except StopAsyncIteration:
                            break
                    yield [await self._stream_item(item) for item in batch]
                cancellation.check()  # stopped early: say why
                cancellation.finish()  # all sent: a disconnect now is the normal end
            finally:
                with contextlib.suppress(RuntimeError):
                    await items.aclose()  # type: ignore[attr-defined]

        async def close() -> None:
            self._user_code = source.producer
            try:
                # At shutdown (grace over) nobody waits for a generator stuck in next():
                # its slot and files are released when it returns.
                stuck_ok = isinstance(cancellation.reason, ShuttingDown)
                await source.aclose(wait=not stuck_ok)
            finally:
                if self._user_code is not None and self._user_code.done():
                    self._user_code = None
                resources.close()

        return streaming.ModelStream(batches(), close)

    async def _stream_item(self, item: Any) -> Any:
        if isinstance(item, os.PathLike):
            paths = outputs.check_output_paths([item], self.signature.method)
            return (await self.deliver(paths))[0]
        return item
