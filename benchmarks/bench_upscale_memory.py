"""Peak memory of `srlib upscale` on large photographs: bounded by the strips, not the image.

Target (the tool issue): peak RSS at most 2 GB plus the output image, for any input up to
srlib's 100-megapixel limit, x2 to x4. For each size (default 2, 24 and 81 megapixels) a
smooth colour PNG is written once, then `srlib upscale` runs in a fresh process that reports
its own peak RSS (``ru_maxrss``); printed beside the output image's size and the command's
wall time. Asserts nothing.

    python benchmarks/bench_upscale_memory.py [--scale 2] [--megapixels 2 24 81] [--suffix .jpg]
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

RUN = """
import resource, sys
from srlib import cli
status = cli.main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, status)
"""


def photo(megapixels: float, path: Path) -> tuple[int, int]:
    """A smooth RGB PNG of about this many megapixels (4:3), written in bands to spare memory."""
    width = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    height = int(round(megapixels * 1e6 / width))
    image = Image.new("RGB", (width, height))
    x = np.arange(width)
    for top in range(0, height, 1024):
        y = np.arange(top, min(height, top + 1024))[:, None]
        band = np.stack([127 + 100 * np.sin(x / (40 + 9 * c) + y / (31 + 5 * c)) for c in range(3)], axis=-1)
        image.paste(Image.fromarray(band.astype(np.uint8)), (0, top))
    image.save(path, compress_level=1)
    return width, height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--megapixels", type=float, nargs="+", default=[2, 24, 81])
    parser.add_argument("--suffix", default=".png", help="output format (default .png)")
    args = parser.parse_args()
    print(f"srlib upscale --scale {args.scale} (default network), output {args.suffix}")
    with tempfile.TemporaryDirectory() as tmp:
        for megapixels in args.megapixels:
            source, output = Path(tmp) / "in.png", Path(tmp) / f"out{args.suffix}"
            width, height = photo(megapixels, source)
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", RUN, "upscale", str(source), "-o", str(output),
                                   "--scale", str(args.scale)], capture_output=True, text=True)
            seconds = time.perf_counter() - start
            if done.returncode != 0:
                print(f"{width}x{height}: failed ({done.stderr.strip()[-200:]})")
                continue
            peak = int(done.stdout.split()[-2])
            out_bytes = width * height * args.scale ** 2 * 3
            print(f"{width}x{height} ({width * height / 1e6:.0f} MP): peak RSS {peak / 2**30:.2f} GiB, output image "
                  f"{out_bytes / 2**30:.2f} GiB, peak minus output {(peak - out_bytes) / 2**30:.2f} GiB "
                  f"(target <= 2), {seconds:.0f} s")
            output.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
