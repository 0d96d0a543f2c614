"""The playground's routes: one static page and its script and style, from package data.

* ``GET /`` for a browser (``Accept: text/html``): the page, for the served model (a choice
  when several are served); every other client keeps getting KServe's liveness JSON there.
* ``GET /v1/models/{name}/playground``: the page for that model.
* ``GET [/v1/models/{name}/]playground/{asset}``: its script and style (the page names them
  relatively, so it works behind a path prefix too), and ``playground/models``: the models
  served here.

The page builds its form from ``GET /v1/models/{name}/schema`` in the browser; nothing of the
model or the request is written into the HTML, so there is nothing to escape. Everything comes
from this server (no CDN): the page works offline, and a Content-Security-Policy that allows
scripts from this server only keeps it that way. ``KSERVEHELPER_PLAYGROUND=0`` turns it off.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastapi.responses import Response
from starlette.routing import BaseRoute, Route

from kservehelper.serving.kserve_compat import BrowserRoute
from kservehelper.settings import get_settings

if TYPE_CHECKING:
    from starlette.requests import Request

PAGE = "index.html"
#: The files besides the page a browser may ask for, and their media types.
_SCRIPT = "text/javascript; charset=utf-8"
ASSETS = {
    "playground.js": _SCRIPT,  # the page's script, a module importing the three below
    "form.js": _SCRIPT,
    "output.js": _SCRIPT,
    "dom.js": _SCRIPT,
    "playground.css": "text/css; charset=utf-8",
}
#: Scripts and styles from this server only; model outputs (images, audio) may come from
#: anywhere the model's URLs point (S3, GCS, a webhook server) or be data: URIs.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data: blob: http: https:; media-src 'self' data: blob: http: https:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@functools.cache
def _package_file(name: str) -> bytes:
    return importlib.resources.files(__package__).joinpath(name).read_bytes()


def _page() -> Response:
    return Response(_package_file(PAGE), media_type="text/html; charset=utf-8", headers=_HEADERS)


def _not_found(message: str) -> Response:
    from kservehelper.serving.http import json_response

    return json_response({"error": message}, 404)


def playground_routes(models: Mapping[str, Any]) -> list[BaseRoute]:
    """The playground's routes for ``models`` (a live registry: models added later show too)."""
    if not get_settings().playground:
        return [Route("/v1/models/{model_name}/playground", _turned_off, methods=["GET"])]

    async def root_page(request: Request) -> Response:
        return _page()

    async def model_page(request: Request) -> Response:
        name = request.path_params["model_name"]
        if name not in models:
            served = ", ".join(sorted(models)) or "none"
            return _not_found(f"model {name!r} is not served here; served models: {served}")
        return _page()

    async def served_models(request: Request) -> Response:
        from kservehelper.serving.http import json_response

        return json_response({"models": sorted(models)})

    async def asset(request: Request) -> Response:
        name = request.path_params["asset"]
        media_type = ASSETS.get(name)
        if media_type is None:
            return _not_found(f"no playground file named {name!r}")
        return Response(_package_file(name), media_type=media_type, headers=_HEADERS)

    return [
        BrowserRoute("/", root_page, methods=["GET"]),
        Route("/v1/models/{model_name}/playground", model_page, methods=["GET"]),
        Route("/playground/models", served_models, methods=["GET"]),
        Route("/playground/{asset}", asset, methods=["GET"]),
        Route("/v1/models/{model_name}/playground/{asset}", asset, methods=["GET"]),
    ]


async def _turned_off(request: Request) -> Response:
    return _not_found("the playground is turned off on this server (KSERVEHELPER_PLAYGROUND=0)")
