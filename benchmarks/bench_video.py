"""Frames per second of `srlib upscale` on video, end to end (decode + upscale + encode).

Target (the tool issue): 640x360 -> 1280x720 with SP-VDSR at >= 24 frames/s on 2 cores, real
time; the rate of every network at x2 for 640x360 and 720x480 (DVD) sources. A clip of moving
waves with an AAC tone is encoded once per size (H.264), then ``srlib.video.upscale_video``
runs each network on it ``--repeats`` times, in a fresh process set up as the srlib command
sets itself up (the median and the range are printed: a shared machine's rate varies by a
quarter from run to run; a network slower than a minute a clip runs once); "network" is the
share of the time spent in ``upscale_frame``, which overlaps the encoding (done on a thread
of its own).
Speed does not depend on the weights, so networks without shipped x2 weights run with their
initial ones. Asserts nothing: run it on an idle machine.

    python benchmarks/bench_video.py [--frames 96] [--repeats 3] [--networks spvdsr espcn ...]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from srlib import inference, models, video

SIZES = [(640, 360), (720, 480)]
NETWORKS = ["spvdsr", "espcn", "fsrcnn", "srcnn", "vdsr"]


def clip(path: Path, width: int, height: int, frames: int, fps: int = 24) -> None:
    """An H.264 clip of moving colour waves with a mono AAC tone."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        sound = container.add_stream("aac", rate=44100)
        y, x = np.mgrid[0:height, 0:width]
        for i in range(frames):
            rgb = np.stack([127 + 100 * np.sin((x + 3 * i) / (17 + 5 * c) + y / (13 + 3 * c)) for c in range(3)], -1)
            frame = av.VideoFrame.from_ndarray(rgb.astype(np.uint8), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(44100 * frames // fps) / 44100)).astype(np.float32)
        for start in range(0, tone.size, 1024):
            chunk = av.AudioFrame.from_ndarray(tone[None, start:start + 1024].copy(), format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = 44100, start
            container.mux(sound.encode(chunk))
        container.mux(sound.encode(None))


def network(name: str) -> torch.nn.Module:
    try:
        return inference.load_pretrained(name, 2)
    except FileNotFoundError:
        return models.build(name, 2).eval()


def measure(source: Path, name: str, repeats: int) -> dict:
    """Frame rates of one network on one clip, in this process, set up as the srlib command
    sets itself up (oneDNN capped at AVX2 for a narrow network)."""
    model = network(name)
    inference.prefer_avx2_for(model)
    rates, shares = [], []
    for _ in range(repeats):
        spent = 0.0
        real = video.upscale_frame

        def timed(*a, **k):
            nonlocal spent
            start = time.perf_counter()
            result = real(*a, **k)
            spent += time.perf_counter() - start
            return result
        video.upscale_frame = timed
        try:
            report = video.upscale_video(source, source.with_name("out.mp4"), model, progress=False)
        finally:
            video.upscale_frame = real
        rates.append(report.fps)
        shares.append(spent / report.seconds)
        if report.seconds > 60:  # far from real time: one run says enough
            break
    return {"rates": rates, "shares": shares, "size": [report.width, report.height]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--networks", nargs="+", default=NETWORKS, choices=NETWORKS)
    parser.add_argument("--measure", nargs=2, metavar=("CLIP", "NETWORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), args.measure[1], args.repeats)))
        return
    print(f"x2, {args.frames} frames, torch {torch.__version__} on {torch.get_num_threads()} threads, "
          f"H.264 {video.PRESET} CRF {video.CRF}, target: SP-VDSR 640x360 >= 24 frames/s")
    env = {key: value for key, value in os.environ.items() if key != "ONEDNN_MAX_CPU_ISA"}
    with tempfile.TemporaryDirectory() as tmp:
        for width, height in SIZES:
            source = Path(tmp) / f"{width}x{height}.mp4"
            clip(source, width, height, args.frames)
            for name in args.networks:  # each in a fresh process, as each srlib command runs
                done = subprocess.run([sys.executable, __file__, "--repeats", str(args.repeats), "--measure",
                                       str(source), name], check=True, capture_output=True, text=True, env=env)
                found = json.loads(done.stdout)
                rates, shares = found["rates"], found["shares"]
                print(f"{width}x{height} -> {found['size'][0]}x{found['size'][1]} {name:>7}: "
                      f"{statistics.median(rates):6.1f} frames/s end to end (median of {len(rates)}, "
                      f"{min(rates):.1f}-{max(rates):.1f}), network {statistics.median(shares):.0%} of the time")


if __name__ == "__main__":
    main()
