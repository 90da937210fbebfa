"""The web page in a real browser: headless Chromium (Debian's package) driven by Selenium,
with a fake camera (a generated .y4m of a synthetic face) and microphone (a .wav tone).

It opens the page, uploads an image and sees boxes and labels, a video of two people and sees
both boxed with a thumbnail and a curve each, turns on the live tab and sees
predictions and the chart update, and saves screenshots under the test's temp folder. Chromium
starts as the docs' screenshots start it (docs.gen.screenshots.chrome: the network blocked).

Needs ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium chromium-driver``)
and the ``selenium`` package (the ``dev`` extra); without them the test skips and says so,
except in CI (``CI=true``), where a missing browser is a failure.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from docs.gen.screenshots import browser_paths as browser_paths_found
from docs.gen.screenshots import chrome, wait_for
from emomm.media.video import write_video
from tests.serve_helpers import face_frame, running_server, tiny_face_checkpoint, write_tone_wav, write_y4m

HOWTO = ("the browser test needs Chromium, its driver and selenium: `apt-get install -y chromium "
         "chromium-driver` and `pip install -e '.[dev]'`, then `make test` or "
         "`python -m pytest tests/test_browser.py` (CI installs them in .ci/run)")


@pytest.fixture(scope="module")
def browser_paths():
    chromium, driver = browser_paths_found()
    if not (chromium and driver):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but Chromium/chromedriver/selenium are missing: " + HOWTO)
        pytest.skip(HOWTO)
    return chromium, driver


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from emomm.serve.app import ServeSettings, create_app
    from emomm.serve.engine import ServeEngine

    ckpt = tiny_face_checkpoint(tmp_path_factory.getbasetemp())
    engine = ServeEngine.from_checkpoint(ckpt)
    with running_server(create_app(engine, ServeSettings(live_max_fps=8))) as url:
        yield url


@pytest.fixture
def driver(browser_paths, tmp_path):
    # the one way the project starts Chromium (the docs' screenshots use it too): network blocked
    # but loopback, so the page and the API docs must work offline
    video = write_y4m(tmp_path / "camera.y4m", [face_frame()] * 10)
    audio = write_tone_wav(tmp_path / "mic.wav")
    drv = chrome(*browser_paths, tmp_path, video=video, audio=audio)
    yield drv
    drv.quit()


def test_page_upload_and_live_in_chromium(server, driver, tmp_path):
    from selenium.webdriver.common.by import By

    photo = tmp_path / "photo.png"
    Image.fromarray(face_frame(400, 300)).save(photo)
    driver.get(server + "/")
    assert "Privacy" in driver.find_element(By.ID, "privacy").text
    wait_for(driver, lambda d: "labels" in d.find_element(By.ID, "model-brief").text, what="the model panel")
    # a face model: a file drop for photos and videos, no text box, no view selector in live
    assert not driver.find_element(By.ID, "text-form").is_displayed()
    assert "photo" in driver.find_element(By.ID, "drop").text and "recording" not in driver.find_element(By.ID, "drop").text
    assert driver.find_element(By.ID, "file").get_attribute("accept") == "image/*,video/*"

    # Upload tab: the face is boxed and labelled
    driver.find_element(By.ID, "file").send_keys(str(photo))
    faces = wait_for(driver, lambda d: int(d.find_element(By.ID, "image-canvas").get_attribute("data-faces") or 0),
                     what="boxes on the uploaded image")
    assert faces >= 1
    labels = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#summary .face-label")]
    assert labels and all(lab in driver.execute_script("return MODEL.labels") for lab in labels)
    # the canvas really has the box drawn (coloured pixels on a grey image)
    coloured = driver.execute_script("""
        const c = document.getElementById('image-canvas'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - d[i+1]) > 40 || Math.abs(d[i+1] - d[i+2]) > 40) n++;
        return n;""")
    assert coloured > 100
    driver.save_screenshot(str(tmp_path / "upload.png"))
    # a bad upload next: its error shows, and the previous result does not stay under it
    bad = tmp_path / "broken.png"
    bad.write_bytes(photo.read_bytes()[:200])
    driver.find_element(By.ID, "file").send_keys(str(bad))
    wait_for(driver, lambda d: d.find_element(By.ID, "error").is_displayed(), what="the error banner")
    assert driver.find_element(By.ID, "summary").text == ""
    assert not driver.find_element(By.ID, "image-canvas").is_displayed()
    driver.find_element(By.ID, "file").send_keys(str(photo))   # and a good one works again
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#summary .face-label"), what="the result again")
    assert not driver.find_element(By.ID, "error").is_displayed()

    # a video of two people: both boxed on a still, a thumbnail each, one curve each, named
    clip = write_video(tmp_path / "two.mp4", [np.concatenate([face_frame(), face_frame(spec_index=2)], axis=1)] * 20,
                       fps=10.0)
    driver.find_element(By.ID, "file").send_keys(str(clip))
    wait_for(driver, lambda d: d.find_element(By.ID, "people").is_displayed(), timeout=90, what="the people of the video")
    assert driver.find_element(By.ID, "people-chart").get_attribute("data-curves") == "2"
    assert driver.find_element(By.ID, "image-canvas").get_attribute("data-faces") == "2"
    thumbs = driver.find_elements(By.CSS_SELECTOR, "#people-cards img.thumb")
    assert len(thumbs) == 2 and all(t.get_attribute("src").startswith("data:image/jpeg") for t in thumbs)
    assert driver.execute_script("return [...document.querySelectorAll('#people-cards img.thumb')]"
                                 ".every((i) => i.complete && i.naturalWidth > 0)")
    names = driver.find_element(By.ID, "people-cards").text
    assert "person 1" in names and "person 2" in names
    driver.save_screenshot(str(tmp_path / "video.png"))

    # Model tab: metrics read from the run's metrics.json
    driver.find_element(By.ID, "tab-model").click()
    assert driver.find_elements(By.CSS_SELECTOR, "#metrics tr")

    # Live tab: fake camera -> WebSocket -> predictions, FPS and a growing chart
    driver.find_element(By.ID, "tab-live").click()
    driver.find_element(By.ID, "live-start").click()
    wait_for(driver, lambda d: int(d.find_element(By.ID, "live-status").get_attribute("data-frames")) >= 3,
             timeout=60, what="live predictions")
    points = int(driver.find_element(By.ID, "live-chart").get_attribute("data-points"))
    wait_for(driver, lambda d: int(d.find_element(By.ID, "live-chart").get_attribute("data-points")) > points,
             what="the live chart to update")
    assert driver.find_elements(By.CSS_SELECTOR, "#live-bars .face-label"), "no face label in the live panel"
    assert "fps" in driver.find_element(By.ID, "live-fps").text
    driver.save_screenshot(str(tmp_path / "live.png"))
    driver.find_element(By.ID, "live-stop").click()
    assert (tmp_path / "upload.png").stat().st_size > 0 and (tmp_path / "live.png").stat().st_size > 0


def test_api_docs_render_with_the_network_blocked(server, driver):
    """/docs (Swagger UI) draws the API's operations from files the server ships."""
    from selenium.webdriver.common.by import By
    driver.get(server + "/docs")
    ops = wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"), what="the API operations")
    assert "/api/predict/image" in {o.text.strip() for o in ops}
