"""Reports which of the modules a serving process should not need are loaded in it."""

from __future__ import annotations

import sys

from kservehelper import KServeModel

WATCHED = (
    "kservehelper.build",
    "kservehelper.deploy",
    "kservehelper.cli",
    "boto3",
    "botocore",
    "google.cloud.storage",
    "typer",
    "rich",
    "jinja2",
    "uvicorn.protocols.http.h11_impl",  # the server speaks HTTP with httptools
)


class Model:
    def predict(self) -> dict:
        loaded = {
            watched
            for watched in WATCHED
            for name in list(sys.modules)
            if name == watched or name.startswith(watched + ".")
        }
        # httpx (KServe's dependency) imports rich for its own command line when rich is there.
        rich_by_httpx = "httpx._main" in sys.modules
        return {"loaded": sorted(loaded), "rich_by_httpx": rich_by_httpx}


if __name__ == "__main__":
    port = int(sys.argv[1])
    KServeModel.serve("modules", Model, http_port=port, host="127.0.0.1", enable_grpc=False)
