"""A before/after slider for the HTML book: two images of one scene stacked, a handle that
uncovers one over the other, and menus to choose which two (bicubic, a network, the original).

The result is one self-contained block of HTML: the images are embedded as PNG data and the
behaviour is a few lines of plain JavaScript, so the page works offline and from a static
site. Pixels are enlarged by the browser without smoothing (``image-rendering: pixelated``), so
what differs between two upscalers is what the reader sees. ``tests/test_slider.py`` drives it
in headless Chromium.
"""
from __future__ import annotations

import base64
import hashlib
import html
import io
import json

import numpy as np
from PIL import Image

_SCRIPT = """
(function () {
  var root = document.getElementById("__ID__");
  var sources = JSON.parse(root.getAttribute("data-sources"));
  var under = root.querySelector("img.srlib-under"), over = root.querySelector("img.srlib-over");
  var handle = root.querySelector("input[type=range]"), bar = root.querySelector(".srlib-bar");
  var left = root.querySelector("select.srlib-left"), right = root.querySelector("select.srlib-right");
  function show() {
    var cut = 100 - Number(handle.value);
    over.style.clipPath = "inset(0 " + cut + "% 0 0)";
    bar.style.left = handle.value + "%";
    over.src = sources[left.value];
    under.src = sources[right.value];
    over.alt = left.value; under.alt = right.value;
  }
  handle.addEventListener("input", show);
  left.addEventListener("change", show);
  right.addEventListener("change", show);
  show();
})();
"""


def _png(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image)).save(buffer, "PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def before_after(images: dict[str, np.ndarray], *, left: str | None = None, right: str | None = None,
                 width: int = 560, caption: str = "") -> str:
    """HTML of a slider over uint8 images of one size (name -> image); ``left`` (default: the
    first) is uncovered from the left over ``right`` (default: the second), both changeable."""
    arrays = {name: np.asarray(image) for name, image in images.items()}
    if len(arrays) < 2:
        raise ValueError("a before/after slider needs at least two images")
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1 or any(a.dtype != np.uint8 for a in arrays.values()):
        raise ValueError(f"the slider's images must be uint8 of one shape, got "
                         f"{[(a.shape, str(a.dtype)) for a in arrays.values()]}")
    names = list(arrays)
    left, right = left or names[0], right or names[1]
    for name in (left, right):
        if name not in arrays:
            raise ValueError(f"{name!r} is not one of the images {names}")
    sources = {name: _png(image) for name, image in arrays.items()}
    ident = "srlib-slider-" + hashlib.sha256("".join(sources.values()).encode()).hexdigest()[:12]

    def menu(cls: str, chosen: str) -> str:
        options = "".join(f'<option value="{html.escape(n)}"{" selected" if n == chosen else ""}>{html.escape(n)}</option>'
                          for n in names)
        return f'<select class="{cls}" aria-label="{cls[6:]} image">{options}</select>'

    height = width * shapes.pop()[0] // arrays[names[0]].shape[1]
    image_style = f"display:block;width:{width}px;height:{height}px;image-rendering:pixelated"
    return (
        f'<figure id="{ident}" class="srlib-slider" data-sources="{html.escape(json.dumps(sources))}" '
        f'style="max-width:{width}px;margin:1em auto">'
        f'<div style="position:relative;line-height:0">'
        f'<img class="srlib-under" style="{image_style}" alt="">'
        f'<img class="srlib-over" style="{image_style};position:absolute;top:0;left:0" alt="">'
        f'<div class="srlib-bar" style="position:absolute;top:0;bottom:0;width:2px;margin-left:-1px;'
        f'background:#fff;box-shadow:0 0 3px #000;pointer-events:none"></div></div>'
        f'<div style="display:flex;gap:.5em;align-items:center;margin-top:.4em">{menu("srlib-left", left)}'
        f'<input type="range" min="0" max="100" value="50" style="flex:1" aria-label="divide">'
        f'{menu("srlib-right", right)}</div>'
        + (f'<figcaption>{html.escape(caption)}</figcaption>' if caption else "")
        + f'<script>{_SCRIPT.replace("__ID__", ident)}</script></figure>')
