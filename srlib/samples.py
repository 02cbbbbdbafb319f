"""Sample images the book can always use: freely licensed photographs and generated line art.

The photographs are the public-domain and CC0 pictures bundled inside scikit-image, so they
work offline. The article trained on 32 unpublished line-art drawings from animated content;
``line_art`` draws a deterministic stand-in: flat colour fills with cel shadows, ink outlines
and tapered strokes, and hatching, rendered at 4x and box-downsampled so edges are
anti-aliased the way a real drawing's are.
"""
from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageChops, ImageDraw

SAMPLE_LICENSES: dict[str, str] = {
    "astronaut": "Eileen Collins, NASA Great Images (flic.kr/p/r9qvLn); public domain",
    "coffee": "Coffee cup at Pikolo Espresso Bar, photo by Rachel Michetti; CC0",
    "chelsea": "Chelsea the cat, photo by Stefan van der Walt; CC0",
    "rocket": "DSCOVR launch on a Falcon 9, SpaceX Photos on Flickr; public domain",
    "hubble_deep_field": "Hubble eXtreme Deep Field, NASA/HubbleSite; public domain",
}

SUPERSAMPLING = 4
"""Line art is drawn at this many times the output size, then averaged over SxS blocks."""

TRAIN_SEED0 = 0
TEST_SEED0 = 1000
"""Training drawings use seeds 0..999 and test drawings seeds 1000 and up, so they never overlap."""


def _skimage_data():
    try:
        import skimage.data
    except ImportError as err:
        raise ModuleNotFoundError(
            "the sample photographs come with scikit-image: pip install scikit-image") from err
    return skimage.data


def photographs() -> list[tuple[str, np.ndarray]]:
    """The freely licensed colour photographs of SAMPLE_LICENSES as (name, uint8 RGB) pairs."""
    data = _skimage_data()
    return [(name, np.ascontiguousarray(getattr(data, name)()[..., :3], dtype=np.uint8))
            for name in SAMPLE_LICENSES]


def astronaut() -> np.ndarray:
    """Eileen Collins (NASA, public domain), 512x512 RGB: the book's stand-in for "Lena"."""
    return np.ascontiguousarray(_skimage_data().astronaut(), dtype=np.uint8)


# --- line art: geometry (in output pixels) --------------------------------------------------

def _bezier(p0, p1, p2, p3, n: int) -> np.ndarray:
    """n points along the cubic Bezier curve with control points p0..p3."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    return ((1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1
            + 3 * (1 - t) * t ** 2 * p2 + t ** 3 * p3)


def _closed_spline(knots: np.ndarray, per_segment: int = 12) -> np.ndarray:
    """A smooth closed curve through knots (Catmull-Rom, written as cubic Bezier pieces)."""
    pieces = []
    k = len(knots)
    for i in range(k):
        a, b, c, d = knots[i - 1], knots[i], knots[(i + 1) % k], knots[(i + 2) % k]
        pieces.append(_bezier(b, b + (c - a) / 6, c - (d - b) / 6, c, per_segment + 1)[:-1])
    return np.concatenate(pieces)


def _ellipse(centre, rx: float, ry: float, angle: float, n: int = 72) -> np.ndarray:
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([x * c - y * s, x * s + y * c], axis=1) + centre


def _random_shape(rng: np.random.Generator, centre, r: float) -> np.ndarray:
    """A closed outline around centre of radius ~r: blob, ellipse, polygon or box."""
    kind = rng.choice(["blob", "blob", "ellipse", "polygon", "box"])
    if kind == "ellipse":
        return _ellipse(centre, r, r * rng.uniform(0.4, 1.0), rng.uniform(0, np.pi))
    if kind == "box":
        rx, ry = r, r * rng.uniform(0.5, 1.4)
        corners = np.array([[-rx, -ry], [rx, -ry], [rx, ry], [-rx, ry]])
        a = rng.uniform(-0.25, 0.25)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        return corners @ rot.T + centre
    k = rng.integers(3, 8) if kind == "polygon" else rng.integers(5, 9)
    angles = np.sort(rng.uniform(0, 2 * np.pi) + np.arange(k) * 2 * np.pi / k
                     + rng.uniform(-0.25, 0.25, k) * 2 * np.pi / k)
    radii = r * rng.uniform(0.65, 1.15, k)
    knots = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1) + centre
    return knots if kind == "polygon" else _closed_spline(knots)


def _curve(rng: np.random.Generator, start, length: float, angle: float, n: int = 28,
           bend: float = 0.5) -> np.ndarray:
    """A cubic Bezier of the given chord length and direction, bent by up to bend * length."""
    direction = np.array([np.cos(angle), np.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    end = start + length * direction
    bends = rng.uniform(-bend, bend, 2) * length
    return _bezier(start, start + length / 3 * direction + bends[0] * normal,
                   start + 2 * length / 3 * direction + bends[1] * normal, end, n)


def _taper(rng: np.random.Generator, n: int, width: float) -> np.ndarray:
    """Pen pressure along a stroke: thin at both ends, widest at a random point."""
    t = np.linspace(0.0, 1.0, n) ** rng.uniform(0.6, 1.6)
    return width * (0.15 + 0.85 * np.sin(np.pi * t) ** 0.8)


def _wobble(rng: np.random.Generator, n: int, width: float) -> np.ndarray:
    """Slowly varying width around a closed outline."""
    t = np.linspace(0.0, 2 * np.pi, n)
    return width * (1 + 0.35 * np.sin(rng.integers(1, 4) * t + rng.uniform(0, 2 * np.pi)))


# --- line art: rasterisation (Pillow at SUPERSAMPLING x) ------------------------------------

def _fill(draw: ImageDraw.ImageDraw, pts: np.ndarray, fill, origin=(0.0, 0.0)) -> None:
    draw.polygon([tuple(p) for p in ((pts - origin) * SUPERSAMPLING).tolist()], fill=fill)


def _stroke(draw: ImageDraw.ImageDraw, pts: np.ndarray, widths: np.ndarray, fill,
            origin=(0.0, 0.0)) -> None:
    """A variable-width stroke: one trapezoid per segment plus a round join at every point."""
    p = (np.asarray(pts, dtype=float) - origin) * SUPERSAMPLING
    r = np.maximum(np.asarray(widths, dtype=float) * SUPERSAMPLING / 2, 0.5)
    d = np.diff(p, axis=0)
    normal = np.stack([-d[:, 1], d[:, 0]], axis=1) / np.maximum(np.hypot(*d.T), 1e-9)[:, None]
    left0, right0 = p[:-1] + normal * r[:-1, None], p[:-1] - normal * r[:-1, None]
    left1, right1 = p[1:] + normal * r[1:, None], p[1:] - normal * r[1:, None]
    quads = np.stack([left0, left1, right1, right0], axis=1).tolist()
    for (x, y), radius in zip(p.tolist(), r.tolist()):
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)
    for quad in quads:
        draw.polygon([tuple(q) for q in quad], fill=fill)


def _paint_inside(img: Image.Image, region: np.ndarray, colour, strokes) -> None:
    """Draw strokes [(pts, widths), ...] in colour, clipped to the closed outline region."""
    h, w = img.height, img.width
    lo = np.floor(region.min(axis=0) * SUPERSAMPLING).astype(int).clip(0, [w, h])
    hi = np.ceil(region.max(axis=0) * SUPERSAMPLING + 1).astype(int).clip(0, [w, h])
    size = tuple((hi - lo).tolist())
    if min(size) <= 0:
        return
    origin = lo / SUPERSAMPLING
    clip, ink = Image.new("L", size, 0), Image.new("L", size, 0)
    _fill(ImageDraw.Draw(clip), region, 255, origin)
    ink_draw = ImageDraw.Draw(ink)
    for pts, widths in strokes:
        _stroke(ink_draw, pts, widths, 255, origin)
    img.paste(colour, (*lo.tolist(), *hi.tolist()), ImageChops.multiply(clip, ink))


def _cel_shadow(img: Image.Image, shape: np.ndarray, shift: np.ndarray, colour) -> None:
    """Shade the part of shape not covered by shape moved towards the light: a flat cel shadow."""
    h, w = img.height, img.width
    lo = np.floor(shape.min(axis=0) * SUPERSAMPLING).astype(int).clip(0, [w, h])
    hi = np.ceil(shape.max(axis=0) * SUPERSAMPLING + 1).astype(int).clip(0, [w, h])
    size = tuple((hi - lo).tolist())
    if min(size) <= 0:
        return
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    _fill(draw, shape, 255, lo / SUPERSAMPLING)
    _fill(draw, shape + shift, 0, lo / SUPERSAMPLING)
    img.paste(colour, (*lo.tolist(), *hi.tolist()), mask)


def _downsample(big: np.ndarray) -> np.ndarray:
    """Mean over SxS blocks, rounded to uint8: the anti-aliasing step."""
    s = SUPERSAMPLING
    h, w, c = big.shape[0] // s, big.shape[1] // s, big.shape[2]
    total = big.reshape(h, s, w, s, c).sum(axis=(1, 3), dtype=np.uint32)
    return ((total + s * s // 2) // (s * s)).astype(np.uint8)


# --- line art: composition -------------------------------------------------------------------

def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    rgb = colorsys.hsv_to_rgb(h % 1.0, min(s, 1.0), min(v, 1.0))
    return tuple(int(round(255 * c)) for c in rgb)


def _check_size(size) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (height, width), got {size!r}") from None
    if h < 16 or w < 16:
        raise ValueError(f"line art needs a size of at least 16x16 pixels, got {h}x{w}")
    return h, w


def line_art(seed: int, size: tuple[int, int] = (360, 640), *, colour: bool = True) -> np.ndarray:
    """A generated cel-animation-style drawing, uint8 RGB (H, W, 3), fully determined by seed.

    Flat fills with cel shadows, ink outlines, tapered Bezier strokes and hatching, drawn at
    4x and box-downsampled. colour=False gives the same drawing in grey (R = G = B).
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    h, w = _check_size(size)
    rng = np.random.default_rng(seed)
    unit = min(h, w)

    def tone(rgb):
        if colour:
            return rgb
        grey = int(round(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]))
        return (grey, grey, grey)

    base_hue = rng.uniform()
    ink = tone(_hsv(base_hue + 0.5, rng.uniform(0.2, 0.5), rng.uniform(0.05, 0.16)))
    ink_width = rng.uniform(1.2, 2.6)
    light = rng.normal(size=2)
    light /= np.linalg.norm(light)

    def fill_colour():
        return _hsv(base_hue + rng.choice([0.0, 0.08, 0.33, 0.5, 0.6, 0.92]) + rng.normal(0, 0.03),
                    rng.uniform(0.25, 0.75), rng.uniform(0.6, 0.97))

    def shadow_of(rgb):
        hh, ss, vv = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
        return _hsv(hh + 0.03, ss * 1.15 + 0.05, vv * 0.72)

    def hatching(region, r):
        angle = rng.uniform(0, np.pi)
        along = np.array([np.cos(angle), np.sin(angle)])
        across = np.array([-along[1], along[0]])
        centre = region.mean(axis=0) - light * r * 0.4
        spacing = rng.uniform(3.0, 6.0)
        count = int(rng.integers(6, 16))
        strokes = []
        for i in range(count):
            length = r * rng.uniform(0.8, 1.2) * np.sin(np.pi * (i + 0.5) / count) ** 0.5
            mid = centre + (i - count / 2) * spacing * across + rng.normal(0, 0.7, 2)
            pts = _curve(rng, mid - along * length / 2, length, angle + rng.normal(0, 0.03), n=8,
                         bend=0.06)
            strokes.append((pts, _taper(rng, len(pts), ink_width * rng.uniform(0.4, 0.8))))
        return strokes

    sky = _hsv(base_hue + rng.uniform(-0.1, 0.1), rng.uniform(0.08, 0.3), rng.uniform(0.88, 0.99))
    img = Image.new("RGB", (w * SUPERSAMPLING, h * SUPERSAMPLING), tone(sky))
    draw = ImageDraw.Draw(img)

    if rng.uniform() < 0.75:  # ground or wall with a wavy edge
        x = np.linspace(-10, w + 10, 60)
        edge = h * rng.uniform(0.45, 0.75)
        for _ in range(2):
            amplitude, waves = rng.uniform(0.005, 0.05), rng.uniform(0.5, 3)
            phase = rng.uniform(0, 6)
            edge = edge + h * amplitude * np.sin(2 * np.pi * waves * x / w + phase)
        top = np.stack([x, edge], axis=1)
        ground = np.concatenate([top, [[w + 10, h + 10], [-10, h + 10]]])
        ground_colour = fill_colour()
        _fill(draw, ground, tone(ground_colour))
        if rng.uniform() < 0.5:
            _paint_inside(img, ground, tone(shadow_of(ground_colour)), hatching(ground, unit * 0.3))
        _stroke(draw, top, _wobble(rng, len(top), ink_width), ink)

    def figure(centre, r, nested: bool):
        shape = _random_shape(rng, centre, r)
        body = fill_colour()
        _fill(draw, shape, tone(body))
        if rng.uniform() < 0.65:
            _cel_shadow(img, shape, light * r * rng.uniform(0.2, 0.45), tone(shadow_of(body)))
        if rng.uniform() < 0.35:
            _paint_inside(img, shape, ink, hatching(shape, r))
        if rng.uniform() < 0.5:  # folds and details inside the shape
            details = []
            for _ in range(rng.integers(1, 4)):
                pts = _curve(rng, centre + rng.normal(0, r * 0.3, 2), r * rng.uniform(0.3, 0.8),
                             rng.uniform(0, 2 * np.pi))
                details.append((pts, _taper(rng, len(pts), ink_width * rng.uniform(0.6, 1.2))))
            _paint_inside(img, shape, ink, details)
        if nested and rng.uniform() < 0.45:  # parts such as eyes, windows or patches
            for _ in range(rng.integers(1, 3)):
                figure(centre + rng.uniform(-0.4, 0.4, 2) * r, r * rng.uniform(0.15, 0.35), False)
        outline = np.concatenate([shape, shape[:1]])
        _stroke(draw, outline, _wobble(rng, len(outline), ink_width * rng.uniform(0.8, 1.4)), ink)

    for r in np.sort(unit * rng.uniform(0.07, 0.28, rng.integers(5, 10)))[::-1]:
        figure(rng.uniform([0.1 * w, 0.1 * h], [0.9 * w, 0.9 * h]), r, True)

    for _ in range(rng.integers(3, 8)):  # free strokes, sometimes in bundles like hair or motion
        start = rng.uniform([0, 0], [w, h])
        length, angle = unit * rng.uniform(0.15, 0.6), rng.uniform(0, 2 * np.pi)
        base = _curve(rng, start, length, angle)
        offset = np.array([-np.sin(angle), np.cos(angle)]) * rng.uniform(3, 8)
        for k in range(rng.integers(1, 5)):
            pts = base + k * offset + np.cumsum(rng.normal(0, 0.15, base.shape), axis=0)
            _stroke(draw, pts, _taper(rng, len(pts), ink_width * rng.uniform(1.0, 2.2)), ink)

    for _ in range(rng.integers(0, 4)):  # ink dots such as pupils
        _fill(draw, _ellipse(rng.uniform([0, 0], [w, h]), *rng.uniform(1.5, 4.0, 2), 0.0, 24), ink)

    return _downsample(np.asarray(img))


def line_art_set(n: int, seed: int = 0,
                 size: tuple[int, int] = (360, 640)) -> list[tuple[str, np.ndarray]]:
    """n drawings with seeds seed .. seed+n-1, named "lineart-<seed>" (at least three digits)."""
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    return [(f"lineart-{s:03d}", line_art(s, size)) for s in range(seed, seed + n)]


def line_art_train(n: int = 32, size: tuple[int, int] = (360, 640)) -> list[tuple[str, np.ndarray]]:
    """The training drawings: seeds 0 .. n-1 (n at most 1000, so they never meet the test seeds)."""
    if n > TEST_SEED0 - TRAIN_SEED0:
        raise ValueError(f"at most {TEST_SEED0 - TRAIN_SEED0} training drawings, asked for {n}")
    return line_art_set(n, TRAIN_SEED0, size)


def line_art_test(n: int = 4, size: tuple[int, int] = (360, 640)) -> list[tuple[str, np.ndarray]]:
    """The held-out drawings: seeds 1000 .. 1000+n-1, disjoint from line_art_train."""
    return line_art_set(n, TEST_SEED0, size)
