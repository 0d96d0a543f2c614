"""Loading the model in a worker process of a multi-process server, once the worker serves.

With ``--workers N`` KServe's parent process spawns N children, each unpickling the served
model, and pings every child over a pipe, killing one that does not answer within 5 s. The
child's answering thread starts only after unpickling, so a model loaded while it unpickles
(a real model's ``load()`` reading its weights takes longer than that, and so does a small
one on a loaded machine) gets its process killed and respawned, forever.

So unpickling only makes the model (:meth:`KServeModel.__setstate__` calls
:func:`load_when_serving`), and the worker's HTTP server calls :func:`start_pending_loads` as
it starts (``DrainingServer``): ``load()`` runs in a thread, the worker answers its parent's
pings and health checks meanwhile, and its readiness (``/v1/models/NAME``) says 503 until the
model is loaded. A ``load()`` that fails is logged with its traceback and leaves that
worker not ready (its predictions answer 503), as a failed start would in one process.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

logger = logging.getLogger("kserve.kservehelper")


class Loadable(Protocol):
    name: str

    def load(self) -> bool: ...


_pending: list[Loadable] = []
_lock = threading.Lock()


def load_when_serving(model: Loadable) -> None:
    """Load ``model`` once this process's server has started (see the module docstring)."""
    with _lock:
        _pending.append(model)


def start_pending_loads() -> list[threading.Thread]:
    """Start loading the models waiting for the server, each in a daemon thread (a worker
    stopped mid-load does not wait for it); returns the threads."""
    with _lock:
        models, _pending[:] = list(_pending), []
    threads = []
    for model in models:
        logger.info("loading model %r in this worker process", model.name)
        thread = threading.Thread(
            target=_load, args=(model,), name=f"kservehelper-load-{model.name}", daemon=True
        )
        thread.start()
        threads.append(thread)
    return threads


def _load(model: Loadable) -> None:
    try:
        model.load()
    except BaseException:
        logger.exception("model %r: load() failed; this worker stays not ready", model.name)
    else:
        from kservehelper.serving.model import freeze_heap_after_load

        freeze_heap_after_load()
        logger.info("model %r loaded: ready", model.name)
