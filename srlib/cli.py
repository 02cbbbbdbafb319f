"""The ``srlib`` command: upscale images, train networks, score upscalers, fetch the data.

    srlib upscale IN -o OUT --model NAME --scale S [--weights FILE]
    srlib train --model NAME --scale S --data NAME_OR_DIR --out DIR --epochs N
    srlib eval --dataset Set5 --method bicubic --scale 2 [--json]
    srlib eval --dataset Set5 --model NAME --weights FILE --scale 2 [--json]
    srlib models [--json]
    srlib download Set5 [--root DIR] [--base-url URL]
    srlib reproduce [RUN ...] [--list] [--out DIR] [--dry-run]
    srlib sprint --images ARCHIVE --out DIR [--minutes 8] [--workers 6] [--tiny] | --pack ARCHIVE

Each subcommand is a ``_cmd_<name>(args) -> int`` function added in ``_parser``. Expected
failures (bad arguments, missing data, a refused download, an unreadable image, unusable
weights, a diverging run) print one line on stderr and exit with status 2, never a
traceback, and leave no partial output file.
"""
import argparse
import ast
import json
import os
import sys
from functools import partial
from pathlib import Path

import numpy as np

from . import __version__, data, imageio, inference, losses, metrics, models, reproduce, resample, training, video

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


def _quality(text: str) -> int:
    """A JPEG/WebP quality: an integer from 1 to 100."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"quality must be an integer, not {text!r}") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"quality must lie from 1 to 100, not {value}")
    return value


def _min_eval_size(scale: int) -> int:
    """Smallest image side that still leaves an 11x11 SSIM window after modcrop and the
    protocol's border crop: side - (scale - 1) - 2 * scale >= 11."""
    return 3 * scale + 10


def _option(text: str) -> tuple[str, object]:
    """A network option KEY=VALUE; VALUE is a Python literal (3, 0.1, (8, 4)) or else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"option must look like key=value, not {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def _network(args: argparse.Namespace):
    """The network a command names: --weights FILE (checked against --model and --scale) or
    the pretrained weights listed for --model (a network or a shipped weights name; for
    upscale, without --model, the default for --scale), on --device (checked first: one line
    for a device this machine lacks; default: the fastest present); on a CPU, with oneDNN at
    AVX2 for a narrow network (``inference.prefer_avx2_for``)."""
    device = training.resolve_device(args.device) if args.device else training.default_device()
    if args.weights is not None:
        shipped = {entry.name: entry.model for entry in inference.pretrained_models()}
        network = inference.load_weights(args.weights, model=shipped.get(args.model, args.model), scale=args.scale)
    else:
        name = args.model or inference.default_pretrained(args.scale).name
        network = inference.load_pretrained(name, args.scale)
    if device.type == "cpu":
        inference.prefer_avx2_for(network)
    return network.to(device)


def _cmd_upscale(args: argparse.Namespace) -> int:
    source, output = Path(args.input), Path(args.output)
    if output.exists() and source.exists() and output.samefile(source) and not args.force:
        raise ValueError(f"{output}: is the input; write elsewhere or add --force to replace it")
    if video.is_video(source) or video.is_video(output):
        return _upscale_video(args, source, output)
    output_format = imageio.output_format(output)
    if args.quality is not None and output_format not in ("JPEG", "WEBP"):
        raise ValueError(f"--quality applies to JPEG and WebP output, not {output_format}")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"{output.parent}: no such folder for the output")
    info = imageio.read_info(source)
    imageio.output_format(output, info.width * args.scale, info.height * args.scale)  # before any work
    network = _network(args)
    image = imageio.read_image(source)
    if info.bits > 8:
        print(f"srlib: warning: {source} has {info.bits} bits per channel; it is upscaled and written "
              f"at 8 bits", file=sys.stderr)
    try:
        result = inference.upscale(image, network, tile=args.tile or "auto")
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    imageio.write_image(output, result, quality=args.quality, info=info)
    print(f"{output}: {result.shape[1]}x{result.shape[0]} pixels ({network.name} x{network.scale})")
    return 0


def _upscale_video(args: argparse.Namespace, source: Path, output: Path) -> int:
    """`srlib upscale` for a video: frames streamed through the network (srlib.video)."""
    if not (video.is_video(source) and video.is_video(output)):
        raise ValueError(f"a video goes to a video and an image to an image ({source.name} -> {output.name}; "
                         f"videos: {', '.join(video.SUFFIXES)})")
    if args.quality is not None:
        raise ValueError("--quality applies to JPEG and WebP images; videos are H.264 at CRF 18")
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such video file")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"{output.parent}: no such folder for the output")
    network = _network(args)
    report = video.upscale_video(source, output, network, tile=args.tile)
    print(f"{output}: {report.frames} frames of {report.width}x{report.height} ({network.name} x{network.scale}), "
          f"{report.fps:.1f} frames/s")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    settings = {name: getattr(args, name) for name in
                ("epochs", "iterations", "seconds", "seed", "device", "batch_size", "patch_size",
                 "recipe", "lr", "schedule", "degrade", "val", "val_every", "patches_per_image", "loss")
                if getattr(args, name) is not None}
    if args.rescale:
        settings["rescale"] = tuple(args.rescale)
    if args.mix_scales:
        settings["mix_scales"] = tuple(args.mix_scales)
    if args.channels_last:
        settings["channels_last"] = True
    if args.zero_last:
        settings["zero_last"] = True
    config = training.TrainConfig(model=args.model, scale=args.scale, options=dict(args.option),
                                  data=args.data, **settings)
    out = Path(args.out)
    result = training.train(config, out, progress=not args.quiet)
    last = result.history[-1] if result.history else {}
    if not result.trained:
        print(f"{out}: already trained to this budget (epoch {last.get('epoch')}, iteration "
              f"{last.get('iteration')}, {last.get('wall_time', 0):.0f} s); nothing to do, {out / 'weights.pt'} kept")
        return 0
    metadata = {"training_data": args.data, "validation_data": args.val, "val_psnr": result.val_psnr,
                "epochs": last.get("epoch"), "iterations": last.get("iteration"),
                "recipe": config.recipe or config.model, "seed": config.seed,
                "history": training.HISTORY, "provenance": result.provenance}
    if config.mix_scales:
        metadata["scales"] = sorted(config.mix_scales)
    inference.save_weights(out / "weights.pt", result.model, metadata=metadata)
    score = f", validation PSNR {result.val_psnr:.2f} dB" if result.val_psnr is not None else ""
    print(f"{out / 'weights.pt'}: {config.model} x{config.scale} after {metadata['iterations']} "
          f"iterations{score}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    if args.model is None and args.weights is None:
        method = args.method or "bicubic"
        images = data.load_set(args.dataset, min_size=_min_eval_size(args.scale))
        scores = metrics.evaluate_set(images, args.scale, partial(upscale, method=method))
    else:
        if args.method is not None:
            raise ValueError("give --method for a classic upscaler or --model/--weights for a network, not both")
        network = _network(args)
        method = network.name
        scores = _network_scores(network, args.dataset, args.scale)
    result = {"dataset": str(args.dataset), "scale": args.scale, "method": method, **scores}
    print(json.dumps(result) if args.json else _table(result))
    return 0


def _network_scores(network, dataset: str, scale: int) -> dict:
    """``evaluate_set``'s result for a network, scored on its luma output directly (protocol
    step 3: the model's output rounded) rather than through an RGB image."""
    # Each LR side (after modcrop) must also hold the network's receptive field.
    min_size = max(_min_eval_size(scale), (inference.min_input_size(network) + 1) * scale - 1)
    rows = []
    for name, image in data.load_set(dataset, min_size=min_size):
        lr, hr = data.make_pair(image, scale)
        rows.append({"name": name, **inference.protocol_scores(network, lr, hr)})
    means = {key: float(np.mean([row[key] for row in rows])) for key in ("psnr", "ssim")}
    return {**means, "images": rows}


def _table(result: dict) -> str:
    """A readable per-image table with the means in the last row."""
    width = max(len("mean"), *(len(r["name"]) for r in result["images"]))
    lines = [f"{result['dataset']}  x{result['scale']}  {result['method']}",
             f"{'image':<{width}}  {'PSNR dB':>8}  {'SSIM':>6}"]
    for row in [*result["images"], {"name": "mean", **result}]:
        lines.append(f"{row['name']:<{width}}  {row['psnr']:8.2f}  {row['ssim']:6.4f}")
    return "\n".join(lines)


def _cmd_models(args: argparse.Namespace) -> int:
    """List the shipped weights; the first entry of a network and scale is what ``--model
    NETWORK`` picks, the first of a scale what ``srlib upscale`` uses without ``--model``."""
    entries = inference.pretrained_models()
    if args.json:
        print(json.dumps([vars(entry) for entry in entries]))
        return 0
    seen = set()
    rows = [("name", "network", "scale", "Set5 PSNR", "default for", "trained on")]
    for entry in entries:
        picks = [f"--model {entry.model}"] if (entry.model, entry.scale) not in seen else []
        if entry.scale not in seen:
            picks.append("upscale")
        seen.update({(entry.model, entry.scale), entry.scale})
        rows.append((entry.name, entry.model, f"x{entry.scale}", f"{entry.psnr_set5:.2f} dB",
                     ", ".join(picks), entry.training_data))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from . import web  # here: only this command needs it

    out = Path(args.output)
    if out.suffix.lower() not in (".html", ".json"):
        raise ValueError(f"{out.name}: write a .html page or a .json weights bundle")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"{out.parent}: no such folder for the output")
    text = (web.app_html(args.models) if out.suffix.lower() == ".html"
            else json.dumps(web.bundle(args.models), separators=(",", ":")))
    if out.suffix.lower() == ".html":
        text = f'<!doctype html>\n<html><head><meta charset="utf-8"><title>srlib: upscale an image</title></head>\n<body>{text}</body></html>\n'
    imageio.atomic_write(out, lambda f: f.write(text.encode("utf-8")))
    count = len(args.models) if args.models else len(inference.pretrained_models())
    print(f"{out}: {count} networks, {out.stat().st_size / 1e6:.2f} MB")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    folder = data.download(args.name, args.root, base_url=args.base_url)
    print(f"{folder.name}: {len(data.DATASETS[folder.name].files)} files verified in {folder}")
    return 0


def _cmd_sprint(args: argparse.Namespace) -> int:
    from . import sprint  # imported here: it starts worker processes, which the other commands never need
    if args.pack:
        manifest = sprint.pack(args.pack)
        print(f"{args.pack}: {len(manifest)} images of {', '.join(sprint.SETS)}, "
              f"{Path(args.pack).stat().st_size / 1e6:.1f} MB")
        return 0
    if not args.images or not args.out:
        raise ValueError("give --images ARCHIVE and --out DIR (or --pack ARCHIVE to make the archive)")
    packed = sprint.sprint(args.images, args.out, minutes=args.minutes, workers=args.workers, device=args.device,
                           tiny=args.tiny)
    record = json.loads((Path(args.out) / "sprint.json").read_text(encoding="utf-8"))
    for run in record["runs"]:
        if "error" in run:
            print(f"{run['run']['key']}: failed: {run['error']}")
            continue
        scores = "; ".join(f"{s} Set5 {v['Set5']['psnr']:.2f} dB" for s, v in run["scores"].items())
        print(f"{run['run']['key']}: {run['iterations']} steps, {scores}")
    print(f"{packed} ({packed.stat().st_size / 1e6:.1f} MB), {record['provenance']['wall_seconds']:.0f} s")
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    names = reproduce.select(args.runs)
    if args.list:
        print(reproduce.describe(names))
        return 0
    if args.dry_run:
        print(reproduce.plan(names, args.out))
        return 0
    for name in names:
        if reproduce.is_done(name):
            print(f"{name}: done already ({reproduce.LEADERBOARD_DIR / name}.json; delete it to run again)")
            continue
        path = reproduce.run(name, args.out)
        record = json.loads(path.read_text(encoding="utf-8"))
        scores = ", ".join(f"{s} {v['psnr']:.2f} dB" for s, v in record["scores"].items())
        print(f"{name}: {scores}; trained {record['training']['wall_time_s'] / 60:.1f} min; {path}", flush=True)
    return 0


def _positive(text: str) -> int:
    """A positive integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {value}")
    return value


def _network_arguments(parser: argparse.ArgumentParser, *, default: str) -> None:
    """--model, --weights and --device, shared by upscale and eval."""
    shipped = [entry.name for entry in inference.pretrained_models()]
    parser.add_argument("--model", choices=[*models.MODELS, *shipped], metavar="NAME",
                        help=f"network ({', '.join(models.MODELS)}: its default shipped weights for --scale) "
                             f"or shipped weights by name (see `srlib models`); default: {default}")
    parser.add_argument("--weights", metavar="FILE",
                        help="weights written by srlib train (default: srlib's pretrained weights for NAME)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: the fastest present)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="srlib", description="Tools of the book 'Machine Learning Super-Resolution'.")
    parser.add_argument("--version", action="version", version=f"srlib {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    upscale_command = commands.add_parser(
        "upscale", help="upscale an image with a trained network",
        description="Luma through the network (in overlapping tiles), chroma and alpha with "
                    "Lanczos-3. Grey, RGB and RGBA images; the output format follows its suffix. "
                    "Without --model, the best photo network shipped for --scale (see `srlib models`). "
                    "Videos stream frame by frame: luma through the network, chroma with Lanczos-3, "
                    "frame rate and audio kept, H.264 out. PNGs are written with fast compression (zlib level 1: "
                    "about twice as fast as level 6, files about 10% larger); EXIF, ICC profile kept.")
    upscale_command.add_argument("input", metavar="IN", help="image or video file to upscale")
    upscale_command.add_argument("-o", "--output", required=True, metavar="OUT",
                                 help=f"image or video file to write (videos: {', '.join(video.SUFFIXES)})")
    upscale_command.add_argument("--scale", required=True, type=_scale, help="upscaling factor, an integer >= 2")
    _network_arguments(upscale_command, default="the best shipped photo network for --scale")
    upscale_command.add_argument("--tile", type=_positive,
                                 help="the network runs on tiles of this many input pixels a side, which bounds its memory "
                                      "(default: the network's, its widest activation about 256 MB); colour work goes in "
                                      "strips of about a megapixel")
    upscale_command.add_argument("--quality", type=_quality, metavar="Q",
                                 help="JPEG/WebP quality, 1-100 (default 95)")
    upscale_command.add_argument("--force", action="store_true", help="allow OUT to replace IN")
    upscale_command.set_defaults(run=_cmd_upscale)

    train = commands.add_parser(
        "train", help="train a network on luma patches, resuming from DIR's checkpoint",
        description="Train with the network's recipe on patches of NAME_OR_DIR; writes "
                    f"DIR/{training.CHECKPOINT} (resumed when present), DIR/{training.HISTORY} and "
                    "DIR/weights.pt (the weights with their provenance, for --weights).")
    train.add_argument("--model", required=True, choices=list(models.MODELS), metavar="NAME",
                       help=", ".join(models.MODELS))
    train.add_argument("--scale", required=True, type=_scale, help="upscaling factor, an integer >= 2")
    train.add_argument("--data", required=True, metavar="NAME_OR_DIR",
                       help="lineart, photos, 291 (T91 + BSD200), a registered set or a folder of images")
    train.add_argument("--out", required=True, metavar="DIR", help="run folder (created if needed)")
    budget = train.add_mutually_exclusive_group(required=True)
    budget.add_argument("--epochs", type=_positive, help="stop after N epochs in all")
    budget.add_argument("--iterations", type=_positive, help="stop after N batches in all")
    budget.add_argument("--seconds", type=float,
                        help="stop once the run has trained S seconds in all (a resumed run counts its "
                             "earlier sessions; validation excluded)")
    defaults = {name: f.default for name, f in training.TrainConfig.__dataclass_fields__.items()}
    train.add_argument("--seed", type=int, help=f"random seed (default {defaults['seed']})")
    train.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: the fastest present)")
    train.add_argument("--batch-size", type=_positive, help=f"patches per batch (default {defaults['batch_size']})")
    train.add_argument("--patch-size", type=_positive, help=f"LR patch side (default {defaults['patch_size']})")
    train.add_argument("--recipe", choices=list(training.RECIPES), metavar="RECIPE",
                       help="optimizer and schedule of another network (default: the network's own)")
    train.add_argument("--lr", type=float, help="starting learning rate (default: the recipe's)")
    train.add_argument("--loss", choices=list(losses.LOSSES),
                       help="what training minimises (default mse); the others weigh edges and structure "
                            "more (chapter 9)")
    train.add_argument("--schedule", choices=["cosine"],
                       help="cosine: the rates fall along half a cosine to 1/100 over --epochs "
                            "(the fast recipe), instead of the recipe's own schedule")
    train.add_argument("--patches-per-image", type=_positive,
                       help=f"random patches per image and epoch (default {defaults['patches_per_image']})")
    train.add_argument("--degrade", choices=METHODS, metavar="KERNEL",
                       help="how LR patches are made: bicubic (MATLAB imresize, the default) or a kernel")
    train.add_argument("--rescale", type=float, nargs="+", metavar="F",
                       help="also train on every image shrunk by these factors, e.g. 0.9 0.8 0.7 0.6 (FSRCNN)")
    train.add_argument("--mix-scales", type=_positive, nargs="+", metavar="S",
                       help="one network on these scales' patches mixed, e.g. 2 3 4 (VDSR; --patch-size in HR pixels)")
    train.add_argument("--zero-last", action="store_true",
                       help="start the last layer at zero, so VDSR or SP-VDSR starts as the interpolation "
                            "and skips the plateau of He weights (chapter 8)")
    train.add_argument("--channels-last", action="store_true",
                       help="channels-last memory: 1.2-1.5x faster on a CPU, with other rounding than the default")
    train.add_argument("--val", metavar="NAME_OR_DIR", help="validation images, scored every --val-every epochs")
    train.add_argument("--val-every", type=_positive, metavar="N",
                       help=f"validate every N epochs and at the end (default {defaults['val_every']})")
    train.add_argument("--option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                       help="a network option, e.g. depth=3 or f=(64,32); repeat for more")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(run=_cmd_train)

    evaluate = commands.add_parser(
        "eval", help="PSNR/SSIM of an upscaler under the SR evaluation protocol",
        description="Shrink each image with MATLAB bicubic, upscale it back with METHOD or a "
                    "trained network and score it against the original (Y channel, border crop = scale).")
    evaluate.add_argument("--dataset", required=True,
                          help=f"a set under ${data.ENV_VAR} ({', '.join(data.DATASETS)}) or a folder of images")
    evaluate.add_argument("--method", choices=METHODS, metavar="METHOD",
                          help="bicubic (MATLAB imresize, the default) or a kernel of srlib.resample: "
                               + ", ".join(METHODS[1:]))
    _network_arguments(evaluate, default="none, --method is scored")
    evaluate.add_argument("--scale", required=True, type=_scale, help="upscaling factor, an integer >= 2")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    evaluate.set_defaults(run=_cmd_eval)

    models_command = commands.add_parser("models", help="list the weights shipped with srlib",
                                         description="The pretrained weights `--model` can name, with their "
                                                     "training data and Set5 PSNR under the protocol.")
    models_command.add_argument("--json", action="store_true", help="print the manifest entries as JSON")
    models_command.set_defaults(run=_cmd_models)

    export = commands.add_parser(
        "export", help="the shipped networks for a web browser: a page that runs them, or their weights",
        description="Write OUTPUT.html, one self-contained page that upscales the reader's images with the "
                    "shipped networks in the browser (no server, works offline), or OUTPUT.json, the "
                    "networks as layer lists with float32 weights for srlib/web/engine.js.")
    export.add_argument("output", metavar="OUTPUT", help="a .html or .json file")
    export.add_argument("--models", nargs="+", metavar="NAME",
                        help="these shipped weights only (default: all but those too slow for a browser, such as VDSR)")
    export.set_defaults(run=_cmd_export)

    download = commands.add_parser("download", help="fetch a benchmark set and verify every file",
                                   description="Fetch a set into ROOT/NAME, checking each file's sha256.")
    download.add_argument("name", metavar="NAME", help=", ".join(data.DATASETS))
    download.add_argument("--root", help=f"data folder (default: ${data.ENV_VAR} or {data.DEFAULT_ROOT})")
    download.add_argument("--base-url", help="a mirror serving each file as BASE_URL/<file name>")
    download.set_defaults(run=_cmd_download)

    reproduce_command = commands.add_parser(
        "reproduce", help="the leaderboard's paper-scale runs: train, evaluate, time, ship the weights",
        description="Train each RUN with its paper's recipe (resuming from DIR/RUN), score it on Set5, Set14, "
                    "BSD100 (and Urban100 when present), time it on a 2160p frame, and write "
                    "results/leaderboard/RUN.json and srlib/pretrained/RUN.pt with its manifest entry. Runs "
                    "whose results file exists are skipped. Meant for a GPU.")
    reproduce_command.add_argument("runs", nargs="*", metavar="RUN",
                                   help="run names or patterns such as 'vdsr-*' (default: every run; see --list)")
    shown = reproduce_command.add_mutually_exclusive_group()
    shown.add_argument("--list", action="store_true", help="print the runs and their recipes, and stop")
    shown.add_argument("--dry-run", action="store_true",
                       help="print the plan (budgets, estimated iterations, work, state) without training")
    reproduce_command.add_argument("--out", default=str(reproduce.DEFAULT_OUT), metavar="DIR",
                                   help=f"folder of the run folders with their checkpoints (default {reproduce.DEFAULT_OUT})")
    reproduce_command.set_defaults(run=_cmd_reproduce)

    sprint_command = commands.add_parser(
        "sprint", help="every network trained, scored and timed in minutes on one GPU, as one archive",
        description="Train every network of the book at once with the data on the device, score them on Set5, "
                    "Set14 and BSD100, time them on 2160p frames, and pack DIR (results with provenance, weights) "
                    "as DIR.tar.gz. --pack makes the one archive of images it reads, from the data folder.")
    sprint_command.add_argument("--pack", metavar="ARCHIVE", help="write the images archive and stop")
    sprint_command.add_argument("--images", metavar="ARCHIVE", help="the images archive (from --pack)")
    sprint_command.add_argument("--out", metavar="DIR", help="folder of the results, packed as DIR.tar.gz")
    sprint_command.add_argument("--minutes", type=float, default=8.0, help="wall-clock budget (default 8)")
    sprint_command.add_argument("--workers", type=_positive, default=6,
                                help="runs trained at once, one process each (default 6)")
    sprint_command.add_argument("--device", help="cuda, cuda:1, cpu (default: the fastest present)")
    sprint_command.add_argument("--tiny", action="store_true",
                                help="a few steps per run and small test images: every stage, in seconds")
    sprint_command.set_defaults(run=_cmd_sprint)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: sys.argv[1:]); returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, OSError, training.TrainingDiverged) as exc:
        message = str(exc).replace("\n", " ")
        print(f"srlib: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # files are written atomically: nothing partial is left
        print("srlib: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """The ``srlib`` console command: ``main``, then an exit without Python's teardown, which
    takes about half a second once PyTorch is imported (a seventh of a 1080p upscale,
    benchmarks/bench_upscale_speed.py). Every file a command writes is complete, closed and in
    place by then; the standard streams are flushed here. An unexpected error still ends with
    its traceback."""
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
