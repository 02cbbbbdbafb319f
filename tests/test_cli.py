"""The ``srlib`` command, run as a real subprocess (``python -m srlib``) so the tests hold
before and after the package is pip-installed."""
import json
import os
import pickle
import struct
import subprocess
import sys
import threading
import zlib
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from srlib import cli, data, inference, metrics, models, resample
from srlib.imageio import read_image, write_image

REPO = Path(__file__).resolve().parents[1]


def srlib(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environment.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "srlib", *args], env=environment,
                          capture_output=True, text=True, timeout=300)


def _assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Three small smooth images (two colour, one grey) in a fresh folder."""
    root = tmp_path_factory.mktemp("images")
    y, x = np.mgrid[0:40, 0:52]
    for k, name in enumerate(["c_grey", "a_rgb", "b_rgb"]):
        planes = [128 + 100 * np.sin((x + 7 * c) / (5 + k) + y / (4 + c)) for c in range(3)]
        image = np.clip(np.stack(planes, axis=-1), 0, 255).astype(np.uint8)
        write_image(root / f"{name}.png", image[..., 0] if name == "c_grey" else image)
    return root


def test_eval_json_prints_one_object_with_means_and_per_image_scores(folder):
    result = srlib("eval", "--dataset", str(folder), "--method", "bicubic", "--scale", "2", "--json")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1
    report = json.loads(result.stdout)
    assert set(report) == {"dataset", "scale", "method", "psnr", "ssim", "images"}
    assert (report["dataset"], report["scale"], report["method"]) == (str(folder), 2, "bicubic")
    assert [row["name"] for row in report["images"]] == ["a_rgb", "b_rgb", "c_grey"]
    for (name, image), row in zip(data.load_set(folder), report["images"]):
        lr, hr = data.make_pair(image, 2)
        expected = metrics.evaluate(resample.imresize(lr, 2), hr, 2)
        assert set(row) == {"name", "psnr", "ssim"}
        assert row["psnr"] == pytest.approx(expected["psnr"], abs=1e-9)
        assert row["ssim"] == pytest.approx(expected["ssim"], abs=1e-9)
    assert report["psnr"] == pytest.approx(np.mean([row["psnr"] for row in report["images"]]))
    assert report["ssim"] == pytest.approx(np.mean([row["ssim"] for row in report["images"]]))


def test_eval_prints_a_table_with_every_image_and_the_mean(folder):
    result = srlib("eval", "--dataset", str(folder), "--scale", "3", "--method", "lanczos3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "x3" in lines[0] and "lanczos3" in lines[0]
    assert [line.split()[0] for line in lines[2:]] == ["a_rgb", "b_rgb", "c_grey", "mean"]


@pytest.mark.parametrize("scale", ["1", "2.5", "two"])
def test_bad_scale_exits_2_with_one_line(folder, scale):
    _assert_one_line_error(srlib("eval", "--dataset", str(folder), "--scale", scale), "scale")


def test_unknown_method_exits_2_with_one_line(folder):
    _assert_one_line_error(srlib("eval", "--dataset", str(folder), "--scale", "2", "--method", "magic"),
                           "magic")


def test_missing_dataset_exits_2_with_one_line_naming_the_fix(tmp_path):
    result = srlib("eval", "--dataset", "Set5", "--scale", "2", env={"SRLIB_DATA": str(tmp_path)})
    _assert_one_line_error(result, "SRLIB_DATA", "srlib download Set5")


def test_missing_folder_exits_2_with_one_line(tmp_path):
    _assert_one_line_error(srlib("eval", "--dataset", str(tmp_path / "nowhere"), "--scale", "2"), "nowhere")


def test_image_too_small_for_the_scale_exits_2_with_one_line(tmp_path):
    write_image(tmp_path / "tiny.png", np.zeros((12, 12, 3), np.uint8))
    _assert_one_line_error(srlib("eval", "--dataset", str(tmp_path), "--scale", "4"), "tiny.png", "too small")


def test_download_of_a_set_without_verified_list_exits_2_with_one_line(tmp_path):
    _assert_one_line_error(srlib("download", "Urban100", "--root", str(tmp_path)), "Urban100", "by hand")


def test_no_command_exits_2_with_one_line():
    _assert_one_line_error(srlib(), "COMMAND")


def test_download_fetches_set5_from_a_mirror_and_verifies_it(tmp_path):
    if not os.environ.get(data.ENV_VAR) or not (data.data_root() / "Set5").is_dir():
        pytest.skip("SRLIB_DATA is not set or lacks Set5: it provides the files the local mirror serves")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(data.data_root() / "Set5")))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        result = srlib("download", "Set5", "--root", str(tmp_path),
                       "--base-url", f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr
    assert "5 files verified" in result.stdout
    assert sorted(p.name for p in (tmp_path / "Set5").iterdir()) == [f.name for f in data.DATASETS["Set5"].files]


# ---------------------------------------------------------------- networks: upscale, train, eval

def _in_process(capsys, *args: str) -> tuple[int, str, str]:
    """``srlib ARGS`` run by ``cli.main`` in this process (no torch start-up): (status, out, err)."""
    status = cli.main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _png_header(width: int, height: int) -> bytes:
    """A valid PNG whose header claims width x height grey pixels, with almost no pixel data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """An SP-VDSR x2 (depth 2) with random weights, saved as `srlib train` saves them."""
    path = tmp_path_factory.mktemp("weights") / "spvdsr.pt"
    torch.manual_seed(0)
    inference.save_weights(path, models.SPVDSR(2, depth=2), metadata={"training_data": "none"})
    return path


@pytest.mark.parametrize("image_name", ["c_grey", "a_rgb"])
def test_upscale_writes_what_the_library_computes(capsys, folder, weights, tmp_path, image_name):
    source = folder / f"{image_name}.png"
    status, out, err = _in_process(capsys, "upscale", str(source), "-o", str(tmp_path / "big.png"),
                                   "--model", "spvdsr", "--scale", "2", "--weights", str(weights), "--tile", "16")
    assert (status, err) == (0, ""), err
    expected = inference.upscale(read_image(source), inference.load_weights(weights))
    assert np.array_equal(read_image(tmp_path / "big.png"), expected)
    assert "104x80" in out


def test_upscale_keeps_transparency(capsys, weights, tmp_path):
    rgba = np.random.default_rng(0).integers(0, 256, (20, 24, 4), dtype=np.uint8)
    write_image(tmp_path / "in.png", rgba)
    status, _, err = _in_process(capsys, "upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"),
                                 "--model", "spvdsr", "--scale", "2", "--weights", str(weights))
    assert status == 0, err
    assert read_image(tmp_path / "out.png").shape == (40, 48, 4)


def _bad_inputs(root: Path, folder: Path, weights: Path) -> dict[str, tuple[list[str], str]]:
    """Each failure case: (arguments after `upscale`, a fragment the one-line error must hold)."""
    good = str(folder / "a_rgb.png")
    (root / "notes.png").write_text("not an image\n")
    (root / "truncated.png").write_bytes((folder / "a_rgb.png").read_bytes()[:300])
    write_image(root / "tiny.png", np.full((3, 3, 3), 128, np.uint8))
    (root / "bomb.png").write_bytes(_png_header(20000, 20000))
    (root / "garbage.pt").write_bytes(np.random.default_rng(0).bytes(500))
    torch.save({"state_dict": {}, "model": "spvdsr", "options": {}, "scale": 2,
                "metadata": _Exploit(root / "pwned")}, root / "evil.pt")
    (root / "evil-raw.pt").write_bytes(pickle.dumps(_Exploit(root / "pwned"), protocol=2))
    torch.save(models.ESPCN(3).state_dict(), root / "bare.pt")
    net = ["--model", "spvdsr", "--scale", "2", "--weights", str(weights)]
    return {
        "missing input": ([str(root / "nowhere.png"), *net], "no such image file"),
        "folder as input": ([str(root), *net], "no such image file"),
        "non-image": ([str(root / "notes.png"), *net], "not an image file"),
        "truncated image": ([str(root / "truncated.png"), *net], "truncated"),
        "too small": ([str(root / "tiny.png"), *net], "too small for spvdsr x2"),
        "decompression bomb": ([str(root / "bomb.png"), *net], "decompression bomb"),
        "garbage weights": ([good, "--model", "spvdsr", "--scale", "2", "--weights", str(root / "garbage.pt")],
                            "not a PyTorch weights file"),
        "malicious weights": ([good, "--model", "spvdsr", "--scale", "2", "--weights", str(root / "evil.pt")],
                              "refused"),
        "malicious raw pickle": ([good, "--model", "spvdsr", "--scale", "2", "--weights", str(root / "evil-raw.pt")],
                                 "refused"),
        "bare state dict": ([good, "--model", "espcn", "--scale", "3", "--weights", str(root / "bare.pt")],
                            "not srlib weights"),
        "missing weights": ([good, "--model", "spvdsr", "--scale", "2", "--weights", str(root / "no.pt")],
                            "no such weights file"),
        "another scale": ([good, "--model", "spvdsr", "--scale", "3", "--weights", str(weights)],
                          "holds weights for spvdsr x2, not for spvdsr x3"),
        "another network": ([good, "--model", "vdsr", "--scale", "2", "--weights", str(weights)],
                            "not for vdsr x2"),
        "no pretrained weights": ([good, "--model", "vdsr", "--scale", "5"], "srlib train --model vdsr --scale 5"),
        "unknown output suffix": ([good, *net], "unknown image suffix"),
    }


UPSCALE_FAILURES = ["missing input", "folder as input", "non-image", "truncated image", "too small",
                    "decompression bomb", "garbage weights", "malicious weights", "malicious raw pickle",
                    "bare state dict", "missing weights", "another scale", "another network",
                    "no pretrained weights", "unknown output suffix"]


@pytest.mark.parametrize("case", UPSCALE_FAILURES)
def test_upscale_failures_exit_2_with_one_line_and_write_nothing(capsys, folder, weights, tmp_path, case):
    arguments, fragment = _bad_inputs(tmp_path, folder, weights)[case]
    output = tmp_path / "out" / ("big.xyz" if case == "unknown output suffix" else "big.png")
    output.parent.mkdir()
    status, out, err = _in_process(capsys, "upscale", *arguments, "-o", str(output))
    assert (status, out) == (2, "")
    assert len(err.splitlines()) == 1 and fragment in err, err
    assert list(output.parent.iterdir()) == []  # neither the image nor a temporary
    assert not (tmp_path / "pwned").exists()


def _train_arguments(folder: Path, run: Path, *extra: str) -> list[str]:
    return ["train", "--model", "spvdsr", "--scale", "2", "--data", str(folder), "--out", str(run),
            "--batch-size", "8", "--patch-size", "8", "--option", "depth=2",
            "--option", "interpolation=bicubic", "--quiet", *extra]


def test_train_writes_weights_with_metadata_that_eval_scores(capsys, folder, tmp_path):
    run = tmp_path / "run"
    status, out, err = _in_process(capsys, *_train_arguments(folder, run, "--epochs", "1", "--val", str(folder)))
    assert status == 0, err
    assert "weights.pt" in out
    network = inference.load_weights(run / "weights.pt", model="spvdsr", scale=2)
    assert network.options == {"depth": 2, "width": 8, "interpolation": "bicubic", "negative_slope": 0.1}
    history = json.loads((run / "history.json").read_text())["history"]
    assert network.metadata["training_data"] == str(folder) and network.metadata["epochs"] == 1
    assert network.metadata["val_psnr"] == history[-1]["val_psnr"]

    result = srlib("eval", "--dataset", str(folder), "--model", "spvdsr", "--weights", str(run / "weights.pt"),
                   "--scale", "2", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"dataset", "scale", "method", "psnr", "ssim", "images"}
    assert (report["scale"], report["method"]) == (2, "spvdsr")
    for (name, image), row in zip(data.load_set(folder), report["images"]):
        expected = inference.protocol_scores(network, *data.make_pair(image, 2))
        assert row["name"] == name
        assert (row["psnr"], row["ssim"]) == pytest.approx((expected["psnr"], expected["ssim"]), abs=1e-9)
    # Training validates on float LR luma, eval on the protocol's uint8 LR image: nearly equal.
    assert report["psnr"] == pytest.approx(network.metadata["val_psnr"], abs=0.05)

    status, _, err = _in_process(capsys, *_train_arguments(folder, run, "--epochs", "2", "--val", str(folder)))
    assert status == 0, err
    resumed = json.loads((run / "history.json").read_text())["history"]
    assert resumed[0] == history[0] and resumed[-1]["epoch"] == 2
    assert inference.load_weights(run / "weights.pt").metadata["epochs"] == 2


def test_train_mixes_scales_for_vdsr_in_channels_last_and_refuses_mixing_for_other_networks(capsys, folder, tmp_path):
    vdsr = ["train", "--model", "vdsr", "--scale", "3", "--data", str(folder), "--out", str(tmp_path / "vdsr"),
            "--batch-size", "8", "--patch-size", "12", "--option", "depth=3", "--option", "width=4", "--quiet",
            "--iterations", "2", "--mix-scales", "2", "3", "4", "--channels-last"]
    status, _, err = _in_process(capsys, *vdsr)
    assert status == 0, err
    for scale in (2, 3, 4):  # one network serves every scale it was trained on
        assert inference.load_weights(tmp_path / "vdsr" / "weights.pt", model="vdsr", scale=scale).scale == scale
    with pytest.raises(inference.WeightsError, match="vdsr x2/3/4, not for vdsr x5"):
        inference.load_weights(tmp_path / "vdsr" / "weights.pt", scale=5)
    config = json.loads((tmp_path / "vdsr" / "history.json").read_text())["config"]
    assert config["mix_scales"] == [2, 3, 4] and config["channels_last"]
    status, out, err = _in_process(capsys, *_train_arguments(folder, tmp_path / "sp", "--epochs", "1",
                                                             "--mix-scales", "2", "3"))
    assert (status, out) == (2, "") and len(err.splitlines()) == 1 and "mix_scales" in err


def test_a_diverging_run_exits_2_with_one_line(capsys, folder, tmp_path):
    status, out, err = _in_process(capsys, *_train_arguments(folder, tmp_path / "run", "--iterations", "5",
                                                             "--lr", "1e30"))
    assert (status, out) == (2, "")
    assert len(err.splitlines()) == 1 and "loss became nan" in err
    assert not (tmp_path / "run" / "weights.pt").exists()


def test_network_options_are_python_literals_or_strings(capsys):
    assert cli._option("f=(64, 32)") == ("f", (64, 32))
    assert cli._option("negative_slope=0.2") == ("negative_slope", 0.2)
    assert cli._option("interpolation=lanczos3") == ("interpolation", "lanczos3")
    with pytest.raises(SystemExit) as caught:
        cli.main(["train", "--model", "vdsr", "--scale", "2", "--data", "x", "--out", "y", "--epochs", "1",
                  "--option", "depth"])
    assert caught.value.code == 2 and "key=value" in capsys.readouterr().err


def test_an_unknown_network_option_exits_2_with_one_line(capsys, folder, tmp_path):
    status, _, err = _in_process(capsys, *_train_arguments(folder, tmp_path / "run", "--epochs", "1",
                                                           "--option", "colour=3"))
    assert status == 2 and len(err.splitlines()) == 1 and "no option 'colour'" in err


def test_eval_refuses_a_method_and_a_network_together(capsys, folder, weights):
    status, _, err = _in_process(capsys, "eval", "--dataset", str(folder), "--scale", "2", "--method", "bicubic",
                                 "--model", "spvdsr", "--weights", str(weights))
    assert status == 2 and "not both" in err


def test_a_malicious_weights_file_in_a_real_process_prints_one_line_and_runs_nothing(folder, tmp_path):
    torch.save({"state_dict": {}, "model": "spvdsr", "options": {}, "scale": 2,
                "metadata": _Exploit(tmp_path / "pwned")}, tmp_path / "evil.pt")
    result = srlib("upscale", str(folder / "a_rgb.png"), "-o", str(tmp_path / "big.png"), "--model", "spvdsr",
                   "--scale", "2", "--weights", str(tmp_path / "evil.pt"))
    _assert_one_line_error(result, "evil.pt", "refused")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.pt"]


def test_models_lists_every_shipped_weights_file_and_marks_one_default_per_network_and_scale(capsys):
    status, out, err = _in_process(capsys, "models")
    assert (status, err) == (0, "")
    entries = inference.pretrained_models()
    lines = out.splitlines()[1:]
    assert [line.split()[0] for line in lines] == [entry.name for entry in entries]
    defaults = [line for line in lines if "--model " in line]
    assert len(defaults) == len({(entry.model, entry.scale) for entry in entries})
    assert [line.split()[0] for line in lines if "upscale" in line] == [
        inference.default_pretrained(scale).name for scale in sorted({entry.scale for entry in entries},
                                                                     key=[e.scale for e in entries].index)]
    status, out, _ = _in_process(capsys, "models", "--json")
    assert [entry["name"] for entry in json.loads(out)] == [entry.name for entry in entries]


def test_upscale_without_a_model_uses_the_best_photo_network_shipped_for_the_scale(capsys, folder, tmp_path):
    entries = inference.pretrained_models()
    for scale in (2, 3, 4):
        photo = [entry for entry in entries if entry.scale == scale and "lineart" not in entry.name]
        assert inference.default_pretrained(scale) == max(photo, key=lambda entry: entry.psnr_set5)
    source = folder / "a_rgb.png"
    status, out, err = _in_process(capsys, "upscale", str(source), "-o", str(tmp_path / "big.png"), "--scale", "3")
    assert (status, err) == (0, ""), err
    default = inference.default_pretrained(3)
    expected = inference.upscale(read_image(source), inference.load_pretrained(default.name, 3))
    assert np.array_equal(read_image(tmp_path / "big.png"), expected)
    status, _, err = _in_process(capsys, "upscale", str(source), "-o", str(tmp_path / "x7.png"), "--scale", "7")
    assert status == 2 and "no pretrained weights for x7" in err and not (tmp_path / "x7.png").exists()


@pytest.mark.parametrize("model, capped", [("spvdsr", True), ("fsrcnn", False)])
def test_upscale_on_a_cpu_caps_onednn_at_avx2_for_narrow_networks(capsys, folder, tmp_path, monkeypatch, isa_unset,
                                                                 model, capped):
    monkeypatch.setattr(inference.platform, "machine", lambda: "x86_64")
    status, _, err = _in_process(capsys, "upscale", str(folder / "a_rgb.png"), "-o", str(tmp_path / "big.png"),
                                 "--scale", "2", "--model", model, "--device", "cpu")
    assert (status, err) == (0, "")
    assert os.environ.get("ONEDNN_MAX_CPU_ISA") == ("AVX2" if capped else None)


def test_upscale_takes_shipped_weights_by_name(capsys, folder, tmp_path):
    entry = inference.pretrained_models()[0]
    source = folder / "a_rgb.png"
    status, _, err = _in_process(capsys, "upscale", str(source), "-o", str(tmp_path / "big.png"),
                                 "--model", entry.name, "--scale", str(entry.scale))
    assert (status, err) == (0, ""), err
    expected = inference.upscale(read_image(source), inference.load_pretrained(entry.name, entry.scale))
    assert np.array_equal(read_image(tmp_path / "big.png"), expected)


# --- the photographer's files and the command's manners ---------------------------------------

@pytest.mark.parametrize("command", ["upscale", "eval"])
@pytest.mark.parametrize("device, message", [("cuda", "'cuda' is not available"), ("gpu", "unknown device 'gpu'")])
def test_a_device_the_machine_lacks_is_one_line_and_exit_2(command, device, message, folder, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    where = [str(folder / "a_rgb.png"), "-o", str(tmp_path / "o.png")] if command == "upscale" else ["--dataset", str(folder)]
    args = [command, *where, "--scale", "2", "--model", "spvdsr", "--device", device]
    status = cli.main(args)
    assert status == 2 and not (tmp_path / "o.png").exists()
    _assert_one_line_error(srlib(*args, env={"CUDA_VISIBLE_DEVICES": ""}), message)


def test_upscale_refuses_to_replace_its_input_unless_forced(folder, tmp_path):
    source = tmp_path / "photo.png"
    source.write_bytes((folder / "a_rgb.png").read_bytes())
    _assert_one_line_error(srlib("upscale", str(source), "-o", str(source), "--scale", "2"), "is the input", "--force")
    assert source.read_bytes() == (folder / "a_rgb.png").read_bytes()
    assert srlib("upscale", str(source), "-o", str(source), "--scale", "2", "--force").returncode == 0
    assert read_image(source).shape == (80, 104, 3)


def test_an_output_format_too_small_for_the_result_is_refused_before_any_work(folder, tmp_path, monkeypatch):
    monkeypatch.setattr(inference, "upscale", lambda *a, **k: pytest.fail("upscaled before checking the output"))
    status = cli.main(["upscale", str(folder / "a_rgb.png"), "-o", str(tmp_path / "icon.ico"), "--scale", "8"])
    assert status == 2 and not (tmp_path / "icon.ico").exists()
    _assert_one_line_error(srlib("upscale", str(folder / "a_rgb.png"), "-o", str(tmp_path / "icon.ico"), "--scale", "8"),
                           "416x320", "ICO", "at most 256")


def test_quality_sets_jpeg_compression_and_is_refused_for_lossless_formats(folder, tmp_path):
    sizes = {}
    for quality in ("30", "95"):
        out = tmp_path / f"q{quality}.jpg"
        assert srlib("upscale", str(folder / "a_rgb.png"), "-o", str(out), "--scale", "2", "--quality", quality).returncode == 0
        sizes[quality] = out.stat().st_size
    assert sizes["30"] < sizes["95"]
    _assert_one_line_error(srlib("upscale", str(folder / "a_rgb.png"), "-o", str(tmp_path / "q.png"), "--scale", "2",
                                 "--quality", "80"), "--quality applies to JPEG and WebP")
    _assert_one_line_error(srlib("upscale", str(folder / "a_rgb.png"), "-o", str(tmp_path / "q.jpg"), "--scale", "2",
                                 "--quality", "101"), "from 1 to 100")


def test_a_portrait_phone_photo_comes_out_upright_with_its_icc_profile_and_exif(tmp_path):
    from PIL import Image, ImageCms
    stored = np.zeros((30, 40, 3), dtype=np.uint8)  # landscape as stored, tagged "rotate 90° clockwise"
    stored[:, :20] = 200
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "PhoneMaker"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif.tobytes(), icc_profile=icc, quality=100)
    upright = read_image(tmp_path / "phone.jpg")
    assert upright.shape == (40, 30, 3) and upright[:15].mean() > 150 and upright[25:].mean() < 50

    result = srlib("upscale", str(tmp_path / "phone.jpg"), "-o", str(tmp_path / "big.jpg"), "--scale", "2")
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "big.jpg") as big:
        assert big.size == (60, 80)
        assert big.info.get("icc_profile") == icc
        assert big.getexif().get(0x010F) == "PhoneMaker" and big.getexif().get(0x0112, 1) == 1


def test_sixteen_bit_input_is_upscaled_with_a_warning_that_it_becomes_eight_bit(tmp_path):
    from PIL import Image
    wide = (np.add.outer(np.arange(32), np.arange(32)) * 1000).astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / "deep.png")
    result = srlib("upscale", str(tmp_path / "deep.png"), "-o", str(tmp_path / "out.png"), "--scale", "2")
    assert result.returncode == 0, result.stderr
    assert "16 bits per channel" in result.stderr and "8 bits" in result.stderr
    assert read_image(tmp_path / "out.png").shape == (64, 64)


def test_an_animated_gif_is_refused_not_cut_to_its_first_frame(tmp_path):
    from PIL import Image
    frames = [Image.fromarray(np.full((32, 32), v, dtype=np.uint8)) for v in (0, 128, 255)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    _assert_one_line_error(srlib("upscale", str(tmp_path / "anim.gif"), "-o", str(tmp_path / "out.gif"), "--scale", "2"),
                           "animated image (3 frames)")
    assert not (tmp_path / "out.gif").exists()


def test_ctrl_c_prints_one_line_exits_130_and_leaves_no_output(folder, tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(inference, "upscale", interrupted)
    status = cli.main(["upscale", str(folder / "a_rgb.png"), "-o", str(tmp_path / "o.png"), "--scale", "2"])
    assert status == 130 and capsys.readouterr().err == "srlib: interrupted\n"
    assert list(tmp_path.iterdir()) == []


def test_a_resumed_run_with_nothing_left_to_train_keeps_its_weights_and_says_so(capsys, folder, tmp_path):
    run = tmp_path / "run"
    status, _, err = _in_process(capsys, *_train_arguments(folder, run, "--epochs", "1", "--val", str(folder)))
    assert status == 0, err
    weights = (run / "weights.pt").read_bytes()
    status, out, err = _in_process(capsys, *_train_arguments(folder, run, "--epochs", "1", "--val", str(folder)))
    assert (status, err) == (0, "") and "nothing to do" in out and "validation" not in out
    assert (run / "weights.pt").read_bytes() == weights
