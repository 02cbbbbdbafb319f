"""The ``srlib`` command: score classic upscalers on the benchmarks and fetch the data.

    srlib eval --dataset Set5 --method bicubic --scale 2 [--json]
    srlib download Set5 [--root DIR] [--base-url URL]

Each subcommand is a ``_cmd_<name>(args) -> int`` function added in ``_parser``. Expected
failures (bad arguments, missing data, a refused download) print one line on stderr and
exit with status 2, never a traceback.
"""
import argparse
import json
import sys

import numpy as np

from . import __version__, data, metrics, resample

# "bicubic" is MATLAB's imresize (the protocol's baseline); every other name is an
# srlib.resample kernel applied with resize().
METHODS = ["bicubic", *sorted(name for name in resample.KERNELS if name != "bicubic")]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (no usage block), still exiting with status 2."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _scale(text: str) -> int:
    """An upscaling factor: an integer of at least 2."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"scale must be an integer, not {text!r}") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"scale must be at least 2, not {value}")
    return value


def upscale(image: np.ndarray, scale: int, method: str) -> np.ndarray:
    """Upscale by ``scale`` with a classic method: "bicubic" (MATLAB) or a resample kernel."""
    if method == "bicubic":
        return resample.imresize(image, scale)
    return resample.resize(image, scale, kernel=method)


def _min_eval_size(scale: int) -> int:
    """Smallest image side that still leaves an 11x11 SSIM window after modcrop and the
    protocol's border crop: side - (scale - 1) - 2 * scale >= 11."""
    return 3 * scale + 10


def _cmd_eval(args: argparse.Namespace) -> int:
    images = data.load_set(args.dataset, min_size=_min_eval_size(args.scale))
    rows = []
    for name, image in images:
        lr, hr = data.make_pair(image, args.scale)
        scores = metrics.evaluate(upscale(lr, args.scale, args.method), hr, args.scale)
        rows.append({"name": name, "psnr": scores["psnr"], "ssim": scores["ssim"]})
    result = {"dataset": str(args.dataset), "scale": args.scale, "method": args.method,
              "psnr": float(np.mean([r["psnr"] for r in rows])),
              "ssim": float(np.mean([r["ssim"] for r in rows])),
              "images": rows}
    print(json.dumps(result) if args.json else _table(result))
    return 0


def _table(result: dict) -> str:
    """A readable per-image table with the means in the last row."""
    width = max(len("mean"), *(len(r["name"]) for r in result["images"]))
    lines = [f"{result['dataset']}  x{result['scale']}  {result['method']}",
             f"{'image':<{width}}  {'PSNR dB':>8}  {'SSIM':>6}"]
    for row in [*result["images"], {"name": "mean", **result}]:
        lines.append(f"{row['name']:<{width}}  {row['psnr']:8.2f}  {row['ssim']:6.4f}")
    return "\n".join(lines)


def _cmd_download(args: argparse.Namespace) -> int:
    folder = data.download(args.name, args.root, base_url=args.base_url)
    print(f"{folder.name}: {len(data.DATASETS[folder.name].files)} files verified in {folder}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="srlib", description="Tools of the book 'Machine Learning Super-Resolution'.")
    parser.add_argument("--version", action="version", version=f"srlib {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    evaluate = commands.add_parser(
        "eval", help="PSNR/SSIM of a classic upscaler under the SR evaluation protocol",
        description="Shrink each image with MATLAB bicubic, upscale it back with METHOD and "
                    "score it against the original (Y channel, border crop = scale).")
    evaluate.add_argument("--dataset", required=True,
                          help=f"a set under ${data.ENV_VAR} ({', '.join(data.DATASETS)}) or a folder of images")
    evaluate.add_argument("--method", default="bicubic", choices=METHODS, metavar="METHOD",
                          help="bicubic (MATLAB imresize, the default) or a kernel of srlib.resample: "
                               + ", ".join(METHODS[1:]))
    evaluate.add_argument("--scale", required=True, type=_scale, help="upscaling factor, an integer >= 2")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    evaluate.set_defaults(run=_cmd_eval)

    download = commands.add_parser("download", help="fetch a benchmark set and verify every file",
                                   description="Fetch a set into ROOT/NAME, checking each file's sha256.")
    download.add_argument("name", metavar="NAME", help=", ".join(data.DATASETS))
    download.add_argument("--root", help=f"data folder (default: ${data.ENV_VAR} or {data.DEFAULT_ROOT})")
    download.add_argument("--base-url", help="a mirror serving each file as BASE_URL/<file name>")
    download.set_defaults(run=_cmd_download)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: sys.argv[1:]); returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, OSError) as exc:
        message = str(exc).replace("\n", " ")
        print(f"srlib: error: {message}", file=sys.stderr)
        return 2
