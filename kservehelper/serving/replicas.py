"""``num_replicas``: N copies of a model on Ray Serve, behind one KServe model server.

``KServeModel.serve(name, Model, num_replicas=N)`` (``kservehelper serve --replicas N``) starts
N Ray Serve replicas, each a process loading its own copy of the model, and serves them through
one KServe server as a :class:`kserve.ray.RayModel` (KServe's own Ray support). Each request
runs entirely in one replica on the same code path as a single-process server (validation,
input files, the model, output files, ``after_predict``), so answers, error bodies and streams
are the same; this module only carries the request and its result between the processes.

Ray is imported only here, only when N > 1 (``pip install "kservehelper[ray]"``):

* without ``RAY_ADDRESS``, a private local Ray instance is started (its internal services on
  127.0.0.1) and stopped with the server; replicas reserve no CPU, so N may exceed the cores;
* with ``RAY_ADDRESS``, the replicas join that cluster (each reserving one CPU, so Ray spreads
  them) and are removed from it when the server stops;
* when the cluster has GPUs, each replica reserves 1/N of a GPU (N replicas share one GPU, as
  in kservehelper 2.0); without GPUs, none.
"""

from __future__ import annotations

import os

# Read by Ray when it is first imported (kserve.ray, below, imports it): a private local
# instance then binds its services to 127.0.0.1 instead of the machine's address (nothing else
# ever joins it) and sends no usage statistics. A cluster given by RAY_ADDRESS is left as is.
if not os.environ.get("RAY_ADDRESS"):
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import atexit
import logging
import pickle
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

from kservehelper.errors import ConfigError, KServeHelperError, ShuttingDown, SignatureError
from kservehelper.schema.signature import main_signature, model_schema, signatures_of
from kservehelper.serving import shutdown, streaming
from kservehelper.serving.model import KServeModel, ModelStream
from kservehelper.settings import get_settings

try:
    from kserve.model import InferenceVerb
    from kserve.ray import RayModel
except ImportError:  # pragma: no cover - depends on the environment
    raise ConfigError(
        'num_replicas > 1 runs replicas on Ray Serve: pip install "kservehelper[ray]"'
    ) from None

logger = logging.getLogger("kserve.kservehelper")


def _import_ray() -> tuple[Any, Any]:
    import ray
    from ray import serve

    return ray, serve


class ReplicasBusy(KServeHelperError):
    """Every replica is busy and Ray's queue is full: HTTP 503, like a full single server."""

    http_status = 503


class ReplicaError(Exception):
    """An exception raised in a replica, rebuilt in the server under its original class name
    and message (so error bodies and stream error records match a single-process server)."""


def _portable(error: BaseException) -> tuple[Any, ...]:
    """``error`` in a form that crosses processes and rebuilds to the same HTTP answer."""
    if isinstance(error, KServeHelperError):
        try:
            data = pickle.dumps(error)
            pickle.loads(data)
            return ("pickled", data)
        except Exception:  # an error class that does not pickle: keep its name and message
            pass
    if isinstance(error, ValueError):
        return ("value", str(error))
    return ("other", type(error).__name__, str(error))


def _rebuild(portable: tuple[Any, ...]) -> BaseException:
    kind = portable[0]
    if kind == "pickled":
        error: BaseException = pickle.loads(portable[1])
        return error
    if kind == "value":
        return ValueError(portable[1])
    return type(str(portable[1]), (ReplicaError,), {})(portable[2])


class ModelReplica:
    """One replica (a Ray Serve deployment's class): its own model copy, loaded at start."""

    def __init__(
        self,
        name: str,
        model_class: type,
        max_concurrency: int | None,
        upload_to: str | None,
        model_kwargs: dict[str, Any],
    ) -> None:
        self.model = KServeModel(
            name, model_class, max_concurrency=max_concurrency, upload_to=upload_to, **model_kwargs
        )
        self.model.load()

    async def handle(
        self, method: str, payload: Any, headers: dict[str, str] | None
    ) -> AsyncIterator[tuple[Any, ...]]:
        """Run one request; yields ``("value", dict)``, or ``("stream",)`` then ``("items",
        [...])``..., or ``("error", portable)`` (also after some items)."""
        try:
            if method == "predict":
                # Through kserve.Model.__call__, as the single-process route does (metrics).
                result, _ = await self.model(payload, headers=headers)
            else:
                result = await self.model.generate(payload, headers)
            if not isinstance(result, ModelStream):
                try:
                    streaming.dumps(result)
                except TypeError as exc:
                    raise TypeError(
                        f"{method}() returned a value that cannot be sent as JSON: {exc}"
                    ) from None
        except Exception as error:
            if not isinstance(error, (KServeHelperError, ValueError)):
                logger.error("prediction failed in replica %d", os.getpid(), exc_info=error)
            yield ("error", _portable(error))
            return
        if not isinstance(result, ModelStream):
            yield ("value", result)
            return
        yield ("stream",)
        transform = getattr(result, "transform", None)  # output files become URLs here
        try:
            async for batch in result.batches:
                if transform is not None:
                    batch = [await transform(item) for item in batch]
                yield ("items", batch)
        except Exception as error:
            logger.error("stream failed in replica %d", os.getpid(), exc_info=error)
            yield ("error", _portable(error))
        finally:
            await _close_stream(result)


async def _close_stream(stream: Any) -> None:
    """Release a stream's request in the replica (its slot, its files)."""
    aclose = getattr(stream, "aclose", None)  # the request pipeline's streams
    if aclose is not None:
        await aclose()
    else:
        stream.close()


class _Release:
    """Gives a request's admission back, once."""

    def __init__(self, model: ReplicatedModel) -> None:
        self.model: ReplicatedModel | None = model
        self.responses: Any = None

    def watch(self, responses: Any) -> None:
        """The request's Ray responses, cancelled if the shutdown's grace runs out."""
        self.responses = responses
        if self.model is not None:
            self.model._in_flight.add(responses)

    def __call__(self) -> None:
        if self.model is not None:
            self.model.admitted -= 1
            self.model._in_flight.discard(self.responses)
            self.model = None


class _CloseReplicaStream:
    """A stream's close callback in the server: cancels the replica's generator (which then
    releases its request there) and the admission here. Usable as a plain and as an async
    callback."""

    def __init__(self, responses: Any, release: _Release) -> None:
        self.responses = responses
        self.release = release

    def __call__(self) -> _Done:
        self.release()
        self.responses.cancel()
        return _Done()


class _Done:
    def __await__(self) -> Iterator[None]:
        return iter(())


class ReplicatedModel(RayModel):
    """The model as the KServe server sees it: requests go to the replicas' Ray handle.

    It drains on SIGTERM as a single server's pipeline does (:class:`~kservehelper.serving.
    shutdown.Drainable`): not ready and refusing new requests, it waits for those admitted.
    """

    def __init__(self, name: str, handle: Any, model_class: type, stop: Any, capacity: int) -> None:
        super().__init__(name, handle)
        self.signatures = signatures_of(model_class)
        self._stop = stop
        #: Requests admitted at once: every replica's slots plus the queue (max_queue)
        #: waiting, as a single server admits its slots plus its queue.
        self.capacity = capacity
        self.admitted = 0
        self.draining = False
        self._in_flight: set[Any] = set()  # the Ray responses of admitted requests
        self._cancelled: KServeHelperError | None = None
        shutdown.register(self)

    # -- shutdown.Drainable --------------------------------------------------------------------

    def open_requests(self) -> int:
        return self.admitted

    def stop_admitting(self) -> None:
        self.draining = True  # still loaded (live), no longer ready

    async def healthy(self) -> bool:
        """Readiness (KServe's ``/v1/models/{name}``): loaded, and not shutting down."""
        return self.ready and not self.draining

    def cancel_all(self, reason: KServeHelperError) -> None:
        self._cancelled = reason
        for responses in list(self._in_flight):
            responses.cancel()  # the replica's generator stops and releases its request

    def load(self) -> bool:
        self.ready = True  # the replicas loaded their copies before serve.run returned
        return True

    async def __call__(
        self,
        body: Any,
        headers: dict[str, str] | None = None,
        verb: InferenceVerb = InferenceVerb.PREDICT,
    ) -> tuple[dict[str, Any] | ModelStream, dict[str, str]]:
        return await self._request("predict", body, headers), {}

    async def generate(
        self, payload: Any, headers: dict[str, str] | None = None
    ) -> dict[str, Any] | ModelStream:
        return await self._request("generate", payload, headers)

    def schema(self) -> dict[str, Any]:
        return model_schema(self.name, self.signatures)

    def docs(self) -> dict[str, Any]:
        return main_signature(self.signatures).docs()

    async def _request(
        self, method: str, payload: Any, headers: dict[str, str] | None
    ) -> dict[str, Any] | ModelStream:
        if self.draining:
            raise ShuttingDown("the server is shutting down; retry (another replica answers)")
        if self.admitted >= self.capacity:
            raise ReplicasBusy(
                f"every replica of {self.name} is busy and the queue is full "
                f"({self.capacity} requests admitted); retry later"
            )
        self.admitted += 1
        release = _Release(self)
        try:
            responses = self._handle.options(stream=True).handle.remote(method, payload, headers)
            release.watch(responses)
            first = await responses.__anext__()
            if first[0] != "stream":
                release()
                if first[0] == "error":
                    raise _rebuild(first[1])
                return dict(first[1])
        except BaseException:
            release()
            if self._cancelled is not None:
                raise self._cancelled from None
            raise

        async def batches() -> AsyncIterator[list[Any]]:
            try:
                async for message in responses:
                    if message[0] == "error":
                        raise _rebuild(message[1])
                    yield message[1]
            except Exception:
                if self._cancelled is not None:
                    raise self._cancelled from None
                raise

        # Closing (the stream ended, or the client left) cancels the replica's generator,
        # which then releases its slot and removes its files, and frees the admission.
        close: Any = _CloseReplicaStream(responses, release)
        return ModelStream(batches=batches(), close=close)

    def stop(self) -> None:
        """Remove the replicas (and stop the local Ray instance this server started)."""
        self._stop()


def start_replicas(
    name: str,
    model_class: type,
    num_replicas: int,
    *,
    max_concurrency: int | None,
    max_queue: int | None = None,
    upload_to: str | None,
    model_kwargs: dict[str, Any],
) -> ReplicatedModel:
    """Start ``num_replicas`` replicas of ``model_class`` on Ray Serve; each has loaded its
    copy when this returns. See the module docstring for where they run."""
    from kservehelper.serving.transformer import is_transformer

    if is_transformer(model_class):
        raise SignatureError(
            f"{model_class.__name__} is a transformer (preprocess/postprocess): num_replicas is "
            "for predictors; scale a transformer with workers or KServe replicas"
        )
    ray, serve = _import_ray()
    address = os.environ.get("RAY_ADDRESS")
    started_here = not ray.is_initialized()
    if started_here:
        options: dict[str, Any] = {"namespace": "kservehelper"}
        if not address:
            options["include_dashboard"] = False
        try:
            ray.init(**options)
        except Exception as error:
            where = f"join the Ray cluster at RAY_ADDRESS={address}" if address else "start Ray"
            raise ConfigError(f"num_replicas: could not {where}: {error}") from error
    gpus = float(ray.cluster_resources().get("GPU", 0))
    actor_options = {
        "num_gpus": 1.0 / num_replicas if gpus > 0 else 0,
        # On a cluster, one CPU each lets Ray spread replicas; in a private local instance
        # they share this machine's cores like worker processes do.
        "num_cpus": 1 if address else 0,
    }
    slots = max_concurrency or get_settings().max_concurrency
    _ship_by_value(model_class)
    serve.start(proxy_location="Disabled")
    deployment = serve.deployment(ModelReplica).options(
        name=name,
        num_replicas=num_replicas,
        # A replica gets a request only while it has a free slot, so no request waits in a
        # busy replica while another is idle; the rest wait in Ray's queue, which the server
        # bounds itself (ReplicatedModel: Ray's own bound also refuses requests in transit).
        max_ongoing_requests=slots,
        ray_actor_options=actor_options,
    )
    app = f"kservehelper-{name}"
    logger.info(
        "starting %d replicas of %s on Ray (%s; %s GPU each)",
        num_replicas, name, f"cluster {address}" if address else "local",
        actor_options["num_gpus"],
    )  # fmt: skip
    handle = serve.run(
        deployment.bind(name, model_class, max_concurrency, upload_to, model_kwargs),
        name=app,
        route_prefix=None,
    )

    stopped: list[bool] = []

    def stop() -> None:
        # Called by KServe when it unloads the model, by serve_replicas, and at exit: once.
        if stopped or not ray.is_initialized():  # serve.* would start a new Ray instance
            return
        stopped.append(True)
        atexit.unregister(stop)
        try:
            if address:
                serve.delete(app)
            else:
                serve.shutdown()
        finally:
            if started_here:
                ray.shutdown()

    atexit.register(stop)
    queue = get_settings().max_queue if max_queue is None else max_queue
    capacity = num_replicas * slots + queue
    return ReplicatedModel(name, handle, model_class, stop, capacity)


def _ship_by_value(model_class: type) -> None:
    """Send the model's module to the replicas with the class itself: a model loaded from a
    folder (``kservehelper serve DIR``) is not importable by name on a Ray worker."""
    from ray import cloudpickle

    module = sys.modules.get(model_class.__module__)
    if module is None or module.__name__ == "__main__":
        return  # cloudpickle sends __main__'s classes by value already
    if module.__name__.split(".")[0] == "kservehelper":
        return
    cloudpickle.register_pickle_by_value(module)


def serve_replicas(
    name: str,
    model_class: type,
    num_replicas: int,
    *,
    host: str | None,
    http_port: int | None,
    enable_grpc: bool | None,
    workers: int | None,
    max_concurrency: int | None,
    max_queue: int | None = None,
    upload_to: str | None,
    model_kwargs: dict[str, Any],
) -> None:
    """Serve ``num_replicas`` replicas behind one KServe ``ModelServer`` until it stops, then
    remove them (``KServeModel.serve(..., num_replicas=N)``; arguments as there)."""
    from kservehelper.serving.http import install_routes
    from kservehelper.serving.kserve_compat import kserve_app
    from kservehelper.serving.server import model_server

    if num_replicas < 1:
        raise ValueError(f"num_replicas must be at least 1, got {num_replicas}")
    server = model_server(host, http_port, enable_grpc, workers)
    if server.workers > 1:
        raise ConfigError(
            f"workers={server.workers} and num_replicas={num_replicas}: choose one (each "
            "replica is already its own process; see docs/scaling.md)"
        )
    server.check_ports()  # before Ray starts and the replicas load
    model = start_replicas(
        name,
        model_class,
        num_replicas,
        max_concurrency=max_concurrency,
        max_queue=max_queue,
        upload_to=upload_to,
        model_kwargs=model_kwargs,
    )
    try:
        model.load()
        install_routes(kserve_app(), {name: model})
        server.start([model])
    finally:
        model.stop()
