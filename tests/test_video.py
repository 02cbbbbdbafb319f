"""Videos through `srlib upscale` (srlib.video): streamed frames, luma by the network, chroma by
Lanczos-3, frame rate and audio kept, nothing left behind on failure."""
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from srlib import cli, inference, models, video
from srlib.resample import resize

av = pytest.importorskip("av")


def make_clip(path: Path, width: int = 48, height: int = 32, frames: int = 12, fps: int = 12,
              audio: bool = True) -> None:
    """A short H.264 clip of moving waves, with a mono AAC tone when ``audio``."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "10", "preset": "ultrafast"}
        sound = container.add_stream("aac", rate=22050) if audio else None
        y, x = np.mgrid[0:height, 0:width]
        for i in range(frames):
            rgb = np.stack([127 + 90 * np.sin((x + 2 * i) / (6 + 2 * c) + y / (5 + c)) for c in range(3)], -1)
            frame = av.VideoFrame.from_ndarray(rgb.astype(np.uint8), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if sound is not None:
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(22050 * frames // fps) / 22050)).astype(np.float32)
            for start in range(0, tone.size, 1024):
                chunk = av.AudioFrame.from_ndarray(tone[None, start:start + 1024].copy(), format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 22050, start
                container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))


def decoded(path: Path) -> list[np.ndarray]:
    """Every frame of a video as its packed yuv420p array."""
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="yuv420p") for frame in container.decode(video=0)]


@pytest.fixture()
def network():
    torch.manual_seed(0)
    model = models.SPVDSR(2, depth=2)
    with torch.no_grad():
        model.residual.weight.normal_(0, 0.05)
    return model


def test_a_video_keeps_its_frames_rate_duration_and_audio(tmp_path, network):
    make_clip(tmp_path / "in.mp4")
    report = video.upscale_video(tmp_path / "in.mp4", tmp_path / "out.mp4", network, progress=False)
    assert (report.frames, report.width, report.height) == (12, 96, 64)
    with av.open(str(tmp_path / "in.mp4")) as source, av.open(str(tmp_path / "out.mp4")) as result:
        assert [s.type for s in result.streams] == ["video", "audio"]
        assert result.streams.video[0].average_rate == source.streams.video[0].average_rate == Fraction(12)
        assert result.streams.audio[0].codec_context.name == "aac"
        assert abs(result.duration - source.duration) <= 0.1 * source.duration
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]


def test_each_frame_is_the_network_on_luma_and_left_sited_lanczos_on_chroma(tmp_path, network):
    make_clip(tmp_path / "in.mp4", audio=False)
    video.upscale_video(tmp_path / "in.mp4", tmp_path / "out.mp4", network, progress=False)
    for source, result in zip(decoded(tmp_path / "in.mp4"), decoded(tmp_path / "out.mp4")):
        y, u, v = source[:32], source[32:40].reshape(16, 24), source[40:48].reshape(16, 24)
        expected = video.upscale_frame(network, y, u, v)
        with torch.no_grad():
            luma = network(torch.from_numpy(y / 255.0).float()[None, None])[0, 0].numpy() * 255
        assert np.abs(expected[:64].astype(float) - np.clip(luma, 0, 255)).max() <= 0.5 + 1e-3
        shift = (2 - 1) / (2 * 2)
        chroma = resize(torch.from_numpy(np.stack([u, v]).astype(np.float64)), 2, kernel="lanczos3",
                        offset=(0.0, shift)).numpy()
        assert np.abs(expected[64:80].reshape(32, 48) - np.clip(chroma[0], 0, 255)).max() <= 0.5 + 1e-3
        assert np.abs(expected[80:96].reshape(32, 48) - np.clip(chroma[1], 0, 255)).max() <= 0.5 + 1e-3
        error = result.astype(float) - expected  # what H.264 at CRF 18 changed
        assert 10 * np.log10(255 ** 2 / np.mean(error ** 2)) > 38


def test_chroma_stays_co_sited_with_the_left_luma_column(network):
    """Output chroma column 2j sits on input chroma column j (both on luma column 2j of the
    input): Lanczos-3 passes through its samples, so they agree exactly there."""
    y = np.full((16, 32), 128, np.uint8)
    u = np.repeat(np.random.default_rng(1).integers(16, 240, (1, 16), dtype=np.uint8), 8, axis=0)
    up = video.upscale_frame(network, y, u, u)[32:40].reshape(16, 32)
    np.testing.assert_array_equal(up[:, ::2], np.repeat(u[:1], 16, axis=0))


def test_the_command_line_upscales_a_video_and_refuses_mixing_kinds(tmp_path, capsys):
    make_clip(tmp_path / "in.mp4", frames=4)
    status = cli.main(["upscale", str(tmp_path / "in.mp4"), "-o", str(tmp_path / "out.mkv"), "--scale", "2"])
    out, err = capsys.readouterr()
    assert status == 0 and "4/4" in err and "error" not in err  # the progress bar is on stderr
    assert "4 frames of 96x64" in out and "frames/s" in out
    status = cli.main(["upscale", str(tmp_path / "in.mp4"), "-o", str(tmp_path / "out.png"), "--scale", "2"])
    assert status == 2 and "a video goes to a video" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [(b"not a video at all", "not a video FFmpeg can read"),
                                              (None, "even sides")])
def test_a_bad_video_is_one_line_and_leaves_nothing(tmp_path, capsys, content, message):
    if content is None:
        with av.open(str(tmp_path / "in.mp4"), "w") as container:  # odd width: yuv444p allows it
            stream = container.add_stream("libx264", rate=12)
            stream.width, stream.height, stream.pix_fmt = 47, 32, "yuv444p"
            for i in range(2):
                frame = av.VideoFrame.from_ndarray(np.zeros((32, 47, 3), np.uint8), format="rgb24")
                frame.pts = i
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
    else:
        (tmp_path / "in.mp4").write_bytes(content)
    status = cli.main(["upscale", str(tmp_path / "in.mp4"), "-o", str(tmp_path / "out.mp4"), "--scale", "2"])
    err = capsys.readouterr().err
    assert status == 2 and message in err and len(err.splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["in.mp4"]


def test_an_interrupted_video_leaves_no_partial_file(tmp_path, network, monkeypatch):
    make_clip(tmp_path / "in.mp4", frames=6, audio=False)
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    real = video.upscale_frame
    monkeypatch.setattr(video, "upscale_frame", interrupted)
    with pytest.raises(KeyboardInterrupt):
        video.upscale_video(tmp_path / "in.mp4", tmp_path / "out.mp4", network, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["in.mp4"] and not _writer_threads()


def _writer_threads() -> list:
    """The video writer threads still alive (each run must end its own)."""
    return [t for t in threading.enumerate() if t.name == "srlib-video-writer"]


def test_an_encoding_error_on_the_writer_thread_is_raised_and_leaves_nothing(tmp_path, network, monkeypatch):
    make_clip(tmp_path / "in.mp4", frames=8)
    calls = []

    def failing(*args):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("encoder broke")
        return real(*args)
    real = video._encode
    monkeypatch.setattr(video, "_encode", failing)
    with pytest.raises(RuntimeError, match="encoder broke"):
        video.upscale_video(tmp_path / "in.mp4", tmp_path / "out.mp4", network, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["in.mp4"] and not _writer_threads()


def test_the_writer_thread_keeps_order_and_ends_with_the_video(tmp_path, network):
    make_clip(tmp_path / "in.mp4", frames=20)
    video.upscale_video(tmp_path / "in.mp4", tmp_path / "out.mp4", network, progress=False)
    with av.open(str(tmp_path / "out.mp4")) as result:
        pts = [frame.pts for frame in result.decode(video=0)]
    assert len(pts) == 20 and pts == sorted(pts) and not _writer_threads()
