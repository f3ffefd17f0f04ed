"""The web demo in a real browser: ``meshlm serve`` in a subprocess with a tiny random-weight
model, driven by headless Chromium (Debian's ``chromium`` through Playwright's Python package).

Needs ``apt-get install -y chromium`` and ``pip install playwright`` (no ``playwright install``:
the system browser is used; ``MESHLM_CHROMIUM`` overrides its path). Skipped when either is
missing. Screenshots go to ``artifacts/web/`` (``MESHLM_ARTIFACTS`` overrides ``artifacts``).

Also a script that screenshots the demo for the README::

    python tests/test_web_e2e.py --model meshlm/models/meshlm-bundled --out docs/web.png
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("MESHLM_ARTIFACTS", ROOT / "artifacts")) / "web"
CHROMIUM = os.environ.get("MESHLM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 120_000  # generous: the machine may be busy

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(model: Path, log: Path):
    """``meshlm serve --model MODEL`` on a free port until the block ends -> its URL."""
    port = _free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "meshlm", "serve", "--model", str(model), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
        url = f"http://127.0.0.1:{port}/"
        try:
            deadline = time.monotonic() + 180
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"meshlm serve exited {proc.returncode}: "
                        f"{log.read_text(errors='replace')[-2000:]}"
                    )
                try:
                    with urllib.request.urlopen(url, timeout=5) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"meshlm serve did not answer on {url}")
                time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def browser_page(user_data_dir: Path):
    """A page of a fresh headless system Chromium (1400x950)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(user_data_dir),
            executable_path=CHROMIUM,
            args=FLAGS,
            headless=True,
            viewport={"width": 1400, "height": 950},
        )
        try:
            page = ctx.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            ctx.close()


def submit(page, text: str, attach: Path | None = None) -> None:
    """Type ``text`` (and attach a file) in the prompt box and send it."""
    box = page.locator("#prompt")
    if attach is not None:
        box.locator("input[type=file]").set_input_files(str(attach))
        page.wait_for_selector("#prompt .thumbnail-item")  # uploaded, shown in the box
    box.locator("textarea").fill(text)
    box.locator("textarea").press("Enter")


def wait_idle(page, n_replies: int) -> None:
    """Until the chat holds ``n_replies`` finished assistant replies (the report says tokens)."""
    page.wait_for_function(
        """(n) => document.querySelectorAll('#chat .message-row.bot-row').length >= n
                 && document.querySelector('#report').innerText.includes('tokens in')""",
        arg=n_replies,
    )


def viewer_colours(page) -> int:
    """How many strongly coloured pixels the 3D viewer's canvas shows (0 = nothing drawn: the
    background is grey and the mesh carries the blue-to-red height gradient)."""
    import numpy as np
    from PIL import Image

    png = page.locator("#viewer canvas").screenshot()
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    saturation = rgb.max(axis=2) - rgb.min(axis=2)
    return int((saturation > 60).sum())


def wait_drawn(page, min_pixels: int = 50, seconds: float = 60) -> int:
    deadline = time.monotonic() + seconds
    while True:
        n = viewer_colours(page)
        if n >= min_pixels or time.monotonic() > deadline:
            return n
        time.sleep(0.5)


# --- the test ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install -y chromium)")
    pytest.importorskip("gradio")
    from test_web import make_tiny_model

    model = tmp_path_factory.mktemp("tiny-model")
    make_tiny_model(model)
    with running_server(model, ARTIFACTS / "server.log") as url:
        yield url


def test_browser_generates_views_and_describes_meshes(server, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with browser_page(tmp_path / "chromium-profile") as page:
        try:
            _drive(page, server, tmp_path)
        except BaseException:
            page.screenshot(path=ARTIFACTS / "failure.png")
            raise


def _drive(page, server, tmp_path):
    from meshlm.files import save_mesh
    from meshlm.shapes import make_shape

    page.goto(server, wait_until="load")
    page.wait_for_selector("#prompt textarea")
    assert page.locator("#viewer canvas").count() == 0  # nothing to show yet

    # a limit: told why in the chat, nothing generated
    submit(page, "x" * 2001)
    page.wait_for_function(
        "() => document.querySelector('#chat').innerText.includes('the limit is 2000')"
    )
    page.screenshot(path=ARTIFACTS / "0-limit.png")

    # a prompt: the viewer draws the mesh, OBJ and GLB downloads appear
    submit(page, "a chair")
    page.wait_for_selector("#viewer canvas")
    wait_idle(page, 2)
    link = page.locator("[data-testid=model3d-download-link]").get_attribute("href")
    assert link.endswith(".glb")
    assert page.request.get(link).body()[:4] == b"glTF"
    names = page.locator("#downloads").inner_text()
    assert ".obj" in names and ".glb" in names
    assert "faces" in page.locator("#report").inner_text()
    assert wait_drawn(page) >= 50, "the 3D viewer shows no coloured mesh"
    page.screenshot(path=ARTIFACTS / "1-generated.png")

    # an upload: the mesh goes into the chat and the viewer; the model answers in text
    chair = tmp_path / "chair.obj"
    save_mesh(make_shape("chair", 0).mesh, chair)
    submit(page, "What is this?", attach=chair)
    page.wait_for_function(
        "() => document.querySelector('#chat').innerText.includes('Attached chair.obj')"
    )
    wait_idle(page, 3)
    chat = page.locator("#chat").inner_text()
    reply = chat.rsplit("What is this?", 1)[1].strip()
    assert reply, "no description"
    assert page.locator("[data-testid=model3d-download-link]").get_attribute("href") != link
    assert wait_drawn(page, 500) >= 500, "the uploaded chair is not drawn"
    page.screenshot(path=ARTIFACTS / "2-described.png")


def screenshot(
    model: Path,
    out: Path,
    prompt: str = "a mug with a handle",
    max_new_tokens: int | None = None,
    shape: str = "table",
) -> None:
    """Serve ``model``, ask about a procedural ``shape``, then ``prompt`` (if any); save the page
    to ``out``. ``max_new_tokens`` sets the slider first."""
    from meshlm.files import save_mesh
    from meshlm.shapes import make_shape

    work = ARTIFACTS / "screenshot"
    work.mkdir(parents=True, exist_ok=True)
    chair = work / f"{shape}.obj"
    save_mesh(make_shape(shape, 0, max_segments=6).mesh, chair)
    profile = work / "chromium-profile"
    shutil.rmtree(profile, ignore_errors=True)
    with running_server(model, work / "server.log") as url, browser_page(profile) as page:
        page.goto(url, wait_until="load")
        page.wait_for_selector("#prompt textarea")
        if max_new_tokens:
            page.get_by_text("Settings").click()
            page.locator("#max-tokens input[type=number]").fill(str(max_new_tokens))
            page.locator("#max-tokens input[type=number]").press("Enter")
            page.get_by_text("Settings").click()
        submit(page, "What is this?", attach=chair)
        wait_idle(page, 1)
        if prompt:
            submit(page, prompt)
            wait_idle(page, 2)
        wait_drawn(page, 500, seconds=30)
        time.sleep(1)
        page.screenshot(path=out)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Screenshot the web demo (for the README).")
    ap.add_argument("--model", type=Path, required=True, help="model folder to serve")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "web.png")
    ap.add_argument(
        "--prompt", default="a mug with a handle", help="asked after the upload ('' = none)"
    )
    ap.add_argument("--shape", default="table", help="procedural family of the uploaded mesh")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="set the slider first")
    a = ap.parse_args()
    screenshot(a.model, a.out, a.prompt, a.max_new_tokens, a.shape)
    print(a.out)
