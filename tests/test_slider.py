"""srlib.slider: the book's before/after comparison, checked as HTML and driven in headless Chromium."""
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from srlib.slider import before_after

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def scene(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (30, 40, 3), dtype=np.uint8)


def test_the_slider_embeds_every_image_and_refuses_what_it_cannot_compare():
    page = before_after({"bicubic": scene(0), "network": scene(1), "original": scene(2)}, caption="a & b")
    sources = json.loads(re.search(r'data-sources="([^"]*)"', page).group(1).replace("&quot;", '"'))
    assert sorted(sources) == ["bicubic", "network", "original"]
    assert all(uri.startswith("data:image/png;base64,") for uri in sources.values())
    assert "http" not in page.replace("data:image", "")  # nothing fetched: works offline
    assert "<figcaption>a &amp; b</figcaption>" in page
    with pytest.raises(ValueError, match="at least two"):
        before_after({"one": scene(0)})
    with pytest.raises(ValueError, match="one shape"):
        before_after({"a": scene(0), "b": scene(1)[:20]})
    with pytest.raises(ValueError, match="'nope' is not one of"):
        before_after({"a": scene(0), "b": scene(1)}, left="nope")


DRIVE = """
<pre id="result"></pre>
<script>
window.addEventListener("load", async function () {
  var root = document.querySelector(".srlib-slider");
  var over = root.querySelector("img.srlib-over"), under = root.querySelector("img.srlib-under");
  var handle = root.querySelector("input[type=range]"), left = root.querySelector("select.srlib-left");
  var found = {start_over: over.alt, start_under: under.alt, start_clip: over.style.clipPath};
  handle.value = 20; handle.dispatchEvent(new Event("input"));
  found.clip_at_20 = over.style.clipPath;
  left.value = "original"; left.dispatchEvent(new Event("change"));
  await over.decode(); await under.decode();
  found.over_after_change = over.alt;
  found.size = [over.naturalWidth, over.naturalHeight, under.naturalWidth, under.naturalHeight];
  found.shown = [over.getBoundingClientRect().width, under.getBoundingClientRect().width];
  document.getElementById("result").textContent = JSON.stringify(found);
});
</script>
"""


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian: apt install chromium)")
def test_the_slider_works_in_a_real_browser_offline(tmp_path):
    page = tmp_path / "slider.html"
    page.write_text("<!doctype html><html><body>"
                    + before_after({"bicubic": scene(0), "network": scene(1), "original": scene(2)}, width=400)
                    + DRIVE + "</body></html>", encoding="utf-8")
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
                          page.as_uri()], capture_output=True, text=True, timeout=120)
    found = json.loads(re.search(r'<pre id="result">(.*?)</pre>', out.stdout, re.S).group(1))
    assert (found["start_over"], found["start_under"]) == ("bicubic", "network")
    assert "50%" in found["start_clip"] and "80%" in found["clip_at_20"]
    assert found["over_after_change"] == "original"
    assert found["size"] == [40, 30, 40, 30]  # the embedded PNGs decode, at their own size
    assert found["shown"] == [400, 400]  # and are enlarged to the slider's width
