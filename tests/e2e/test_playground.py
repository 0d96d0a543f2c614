"""The browser playground, driven in a real headless Chromium (Debian's, through Playwright).

The servers are real (`kservehelper serve` on 127.0.0.1); the browser fills the forms, uploads
files and reads what the page shows. Without a Chromium (or Playwright) on the machine the
browser tests skip and say so; `.ci/run` installs both.
"""

from __future__ import annotations

import base64
import io
import pathlib
import shutil
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw

from tests.conftest import EXAMPLES, REPO, TEST_MODELS, RunningServer, ServeFactory
from tests.fixtures_storage import start_upload_server, stop_process

PLAYGROUND_MODEL = pathlib.Path(__file__).resolve().parent / "playground_model"
# Playwright adds --headless and a fresh --user-data-dir (a temporary profile) itself.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000  # generous: a loaded machine is slow, never wrong


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert errors == [], f"the page raised: {errors}"


@pytest.fixture(scope="module")
def hello(serve_model: ServeFactory) -> RunningServer:
    return serve_model(EXAMPLES / "hello", "hello")


@pytest.fixture(scope="module")
def blur(serve_model: ServeFactory) -> RunningServer:
    return serve_model(EXAMPLES / "blur-image", "blur-image")


@pytest.fixture(scope="module")
def streaming(serve_model: ServeFactory) -> RunningServer:
    return serve_model(EXAMPLES / "streaming", "streaming")


def open_playground(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#run:not([disabled])")


def wait_until_image_loaded(page: Any, timeout: float = 30) -> None:
    """Wait until the result image has decoded. Polled with ``page.evaluate`` (DevTools),
    not ``wait_for_function``, whose string predicate the page's CSP (no eval) may block."""
    deadline = time.monotonic() + timeout
    script = "document.querySelector('#media img')?.naturalWidth || 0"
    while page.evaluate(script) == 0:
        assert time.monotonic() < deadline, "the result image never loaded"
        time.sleep(0.1)


def field(name: str, inside: str = "") -> str:
    return f'[data-field="{name}"] {inside}'.strip()


# -- the routes, over plain HTTP ------------------------------------------------------------


def test_root_is_the_page_for_browsers_and_liveness_for_everyone_else(hello: RunningServer) -> None:
    page = httpx.get(hello.url + "/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "playground/playground.js" in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    for accept in (None, "*/*", "application/json"):
        headers = {"Accept": accept} if accept else {}
        live = httpx.get(hello.url + "/", headers=headers)
        assert live.status_code == 200
        assert live.json() == {"status": "alive"}


def test_model_page_assets_and_refusals(hello: RunningServer) -> None:
    model_page = httpx.get(hello.url + "/v1/models/hello/playground")
    assert model_page.status_code == 200
    assert model_page.text == httpx.get(hello.url + "/", headers={"Accept": "text/html"}).text
    for base in ("/playground/", "/v1/models/hello/playground/"):
        script = httpx.get(hello.url + base + "playground.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        assert (
            httpx.get(hello.url + base + "playground.css")
            .headers["content-type"]
            .startswith("text/css")
        )
    assert httpx.get(hello.url + "/playground/models").json() == {"models": ["hello"]}
    unknown = httpx.get(hello.url + "/v1/models/nope/playground")
    assert unknown.status_code == 404
    assert "served models: hello" in unknown.json()["error"]
    # Only the page's own files: no path reaches the package folder or beyond.
    for name in ("routes.py", "__init__.py", "..%2Froutes.py", "index.html%00.js"):
        assert httpx.get(hello.url + "/playground/" + name).status_code == 404


def test_playground_can_be_turned_off(serve_model: ServeFactory) -> None:
    server = serve_model(EXAMPLES / "hello", "quiet", env={"KSERVEHELPER_PLAYGROUND": "0"})
    root = httpx.get(server.url + "/", headers={"Accept": "text/html"})
    assert root.json() == {"status": "alive"}
    off = httpx.get(server.url + "/v1/models/quiet/playground")
    assert off.status_code == 404
    assert "KSERVEHELPER_PLAYGROUND=0" in off.json()["error"]
    assert httpx.get(server.url + "/playground/playground.js").status_code == 404


# -- in the browser ---------------------------------------------------------------------------


def test_form_shows_each_input_with_its_type_description_default_and_constraints(
    page: Any, hello: RunningServer
) -> None:
    open_playground(page, hello.url + "/")
    assert page.text_content("#model-name") == "hello"
    # One model, one method: nothing to choose.
    assert page.locator("#model-choice").is_hidden()
    assert page.locator("#method-choice").is_hidden()
    assert page.text_content(field("name", ".required")) == "required"
    assert page.text_content(field("name", ".help")) == "Who to greet"
    assert "1 to 40 characters" in page.text_content(field("name", ".hint"))
    times = page.locator(field("times", "input"))
    assert times.get_attribute("type") == "number"
    assert (times.get_attribute("min"), times.get_attribute("max")) == ("1", "5")
    assert times.input_value() == "1"  # the default, filled in
    assert page.text_content(field("times", ".type")) == "integer"
    options = page.locator(field("language", "select option")).all_text_contents()
    assert options == ["en", "fr", "de"]
    assert page.locator(field("shout", "input")).get_attribute("type") == "checkbox"
    assert page.text_content(field("tags", ".type")) == "list of string"
    assert "at most 3 items" in page.text_content(field("tags", ".hint"))
    assert "matches" in page.text_content(field("code", ".hint"))


def test_fill_and_submit_hello_shows_the_greeting(page: Any, hello: RunningServer) -> None:
    open_playground(page, hello.url + "/")
    page.fill(field("name", "input"), "Ada")
    page.fill(field("times", "input"), "2")
    page.select_option(field("language", "select"), label="fr")
    page.click(field("tags", "button"))
    page.fill(field("tags", ".row input"), "first")
    page.check(field("shout", "input"))
    page.click("#run")
    page.wait_for_selector("#result:not([hidden])")
    result = page.text_content("#result")
    assert '"greeting": "BONJOUR, ADA! BONJOUR, ADA!"' in result
    assert '"first"' in result
    assert page.text_content("#status").startswith("Done")


def test_a_bad_value_shows_the_servers_error_next_to_its_field(
    page: Any, hello: RunningServer
) -> None:
    open_playground(page, hello.url + "/v1/models/hello/playground")
    page.fill(field("name", "input"), "Ada")
    page.fill(field("times", "input"), "9")
    page.fill(field("code", "input"), "nope")
    page.click("#run")
    page.wait_for_selector(field("times", ".error:not([hidden])"))
    assert page.text_content(field("times", ".error")) == "Input should be less than or equal to 5"
    assert r"[A-Z]{2}-\d{3}" in page.text_content(field("code", ".error"))  # the server's words
    assert page.locator(field("name", ".error")).is_hidden()
    assert page.text_content("#status").startswith("HTTP 400")
    assert page.locator("#result").is_hidden()
    # A missing required input: the server says so, next to it.
    page.fill(field("name", "input"), "")
    page.fill(field("times", "input"), "1")
    page.fill(field("code", "input"), "AB-123")
    page.click("#run")
    page.wait_for_selector(field("name", ".error:not([hidden])"))
    assert "required" in page.text_content(field("name", ".error"))
    assert page.locator(field("times", ".error")).is_hidden()


def _photo(tmp_path: pathlib.Path) -> pathlib.Path:
    image = Image.new("RGB", (160, 120), "white")
    ImageDraw.Draw(image).rectangle((40, 30, 120, 90), fill="red")
    path = tmp_path / "photo.png"
    image.save(path)
    return path


def _decode_data_uri(uri: str) -> tuple[str, bytes]:
    header, _, data = uri.partition(",")
    return header, base64.b64decode(data)


def test_upload_an_image_to_blur_image_and_see_it_blurred(
    page: Any, blur: RunningServer, tmp_path: pathlib.Path
) -> None:
    open_playground(page, blur.url + "/")
    page.set_input_files(field("image", "input[type=file]"), str(_photo(tmp_path)))
    page.wait_for_selector(field("image", '.file-info:text("photo.png")'))
    page.fill(field("radius", "input"), "4")
    page.click("#run")
    page.wait_for_selector("#media img")
    wait_until_image_loaded(page)
    header, data = _decode_data_uri(page.get_attribute("#media img", "src"))
    assert header == "data:image/jpeg;base64"
    blurred = Image.open(io.BytesIO(data)).convert("RGB")
    assert blurred.size == (160, 120)
    # The red square's edge is no longer sharp: a pixel just outside it is pinkish now.
    red, green, _ = blurred.getpixel((38, 60))
    assert red > 200 and 60 < green < 235
    assert "data:image/jpeg;base64,…" in page.text_content("#result")  # shortened in the JSON


def test_an_image_returned_as_a_url_shows_inline(
    page: Any, serve_model: ServeFactory, tmp_path: pathlib.Path
) -> None:
    """Output files delivered to a webhook come back as URLs: the page shows those too."""
    uploads, process = start_upload_server(str(tmp_path / "uploads"))
    try:
        server = serve_model(
            EXAMPLES / "blur-image",
            "blur-urls",
            env={"KSERVEHELPER_UPLOAD_TO": uploads.url + "/upload"},
        )
        open_playground(page, server.url + "/")
        page.set_input_files(field("image", "input[type=file]"), str(_photo(tmp_path)))
        page.wait_for_selector(field("image", '.file-info:text("photo.png")'))
        page.click("#run")
        page.wait_for_selector("#media img")
        wait_until_image_loaded(page)
        source = page.get_attribute("#media img", "src")
        assert source.startswith(uploads.url + "/") and source.endswith(".jpg")
        assert source in page.text_content("#result")
    finally:
        stop_process(process)


def _count_stream_items(page: Any) -> None:
    """Record how many items the page shows each time the list changes."""
    page.evaluate(
        """() => {
            window.itemCounts = [];
            const list = document.getElementById("stream");
            new MutationObserver(() => {
                const count = list.querySelectorAll("li").length;
                if (count) window.itemCounts.push(count);
            }).observe(list, { childList: true });
        }"""
    )


@pytest.mark.parametrize("method", ["predict", "generate"])
def test_the_streaming_example_shows_items_one_by_one(
    page: Any, streaming: RunningServer, method: str
) -> None:
    open_playground(page, streaming.url + "/")
    page.select_option("#method-select", method)
    _count_stream_items(page)
    page.fill(field("repeat", "input"), "3")
    page.fill(field("delay", "input"), "1")
    page.click("#run")
    page.wait_for_selector('#status:text("Done")')
    # Each item was on the page before the next one arrived (the model sleeps between them).
    assert page.evaluate("window.itemCounts") == [1, 2, 3]
    texts = page.locator("#stream li").all_text_contents()
    assert len(texts) == 3 and all("Hello World!" in text for text in texts)
    curl = page.text_content("#curl")
    assert f"streaming:{method}" in curl


def test_a_stream_item_is_shown_while_the_model_is_still_producing(
    page: Any, serve_model: ServeFactory, tmp_path: pathlib.Path
) -> None:
    server = serve_model(TEST_MODELS / "behaviours", "streams", "--class", "Streams")
    gate = tmp_path / "gate"
    open_playground(page, server.url + "/")
    page.fill(field("count", "input"), "3")
    page.fill(field("gate", "textarea"), str(gate))
    page.click("#run")
    page.wait_for_selector("#stream li")
    # The model waits for the gate before item 2: what the page shows now came on its own.
    assert page.locator("#stream li").count() == 1
    assert page.text_content("#status") == "Streaming… 1 item"
    gate.touch()
    page.wait_for_selector('#status:text("Done: 3 items")')
    assert page.locator("#stream li").all_text_contents() == ['{"n":0}', '{"n":1}', '{"n":2}']


def test_file_secret_and_list_inputs_and_image_and_audio_outputs(
    page: Any, serve_model: ServeFactory, tmp_path: pathlib.Path
) -> None:
    server = serve_model(PLAYGROUND_MODEL, "thumbs")
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    open_playground(page, server.url + "/v1/models/thumbs/playground")
    token = page.locator(field("token", "input"))
    assert token.get_attribute("type") == "password"
    assert page.text_content(field("photo", ".type")) == "file"
    page.set_input_files(field("photo", "input[type=file]"), str(_photo(tmp_path)))
    page.wait_for_selector(field("photo", '.file-info:text("photo.png")'))
    page.fill(field("token", "input"), "open-sesame")
    page.click(field("sizes", ".row button"))  # remove the default 8
    for size in ("4", "6"):
        page.click(field("sizes", "button:text('+ add item')"))
        page.locator(field("sizes", ".row input")).last.fill(size)
    page.select_option(field("mode", "select"), "flip")
    page.click("#run")
    page.wait_for_selector("#media audio")
    images = page.locator("#media img")
    assert images.count() == 2
    sizes = [
        Image.open(io.BytesIO(_decode_data_uri(images.nth(i).get_attribute("src"))[1])).size
        for i in range(2)
    ]
    assert sizes == [(4, 4), (6, 6)]
    assert page.get_attribute("#media audio", "src").startswith("data:audio/")
    assert "open-sesame" not in page.text_content("#curl")  # the secret stays out
    # A wrong secret: the model's ValueError is the form's error (it names no field).
    page.fill(field("token", "input"), "guess")
    page.click("#run")
    page.wait_for_selector("#form-error:not([hidden])")
    assert page.text_content("#form-error") == "wrong token"
    # Offline: everything the page loaded came from this server.
    assert requests and all(
        url.startswith(server.url + "/") or url.startswith("data:") for url in requests
    )


@pytest.mark.parametrize("builder", ["hatch", "image"])
def test_the_wheels_carry_the_playground(tmp_path: pathlib.Path, builder: str) -> None:
    """The published wheel (hatch, through pip) and the one images get both hold the page."""
    import subprocess
    import sys
    import zipfile

    from kservehelper.build.context import build_own_wheel
    from kservehelper.serving.playground.routes import ASSETS, PAGE

    if builder == "image":
        wheel_path = build_own_wheel(tmp_path)
    else:
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path)]
        done = subprocess.run([*command, str(REPO)], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        [wheel_path] = tmp_path.glob("kservehelper-*.whl")
    with zipfile.ZipFile(wheel_path) as wheel:
        names = set(wheel.namelist())
    for name in (PAGE, *ASSETS):
        assert f"kservehelper/serving/playground/{name}" in names
