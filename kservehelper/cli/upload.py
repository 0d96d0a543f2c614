"""``kservehelper upload-server``: the bundled upload webhook receiver."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from kservehelper.cli.app import app, fail


@app.command("upload-server")
def upload_server(
    dest: Annotated[
        str, typer.Option("--dest", help="s3://bucket/prefix, gs://bucket/prefix or a folder.")
    ],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    token: Annotated[
        Optional[str],  # noqa: UP045 - typer needs Optional on Python 3.10
        typer.Option(
            help="Require 'Authorization: Bearer TOKEN' on uploads (the model runtime sends "
            "it when KSERVEHELPER_UPLOAD_TOKEN is set, to the origins it trusts). "
            "[default: $KSERVEHELPER_UPLOAD_TOKEN]",
        ),
    ] = None,
    max_size_mb: Annotated[
        int, typer.Option("--max-size-mb", help="Largest request body accepted, in MiB.")
    ] = 2048,
    public_url: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Base URL clients reach this server at (for local-folder URLs)."),
    ] = None,
) -> None:
    """Run the bundled upload webhook server: stores files in DEST and answers with URLs.

    It speaks the three protocols the model runtime uses for output files:
    POST /upload (field 'file'), POST /upload_batch (fields file_0..., header NUM_FILES)
    and PUT /FILENAME. Point a request's "upload_webhook" at http://HOST:PORT/upload.
    Model servers refuse private addresses in requests unless allowed: the server prints the
    KSERVEHELPER_ALLOWED_DESTINATIONS value that admits it when it starts.

    Examples:

        kservehelper upload-server --dest s3://my-bucket/outputs --port 8000

        kservehelper upload-server --dest gs://my-bucket/outputs --token "$TOKEN"

        kservehelper upload-server --dest ./uploads --host 0.0.0.0 --public-url http://files:8000
    """
    from kservehelper.errors import KServeHelperError
    from kservehelper.settings import get_settings
    from kservehelper.upload_server.app import run_upload_server

    try:
        run_upload_server(
            dest,
            host=host,
            port=port,
            token=token or get_settings().upload_token,
            max_bytes=max_size_mb * 1024 * 1024,
            public_url=public_url,
        )
    except (KServeHelperError, ValueError) as exc:  # a bad --dest, typically
        fail(exc)
