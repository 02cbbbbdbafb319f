"""The ``srlib`` command, run as a real subprocess (``python -m srlib``) so the tests hold
before and after the package is pip-installed."""
import json
import os
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from srlib import data, metrics, resample
from srlib.imageio import write_image

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
