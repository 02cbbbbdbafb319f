"""Upscaling videos with a network: the article's closing idea of old content made sharper.

Frames stream through one at a time (memory does not grow with the video's length), decoded
and encoded by FFmpeg through PyAV. A video frame already is studio-range YCbCr, so no colour
conversion is needed: the luma plane goes through the network (the networks are trained on
studio-range luma), the two 4:2:0 chroma planes through Lanczos-3, sited as MPEG-2/H.264 site
them (co-sited with the left luma column, centred between rows). The frame rate, the
timestamps and the audio (copied, not re-encoded) are kept. The output is H.264 (libx264,
CRF 18, preset ultrafast) in the container its suffix names, written to a temporary file and renamed when
complete: an interrupted run leaves nothing behind. Encoding and writing run on a thread of their
own (``_Writer``), so FFmpeg's work overlaps the network's.
"""
from __future__ import annotations

import os
import queue
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .inference import upscale_luma
from .resample import resize

SUFFIXES = (".mp4", ".mkv", ".mov", ".m4v", ".avi", ".webm")
# libx264's fastest preset: real time beside the network on two cores (veryfast halves the
# frame rate there); CRF 18 keeps it visually lossless at the cost of larger files.
CODEC, CRF, PRESET = "libx264", "18", "ultrafast"


class VideoError(ValueError):
    """A video that cannot be read or written, with the file and the reason in one line."""


def is_video(path: str | os.PathLike) -> bool:
    """Whether ``path``'s suffix names a video container srlib writes and reads."""
    return Path(path).suffix.lower() in SUFFIXES


@dataclass(frozen=True)
class VideoReport:
    """What ``upscale_video`` did: frames written, their size, and the wall time it took."""
    frames: int
    width: int
    height: int
    seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def _import_av():
    try:
        import av
    except ImportError:
        raise VideoError("video needs PyAV: pip install av") from None
    return av


def _plane(frame, index: int, height: int, width: int) -> np.ndarray:
    """One plane of a decoded frame as a (height, width) uint8 array (FFmpeg pads its lines)."""
    plane = frame.planes[index]
    return np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:height, :width]


class _Writer:
    """Runs the output's encoding and muxing, in the order given, on one thread of its own: FFmpeg
    releases the GIL, so it overlaps the next frame's network (about 20 % more frames per second
    on two cores, benchmarks/bench_video.py). At most ``depth`` jobs wait, which bounds memory; the
    first error stops the work and is raised in the caller's thread."""

    def __init__(self, depth: int = 4) -> None:
        self._jobs: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name="srlib-video-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._error is None and not self._abandoned:
                try:
                    job()
                except BaseException as exc:  # handed to the caller's thread, which raises it
                    self._error = exc

    def put(self, job) -> None:
        """Queue ``job`` (a function of no arguments); raise the writer's error if it had one."""
        if self._error is not None:
            raise self._error
        self._jobs.put(job)

    def finish(self, *, abandon: bool = False) -> None:
        """Wait for the queued jobs (skipping them when ``abandon``), then raise any error."""
        self._abandoned = abandon
        self._jobs.put(None)
        self._thread.join()
        if self._error is not None and not abandon:
            raise self._error


@torch.inference_mode()
def upscale_frame(model: nn.Module, y: np.ndarray, u: np.ndarray, v: np.ndarray, *,
                  tile: int | None = None) -> np.ndarray:
    """A 4:2:0 frame (Y at full size, U and V at half) upscaled by the model's scale, returned
    as FFmpeg's packed yuv420p array (Y rows, then U, then V: shape (H * 3 / 2, W))."""
    s = int(model.scale)
    target = next(model.parameters()).device
    lr = torch.from_numpy(y.astype(np.float32) / 255.0).to(target)[None, None]
    luma = upscale_luma(model, lr, tile=tile)[0, 0].mul_(255.0).clamp_(0, 255).add_(0.5).floor_()
    # Chroma sits on the left luma column: output chroma j lies at input chroma j / s,
    # which the centre-based resize reaches with an offset of (s - 1) / (2 s) chroma pixels.
    chroma = torch.from_numpy(np.stack([u, v]).astype(np.float32)).to(target)
    chroma = resize(chroma, s, kernel="lanczos3", offset=(0.0, (s - 1) / (2 * s)))
    chroma = chroma.clamp_(0, 255).add_(0.5).floor_()
    height, width = luma.shape
    packed = torch.cat([luma.reshape(-1), chroma[0].reshape(-1), chroma[1].reshape(-1)])
    return packed.to(torch.uint8).cpu().numpy().reshape(-1, width)[: height * 3 // 2]


def _encode(av, writer, encoder, packed: np.ndarray, pts, time_base) -> None:
    """Encode one packed yuv420p frame with the source frame's timestamp and mux its packets."""
    out = av.VideoFrame.from_ndarray(packed, format="yuv420p")
    out.pts, out.time_base = pts, time_base
    writer.mux(encoder.encode(out))


def upscale_video(source: str | os.PathLike, output: str | os.PathLike, model: nn.Module, *,
                  tile: int | None = None, progress: bool = True) -> VideoReport:
    """Upscale every frame of ``source`` into ``output`` (see the module docstring)."""
    av = _import_av()
    source, output = Path(source), Path(output)
    s = int(model.scale)
    if output.suffix.lower() not in SUFFIXES:
        raise VideoError(f"{output}: write a video as one of {', '.join(SUFFIXES)}")
    try:
        reader = av.open(str(source))
    except (av.FFmpegError, OSError) as exc:
        raise VideoError(f"{source}: not a video FFmpeg can read ({str(exc).splitlines()[0][:120]})") from None
    tmp = output.with_name(f".{output.stem}.{secrets.token_hex(4)}.tmp{output.suffix}")
    start, frames = time.perf_counter(), 0
    try:
        with reader:
            if not reader.streams.video:
                raise VideoError(f"{source}: holds no video stream")
            video = reader.streams.video[0]
            video.thread_type = "AUTO"
            width, height = video.codec_context.width, video.codec_context.height
            if width % 2 or height % 2:
                raise VideoError(f"{source}: {width}x{height} frames; 4:2:0 video needs even sides")
            audio = reader.streams.audio[0] if reader.streams.audio else None
            with av.open(str(tmp), "w") as writer:
                rate = video.average_rate or video.guessed_rate or 25
                encoder = writer.add_stream(CODEC, rate=rate)
                encoder.width, encoder.height, encoder.pix_fmt = width * s, height * s, "yuv420p"
                encoder.time_base = video.time_base
                encoder.options = {"crf": CRF, "preset": PRESET}
                copied = writer.add_stream_from_template(audio) if audio is not None else None
                streams = [video] + ([audio] if audio is not None else [])
                bar = tqdm(total=video.frames or None, disable=not progress, unit="frame", desc=f"{model.name} x{s}")
                jobs = _Writer()
                try:
                    with bar:
                        for packet in reader.demux(*streams):
                            if packet.stream is audio:
                                if packet.dts is not None:
                                    packet.stream = copied
                                    jobs.put(lambda packet=packet: writer.mux(packet))
                                continue
                            for frame in packet.decode():
                                if frame.format.name != "yuv420p":
                                    frame = frame.reformat(format="yuv420p")
                                packed = upscale_frame(model, _plane(frame, 0, height, width),
                                                       _plane(frame, 1, height // 2, width // 2),
                                                       _plane(frame, 2, height // 2, width // 2), tile=tile)
                                jobs.put(lambda packed=packed, pts=frame.pts, base=frame.time_base:
                                         _encode(av, writer, encoder, packed, pts, base))
                                frames += 1
                                bar.update()
                        jobs.put(lambda: writer.mux(encoder.encode(None)))
                except BaseException:
                    jobs.finish(abandon=True)
                    raise
                jobs.finish()
        if frames == 0:
            raise VideoError(f"{source}: no frame could be decoded")
        os.replace(tmp, output)
    except av.FFmpegError as exc:
        raise VideoError(f"{source}: {str(exc).splitlines()[0][:160]}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return VideoReport(frames, width * s, height * s, time.perf_counter() - start)
