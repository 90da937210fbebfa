"""Screenshots of the web app for the docs, taken in headless Chromium as the browser test drives it.

`chrome()` is the one way the project starts Chromium (tests/test_browser.py uses it too): headless,
a fake camera and microphone, and every host but loopback unresolvable, so a page that reached for
the network would show it. `take()` serves the zoo's face model on loopback with the browser
test's server and fake camera (tests/serve_helpers.py), uploads a synthetic face, starts the live
tab, and saves what the reader sees into docs/generated/screenshots/ (git-ignored: media are not
tracked). `python -m docs.gen` calls it; without Chromium it says so and the pages show no picture.

    python -m docs.gen.screenshots [OUT_DIR]     # alone: redraw them
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "generated" / "screenshots"
#: What the pictures show; drawn again when any of these is newer than the pictures.
SOURCES = (ROOT / "emomm" / "serve" / "static", ROOT / "emomm" / "zoo" / "models" / "face-fer2013")
CHECKPOINT = "zoo:face-fer2013"
#: The pictures (docs/getting-started/web-app.md shows them): the Upload tab, the Live tab.
SHOTS = ("web-app-upload.png", "web-app-live.png")
HOWTO = ("`apt-get install -y chromium chromium-driver` and the `dev` extra (selenium)")


def browser_paths() -> tuple[str | None, str | None]:
    """(chromium, chromedriver), each None when absent (or selenium is not installed)."""
    if importlib.util.find_spec("selenium") is None:
        return None, None

    def find(name: str) -> str | None:
        return next((p for p in (shutil.which(name), f"/usr/bin/{name}") if p and os.path.exists(p)), None)
    return find("chromium"), find("chromedriver")


def chrome(chromium: str, chromedriver: str, workdir: Path, video: Path | None = None,
           audio: Path | None = None, size: tuple[int, int] = (1200, 1400)):
    """Headless Chromium with the network blocked (loopback only) and, given `video` (.y4m) and
    `audio` (.wav), a fake camera and microphone; the profile lives in `workdir`."""
    os.environ["SE_OFFLINE"] = "true"       # Selenium uses the system driver and never fetches one
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            f"--window-size={size[0]},{size[1]}", "--hide-scrollbars", "--autoplay-policy=no-user-gesture-required",
            "--no-first-run", "--disable-extensions", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", f"--user-data-dir={workdir / 'profile'}",
            # the network blocked: every host but loopback fails to resolve
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"]
    if video is not None:
        args += ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-video-capture={video}"]
        if audio is not None:
            args.append(f"--use-file-for-fake-audio-capture={audio}")
    for arg in args:
        opts.add_argument(arg)
    drv = webdriver.Chrome(options=opts, service=Service(executable_path=chromedriver))
    drv.set_page_load_timeout(30)
    return drv


def wait_for(drv, condition, timeout: float = 40.0, what: str = "condition"):
    """`condition(drv)` once it is truthy; an AssertionError naming `what` and the page's error after
    `timeout` seconds."""
    import time
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = condition(drv)
            if last:
                return last
        except Exception as err:  # element not there yet
            last = err
        time.sleep(0.2)
    try:
        err = drv.find_element("id", "error").text
    except Exception:
        err = None
    raise AssertionError(f"timed out waiting for {what} (last: {last!r}; page error: {err!r})")


def fresh(out: Path = OUT) -> bool:
    """Every picture is there and newer than the web app's files and the model it shows."""
    shots = [out / n for n in SHOTS]
    if not all(p.is_file() for p in shots):
        return False
    newest = max(f.stat().st_mtime for s in SOURCES for f in ([s] if s.is_file() else s.rglob("*")))
    return min(p.stat().st_mtime for p in shots) > newest


def take(out: Path = OUT) -> list[Path]:
    """Draw the screenshots into `out`; the paths written."""
    from PIL import Image
    from selenium.webdriver.common.by import By

    from emomm.serve.app import ServeSettings, create_app
    from emomm.serve.engine import ServeEngine
    from emomm.utils.runtime import resolve_ckpt
    from tests.serve_helpers import face_frame, running_server, write_tone_wav, write_y4m

    chromium, chromedriver = browser_paths()
    out.mkdir(parents=True, exist_ok=True)
    engine = ServeEngine.from_checkpoint(resolve_ckpt(CHECKPOINT, "."))
    with tempfile.TemporaryDirectory() as tmp, \
            running_server(create_app(engine, ServeSettings(live_max_fps=8))) as url:
        tmp = Path(tmp)
        photo = tmp / "photo.png"
        Image.fromarray(face_frame(480, 360)).save(photo)
        video = write_y4m(tmp / "camera.y4m", [face_frame()] * 10)
        drv = chrome(chromium, chromedriver, tmp, video=video, audio=write_tone_wav(tmp / "mic.wav"),
                     size=(1100, 1000))
        try:
            drv.get(url + "/")
            wait_for(drv, lambda d: "labels" in d.find_element(By.ID, "model-brief").text, what="the model panel")
            drv.find_element(By.ID, "file").send_keys(str(photo))
            wait_for(drv, lambda d: d.find_elements(By.CSS_SELECTOR, "#summary .face-label"), what="the labelled face")
            drv.save_screenshot(str(out / "web-app-upload.png"))
            drv.find_element(By.ID, "tab-live").click()
            drv.find_element(By.ID, "live-start").click()
            wait_for(drv, lambda d: int(d.find_element(By.ID, "live-chart").get_attribute("data-points")) >= 6,
                     timeout=60, what="the live chart")
            drv.save_screenshot(str(out / "web-app-live.png"))
            drv.find_element(By.ID, "live-stop").click()
        finally:
            drv.quit()
    return [out / n for n in SHOTS]


def draw(out: Path = OUT) -> str:
    """The screenshots, drawn unless fresh; one line saying what happened. Without Chromium, or
    when it fails, the docs build goes on without pictures (the pages then show none), except
    that in CI (`CI=true`, where .ci/run installs Chromium) a failure to draw them is an error."""
    if not all(browser_paths()):
        return f"screenshots skipped: no Chromium/chromedriver/selenium here ({HOWTO}); the pages show none"
    if fresh(out):
        return f"screenshots up to date in {out}"
    try:
        written = take(out)
    except Exception as err:  # a browser that will not start must not stop a local docs build
        for n in SHOTS:
            (out / n).unlink(missing_ok=True)
        if os.environ.get("CI", "").lower() == "true":
            raise
        return f"screenshots skipped: {type(err).__name__}: {err}"
    return f"screenshots: {len(written)} drawn into {out}"


if __name__ == "__main__":
    print(draw(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else OUT))
