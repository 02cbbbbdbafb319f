"""The browser page (srlib export, srlib/web/) on a 1-megapixel photograph ×2, in headless Chromium.

Target (issue 17): a 1 MP photo ×2 with SP-VDSR in at most 2 s on this 2-core machine. The page
is fed a 1000×1000 photograph through its file input, as a reader would; for each network the
time is the page's own, from the click on Upscale to the network's result on screen (its
Web Workers, one per core, run the strips; bicubic and Lanczos-3 for the comparison follow and
are timed apart). The first run of each network includes compiling its layers; the best of the
rest is the steady figure. Beside it, the same image through ``srlib.inference.upscale``
(PyTorch, 2 threads) in this process, and the ratio. Asserts nothing.
"""
import argparse
import base64
import io
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from headless import Chromium, page_file  # noqa: E402

from srlib import inference, resample, samples, web  # noqa: E402

NAMES = ["spvdsr-x2-291", "espcn-x2-t91", "fsrcnn-x2-291"]
APP = "document.querySelector('.srlib-app')"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per network (default 3)")
    parser.add_argument("--models", nargs="+", default=NAMES, help=f"shipped weights (default {' '.join(NAMES)})")
    args = parser.parse_args()
    photo = resample.resize(samples.astronaut(), size=(1000, 1000), kernel="lanczos3")
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, "PNG")
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as folder, Chromium() as browser:
        browser.open(page_file(Path(folder), web.app_html(args.models)))
        workers = browser.evaluate("navigator.hardwareConcurrency")
        print(f"1000×1000 RGB ×2 → 2000×2000; the page with {workers} workers; PyTorch {torch.__version__}, 2 threads")
        print(f"{'weights':<16} {'page first':>10} {'page best':>10} {'baselines':>10} {'PyTorch':>9} {'page/PyTorch':>13}")
        browser.choose_file(base64.b64encode(buffer.getvalue()).decode(), "photo.png", "image/png", ".srlib-file")
        browser.wait(f"{APP}.dataset.state === 'ready'")
        for name in args.models:
            times, extra = [], []
            for _ in range(args.repeats):
                browser.evaluate(f"document.querySelector('.srlib-model').value = '{name}'; "
                                 f"document.querySelector('.srlib-go').click()")
                started = time.perf_counter()
                browser.wait(f"{APP}.dataset.state === 'done'", timeout=600)
                browser.wait(f"{APP}.dataset.baselines === 'ready'", timeout=600)
                whole = time.perf_counter() - started
                times.append(float(browser.evaluate(f"{APP}.dataset.seconds")))
                extra.append(whole - times[-1])
            model = inference.load_pretrained(name, 2)
            wall, _ = inference.best_time(lambda: inference.upscale(photo, model), 3)
            best = min(times[1:] or times)
            print(f"{name:<16} {times[0]:>9.2f}s {best:>9.2f}s {min(extra):>9.2f}s {wall:>8.2f}s {best / wall:>12.1f}x",
                  flush=True)


if __name__ == "__main__":
    main()
