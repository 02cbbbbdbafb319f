"""srlib.web and srlib/web/*.js: the browser's forward passes against PyTorch's (under Node.js),
the page against `srlib upscale` in headless Chromium, and the page's answers to bad input."""
import base64
import io
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from headless import CHROMIUM, Chromium, page_file
from srlib import cli, inference, models, resample, samples, web

ROOT = Path(__file__).resolve().parents[1]
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="needs Node.js")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian: apt install chromium)")

# Node reads a bundle and a job from stdin and prints the engine's answer.
RUN_ENGINE = """
const E = require(process.argv[1]);
const job = JSON.parse(require("fs").readFileSync(0, "utf8"));
const out = {};
for (const m of job.bundle.models) {
  const model = E.decode(m);
  if (job.luma) out[m.name] = Array.from(E.forward(model, Float32Array.from(job.luma), job.h, job.w));
  else out[m.name] = Array.from(E.upscaleStrip(model, job.bundle.colour, Uint8ClampedArray.from(job.rgba),
                                               job.w, job.h, 0, job.h));
}
process.stdout.write(JSON.stringify(out));
"""


def run_engine(job: dict) -> dict:
    done = subprocess.run([NODE, "-e", RUN_ENGINE, str(web.WEB_DIR / "engine.js")], input=json.dumps(job),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def photo(height: int, width: int) -> np.ndarray:
    return np.ascontiguousarray(samples.astronaut()[40:40 + height, 150:150 + width])


def test_every_shipped_network_exports_with_its_geometry():
    exported = web.bundle()
    light = [e.name for e in inference.pretrained_models()
             if models.macs_per_pixel(inference.load_pretrained(e.name, e.scale)) <= web.PAGE_MAX_MACS]
    assert [m["name"] for m in exported["models"]] == light
    spvdsr = next(m for m in exported["models"] if m["name"] == "spvdsr-x2-291")
    assert [layer["op"] for layer in spvdsr["layers"]] == ["skip"] + ["conv"] * 6 + ["shuffle", "add"]
    assert spvdsr["layers"][1]["act"] == "leaky" and spvdsr["layers"][6]["act"] is None
    assert spvdsr["halo"] == 6 and spvdsr["widest"] == 8
    srcnn = next(m for m in exported["models"] if m["name"] == "srcnn-x3-t91")
    assert srcnn["widest"] == 64 * 3 ** 2  # it runs at HR size: 64 channels for each of 9 HR pixels
    weight = base64.b64decode(spvdsr["layers"][1]["weight"])
    assert len(weight) == 4 * 9 * 1 * 8  # float32 (ky, kx, cin, cout)


def test_networks_too_slow_for_a_browser_stay_off_the_page_unless_named(monkeypatch):
    monkeypatch.setattr(web, "PAGE_MAX_MACS", models.macs_per_pixel(models.build("srcnn", 3)) - 1)
    names = [m["name"] for m in web.bundle()["models"]]
    assert names and not any(name.startswith("srcnn") for name in names)
    assert [m["name"] for m in web.bundle(["srcnn-x3-t91"])["models"]] == ["srcnn-x3-t91"]


def test_export_refuses_what_the_engine_cannot_run():
    strided = models.build("espcn", 2)
    strided.body[0].stride = (2, 2)
    with pytest.raises(ValueError, match="cannot export Conv2d"):
        web.export_model(strided)
    with pytest.raises(ValueError, match="cannot export Linear"):
        web.export_model(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="no shipped weights named nope"):
        web.bundle(["nope"])


@needs_node
def test_the_engine_runs_every_shipped_network_as_pytorch_does():
    rng = np.random.default_rng(0)
    luma = rng.random((23, 31), dtype=np.float32)
    bundled = web.bundle()
    found = run_engine({"bundle": bundled, "luma": luma.ravel().tolist(), "h": 23, "w": 31})
    for entry in (e for e in inference.pretrained_models() if e.name in {m["name"] for m in bundled["models"]}):
        model = inference.load_pretrained(entry.name, entry.scale).eval()
        with torch.no_grad():
            expected = model(torch.from_numpy(luma)[None, None])[0, 0].numpy()
        js = np.asarray(found[entry.name], dtype=np.float32).reshape(expected.shape)
        assert np.abs(js - expected).max() < 1e-4, entry.name


@needs_node
def test_the_engine_upscales_a_photo_as_srlib_upscale_does():
    image = photo(45, 61)
    names = ["spvdsr-x3-291", "fsrcnn-x2-291", "srcnn-x3-t91"]
    rgba = np.concatenate([image, np.full((*image.shape[:2], 1), 255, np.uint8)], axis=2)
    found = run_engine({"bundle": web.bundle(names), "rgba": rgba.ravel().tolist(), "h": 45, "w": 61})
    for name in names:
        entry = next(e for e in inference.pretrained_models() if e.name == name)
        expected = inference.upscale(image, inference.load_pretrained(name, entry.scale))
        js = np.asarray(found[name], dtype=np.uint8).reshape(*expected.shape[:2], 4)
        assert (js[..., 3] == 255).all()
        assert np.abs(js[..., :3].astype(int) - expected).max() <= 1, name  # float32 rounding, one level
        assert psnr(js[..., :3], expected) >= 45, name


STATE = "document.querySelector('.srlib-app').dataset.state"
STATUS = "document.querySelector('.srlib-status').textContent"
# The pixels of the comparison's right-hand canvas, as base64 RGBA.
PIXELS = """(() => {
  const canvas = document.querySelector(".srlib-under");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let text = "";
  for (let i = 0; i < data.length; i += 32768) text += String.fromCharCode.apply(null, data.subarray(i, i + 32768));
  return [canvas.width, canvas.height, btoa(text)];
})()"""


def book_block() -> str:
    """The browser block as the book stores it (the upscale page's output) and renders it."""
    notebook = json.loads((ROOT / "book" / "upscale_your_own.ipynb").read_text(encoding="utf-8"))
    found = [output["data"]["text/html"] for cell in notebook["cells"] if cell["cell_type"] == "code"
             for output in cell["outputs"] if "srlib-weights" in "".join(output.get("data", {}).get("text/html", ""))]
    assert len(found) == 1, "the upscale page holds the browser block once"
    return "".join(found[0])


def test_the_book_holds_the_current_browser_block():
    assert book_block() == web.app_html()


def encoded(image: np.ndarray | bytes, fmt: str = "PNG", **options) -> str:
    if isinstance(image, bytes):
        return base64.b64encode(image).decode()
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, fmt, **options)
    return base64.b64encode(buffer.getvalue()).decode()


def choose(browser: Chromium, data: str, name: str, kind: str) -> str:
    browser.choose_file(data, name, kind, ".srlib-file")
    browser.wait(f"['ready', 'error'].includes({STATE})")
    return browser.evaluate(STATUS)


def upscale(browser: Chromium, name: str) -> str:
    browser.evaluate(f"document.querySelector('.srlib-model').value = '{name}'; document.querySelector('.srlib-go').click()")
    browser.wait(f"['done', 'error'].includes({STATE})", timeout=300)
    return browser.evaluate(STATUS)


def canvas(browser: Chromium, right: str) -> np.ndarray:
    browser.evaluate(f"(() => {{ const r = document.querySelector('.srlib-right'); r.value = '{right}'; "
                     f"r.dispatchEvent(new Event('change')); }})()")
    width, height, data = browser.evaluate(PIXELS)
    return np.frombuffer(base64.b64decode(data), np.uint8).reshape(height, width, 4)


@needs_chromium
def test_the_page_upscales_a_photo_in_a_real_browser_as_srlib_upscale_does(tmp_path):
    image = photo(90, 120)
    with Chromium() as browser:
        browser.open(page_file(tmp_path, book_block()))
        assert choose(browser, encoded(image), "astronaut.png", "image/png").startswith("astronaut.png: 120×90.")
        for name, scale in (("spvdsr-x2-291", 2), ("fsrcnn-x3-291", 3)):
            assert f"→ {120 * scale}×{90 * scale} with {name}" in upscale(browser, name)
            browser.wait("document.querySelector('.srlib-app').dataset.baselines === 'ready'")
            menu = browser.evaluate("[...document.querySelector('.srlib-left').options].map((o) => o.value)")
            assert menu == [name, "Lanczos-3", "bicubic"]
            expected = inference.upscale(image, inference.load_pretrained(name, scale))
            network = canvas(browser, name)
            assert psnr(network[..., :3], expected) >= 45 and np.abs(network[..., :3].astype(int) - expected).max() <= 1
            bicubic = canvas(browser, "bicubic")[..., :3]  # the baselines are srlib's too
            assert np.abs(bicubic.astype(int) - resample.resize(image, scale, kernel="bicubic")).max() <= 1
            link = browser.evaluate("[document.querySelector('.srlib-download').href, document.querySelector('.srlib-download').download]")
            assert link[0].startswith("blob:") and link[1] == f"astronaut-x{scale}-{name}.png"


@needs_chromium
def test_the_page_answers_bad_input_with_one_clear_message(tmp_path):
    frames = [Image.fromarray(np.full((16, 16, 3), v, np.uint8)) for v in (0, 128, 255)]
    animation = io.BytesIO()
    frames[0].save(animation, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Chromium() as browser:
        browser.open(page_file(tmp_path, web.app_html(["spvdsr-x4-291"])))
        said = choose(browser, encoded(b"just some text\n"), "notes.txt", "text/plain")
        assert said == "Cannot use notes.txt: not an image this browser can read."
        said = choose(browser, encoded(photo(20, 20), "TIFF"), "scan.tiff", "image/tiff")
        assert said == "Cannot use scan.tiff: not an image this browser can read."
        said = choose(browser, encoded(np.zeros((2000, 4100, 3), np.uint8)), "huge.png", "image/png")
        assert said.startswith("Cannot use huge.png: 4100×2000 is too large for this page")
        said = choose(browser, encoded(animation.getvalue()), "anim.gif", "image/gif")
        assert said == "Cannot use anim.gif: an animation of 3 frames: this page enlarges still images only."
        assert choose(browser, encoded(np.zeros((1500, 1500, 3), np.uint8)), "big.png", "image/png").startswith("big.png")
        said = upscale(browser, "spvdsr-x4-291")
        assert said.startswith("×4 would make 6000×6000 = 36.0 megapixels, more than this page's 32")
        assert browser.evaluate("document.querySelector('.srlib-status').classList.contains('srlib-error')")


def test_export_writes_a_page_or_a_bundle(tmp_path, capsys):
    assert cli.main(["export", str(tmp_path / "page.html"), "--models", "spvdsr-x2-291"]) == 0
    page = (tmp_path / "page.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "srlibEngine" in page and "http" not in page.replace("http-equiv", "")
    assert cli.main(["export", str(tmp_path / "w.json")]) == 0
    assert len(json.loads((tmp_path / "w.json").read_text())["models"]) == len(web.bundle()["models"])
    assert cli.main(["export", str(tmp_path / "w.txt")]) == 2
    assert "write a .html page or a .json weights bundle" in capsys.readouterr().err
