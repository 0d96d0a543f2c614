"""Runs inside the model container: the KServe model, its routes, streaming and files.

Where things are, in the order a request meets them (each module's docstring says more):

Starting the server
    ``server`` (``KServeModel.serve``), ``loader`` (import the model folder), ``kserve_flags``
    (KServe's flags on ``kservehelper serve``), ``ports``, ``worker_load`` (``--workers``),
    ``replicas`` (Ray Serve), ``shutdown`` (SIGTERM drain), ``workdirs`` (scratch folders).
A connection and its request
    ``connections`` (uvicorn's protocol: header limits, connection cap), ``guard`` (ASGI
    middleware: body size and timeout, cross-origin refusal), ``http`` (the routes and the one
    error-to-response mapping), ``request_body`` (reading the body, ``data:`` URIs to disk),
    ``openapi`` (``/openapi.json``), ``secrets`` (``Secret`` values scrubbed from what leaves),
    ``playground/`` (the browser page).
The model's side
    ``model`` (``KServeModel``: KServe's hooks), ``transformer`` (preprocess/postprocess),
    ``pipeline`` (one request: admit, validate, slot, fetch, run, deliver, clean up) with
    ``request_checks``, ``admission`` (slots, the queue, 503s), ``cancellation`` (abandoned
    work), ``resources`` (what a request holds), ``sync_calls`` and ``threads`` (sync model code
    in worker threads), ``batching`` (``@batch``), ``inputs`` (file inputs), ``outputs``
    (output files), ``streaming`` (generators, NDJSON/SSE), ``local`` (``kservehelper
    predict``).
KServe's internals are touched only in ``kserve_compat`` (and uvicorn's in ``connections``).
"""
