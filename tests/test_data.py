"""srlib.data: the registry, load_set, verified downloads, LR/HR pairs, and the protocol's
bicubic baselines reproduced on the real benchmark images (found through $SRLIB_DATA)."""
import csv
import hashlib
import os
import re
import threading
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from srlib import data, metrics, resample
from srlib.data import DATASETS, DataFile, Dataset, DatasetNotFound, DownloadError
from srlib.imageio import ImageError, write_image

NO_DATA = ("SRLIB_DATA is not set: point it at the folder holding the benchmark sets "
           "(Set5/, BSD100/, ... and MANIFEST.tsv) to run this test")


def _require(name: str) -> None:
    """Skip unless $SRLIB_DATA is set and holds ``name`` (a set folder or a file)."""
    if not os.environ.get(data.ENV_VAR):
        pytest.skip(NO_DATA)
    if not (data.data_root() / name).exists():
        pytest.skip(f"{name} is not in $SRLIB_DATA ({data.data_root()})")


def _manifest() -> list[dict[str, str]]:
    _require("MANIFEST.tsv")
    with open(data.data_root() / "MANIFEST.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


# --- registry -------------------------------------------------------------------------

def test_data_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SRLIB_DATA", str(tmp_path))
    assert data.data_root() == tmp_path
    monkeypatch.delenv("SRLIB_DATA")
    assert data.data_root() == data.DEFAULT_ROOT.expanduser()


def test_registry_names_the_eight_sets_with_their_roles():
    roles = {name: dataset.role for name, dataset in DATASETS.items()}
    assert roles == {"Set5": "test", "Set14": "test", "BSD100": "test", "Urban100": "test",
                     "T91": "train", "BSD200": "train", "General-100": "train", "DIV2K": "train/valid"}


def test_registry_lists_pinned_raw_github_urls():
    pinned = re.compile(r"https://raw\.githubusercontent\.com/[\w.-]+/[\w.-]+/[0-9a-f]{40}/.+")
    for dataset in DATASETS.values():
        for entry in dataset.files:
            assert pinned.fullmatch(entry.url), entry.url
            assert entry.url.endswith("/" + entry.name)
            assert re.fullmatch(r"[0-9a-f]{64}", entry.sha256) and entry.size > 0


def test_sets_without_a_verified_list_carry_no_checksums_but_a_source():
    for name in ("Urban100", "General-100", "DIV2K"):
        assert DATASETS[name].files == ()
        assert all(url.startswith("http") for url in DATASETS[name].source) and DATASETS[name].source


def test_registry_matches_the_manifest():
    rows = _manifest()
    expected = {(r["set"], r["file"], r["sha256"], int(r["bytes"]),
                 f"https://raw.githubusercontent.com/{r['source_repo']}/{r['commit']}/{r['path']}")
                for r in rows}
    registered = {(name, f.name, f.sha256, f.size, f.url) for name, d in DATASETS.items() for f in d.files}
    assert registered == expected
    assert len(registered) == len(rows)


def test_files_on_disk_match_the_registry():
    _require("Set5")
    for name, dataset in DATASETS.items():
        if not (data.data_root() / name).is_dir():
            continue
        for entry in dataset.files:
            raw = (data.data_root() / name / entry.name).read_bytes()
            assert (len(raw), hashlib.sha256(raw).hexdigest()) == (entry.size, entry.sha256), entry.name


# --- load_set ---------------------------------------------------------------------------

def test_load_set_reads_set5_sorted_with_manifest_sizes():
    _require("Set5")
    sizes = {r["file"].rsplit(".", 1)[0]: (int(r["height"]), int(r["width"]))
             for r in _manifest() if r["set"] == "Set5"}
    images = data.load_set("Set5")
    assert [name for name, _ in images] == sorted(sizes)
    for name, image in images:
        assert image.dtype == np.uint8 and image.shape == (*sizes[name], 3)


def test_load_set_keeps_set14_bridge_grey():
    _require("Set14")
    images = dict(data.load_set("set14"))  # names are case-insensitive
    assert len(images) == 14
    assert images["bridge"].shape == (512, 512)
    assert images["lenna"].shape == (512, 512, 3)


def test_load_set_reads_a_folder_of_images_sorted(tmp_path):
    rng = np.random.default_rng(1)
    write_image(tmp_path / "b.png", rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    write_image(tmp_path / "a.bmp", rng.integers(0, 256, (20, 30), dtype=np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".c.png.1234.tmp.png").write_bytes(b"half-written temporary")
    images = data.load_set(tmp_path)
    assert [(name, image.shape) for name, image in images] == [("a", (20, 30)), ("b", (20, 30, 3))]


def test_load_set_drops_an_opaque_alpha_but_refuses_transparency(tmp_path):
    rgba = np.full((16, 16, 4), 255, np.uint8)
    write_image(tmp_path / "opaque.png", rgba)
    assert data.load_set(tmp_path)[0][1].shape == (16, 16, 3)
    rgba[0, 0, 3] = 0
    write_image(tmp_path / "opaque.png", rgba)
    with pytest.raises(ImageError, match="transparent"):
        data.load_set(tmp_path)


def test_missing_set_says_which_variable_to_set_and_what_to_run(monkeypatch, tmp_path):
    monkeypatch.setenv("SRLIB_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFound) as exc:
        data.load_set("Set5")
    message = str(exc.value)
    assert isinstance(exc.value, FileNotFoundError)
    assert "\n" not in message and "SRLIB_DATA" in message and "srlib download Set5" in message


def test_incomplete_set_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("SRLIB_DATA", str(tmp_path))
    (tmp_path / "Set5").mkdir()
    write_image(tmp_path / "Set5" / "baby_GT.bmp", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DatasetNotFound, match=r"lacks 4 of its 5 files.*srlib download Set5"):
        data.load_set("Set5")


def test_unknown_name_that_is_no_folder_is_refused(tmp_path):
    with pytest.raises(DatasetNotFound, match="neither a known dataset"):
        data.load_set(str(tmp_path / "Set6"))


# --- download against a real HTTP server on 127.0.0.1 -----------------------------------

def _serve(handler) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A registered two-file set 'Tiny', a folder served over HTTP holding copies of its
    files (tests damage them), and an empty data root."""
    rng = np.random.default_rng(2)
    served = tmp_path / "served"
    served.mkdir()
    files = []
    for name in ("one.png", "two.png"):
        write_image(served / name, rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
        raw = (served / name).read_bytes()
        files.append(DataFile(name, hashlib.sha256(raw).hexdigest(), len(raw), f"unused://{name}"))
    monkeypatch.setitem(DATASETS, "Tiny", Dataset("Tiny", "test", "two test files", (), tuple(files)))
    server, url = _serve(partial(_QuietFiles, directory=str(served)))
    yield served, url, tmp_path / "root"
    server.shutdown()
    server.server_close()


def _leftovers(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_download_fetches_and_verifies_every_file(tiny):
    served, url, root = tiny
    folder = data.download("Tiny", root, base_url=url)
    assert folder == root / "Tiny"
    assert _leftovers(root) == ["Tiny", "Tiny/one.png", "Tiny/two.png"]
    for name in ("one.png", "two.png"):
        assert (folder / name).read_bytes() == (served / name).read_bytes()


def test_fetch_downloads_only_the_missing_sets_once_counting_every_byte(tiny, monkeypatch, capsys):
    served, url, root = tiny
    monkeypatch.setenv(data.ENV_VAR, str(root))
    real, counted = data.download, []

    def counting(*args, progress=None, **kwargs):
        return real(*args, progress=lambda n: (counted.append(n), progress(n)), **kwargs)
    monkeypatch.setattr(data, "download", counting)
    assert data.fetch(["Tiny"], base_url=url) == [root / "Tiny"]
    assert "Tiny" in capsys.readouterr().err  # the progress bar
    assert sum(counted) == sum((served / name).stat().st_size for name in ("one.png", "two.png"))
    counted.clear()
    assert data.fetch(["Tiny"], base_url=url) == [root / "Tiny"] and counted == []  # present: not fetched again


def test_download_keeps_intact_files_without_fetching_again(tiny):
    served, url, root = tiny
    data.download("Tiny", root, base_url=url)
    for name in ("one.png", "two.png"):
        (served / name).unlink()  # the server would now answer 404
    assert data.download("Tiny", root, base_url=url) == root / "Tiny"


def test_truncated_download_is_refused_and_leaves_nothing(tiny):
    served, url, root = tiny
    (served / "one.png").write_bytes((served / "one.png").read_bytes()[:-10])
    with pytest.raises(DownloadError, match="truncated") as exc:
        data.download("Tiny", root, base_url=url)
    assert "\n" not in str(exc.value)
    assert _leftovers(root) == []


def test_corrupted_download_is_refused_and_leaves_nothing(tiny):
    served, url, root = tiny
    raw = bytearray((served / "two.png").read_bytes())
    raw[-20] ^= 0xFF
    (served / "two.png").write_bytes(bytes(raw))
    with pytest.raises(DownloadError, match="corrupted"):
        data.download("Tiny", root, base_url=url)
    assert _leftovers(root) == ["Tiny", "Tiny/one.png"]  # the good first file stays


def test_corrupted_file_on_disk_is_replaced(tiny):
    served, url, root = tiny
    data.download("Tiny", root, base_url=url)
    (root / "Tiny" / "one.png").write_bytes(b"damaged")
    data.download("Tiny", root, base_url=url)
    assert (root / "Tiny" / "one.png").read_bytes() == (served / "one.png").read_bytes()


def test_connection_dropped_mid_file_is_refused_and_leaves_nothing(tiny):
    _, _, root = tiny

    class Dropping(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(DATASETS["Tiny"].files[0].size))
            self.end_headers()
            self.wfile.write(b"\x89PNG only the start")

        def log_message(self, *args) -> None:
            pass

    server, url = _serve(Dropping)
    try:
        with pytest.raises(DownloadError, match="truncated"):
            data.download("Tiny", root, base_url=url)
    finally:
        server.shutdown()
        server.server_close()
    assert _leftovers(root) == []


def test_missing_file_on_server_is_refused_and_leaves_nothing(tiny):
    served, url, root = tiny
    (served / "one.png").unlink()
    with pytest.raises(DownloadError, match="404"):
        data.download("Tiny", root, base_url=url)
    assert _leftovers(root) == []


def test_download_of_a_set_without_verified_list_explains_the_manual_route(tmp_path):
    with pytest.raises(ValueError, match=r"no verified file list.*DIV2K_train_HR\.zip"):
        data.download("DIV2K", tmp_path)
    assert _leftovers(tmp_path) == []


def test_download_of_an_unknown_set_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'Set6'; known: Set5"):
        data.download("Set6", tmp_path)


# --- modcrop and LR/HR pairs --------------------------------------------------------------

def test_modcrop_keeps_the_top_left_multiple_of_scale():
    image = np.arange(11 * 7 * 3).reshape(11, 7, 3)
    np.testing.assert_array_equal(data.modcrop(image, 3), image[:9, :6])
    np.testing.assert_array_equal(data.modcrop(image[..., 0], 4), image[:8, :4, 0])


@pytest.mark.parametrize("scale", [0, 2.5, -2])
def test_modcrop_rejects_a_non_integer_or_non_positive_scale(scale):
    with pytest.raises(ValueError, match="scale"):
        data.modcrop(np.zeros((8, 8)), scale)


def test_make_pair_shrinks_the_cropped_image_with_matlab_bicubic():
    hr = np.random.default_rng(3).integers(0, 256, (50, 37, 3), dtype=np.uint8)
    lr, cropped = data.make_pair(hr, 3)
    np.testing.assert_array_equal(cropped, hr[:48, :36])
    assert lr.dtype == np.uint8 and lr.shape == (16, 12, 3)
    np.testing.assert_array_equal(lr, resample.imresize(hr[:48, :36], 1 / 3))


# --- the protocol's bicubic baselines (Kim et al. 2016, VDSR, Table 3) -------------------

PUBLISHED_BICUBIC = {("Set5", 2): 33.66, ("Set5", 3): 30.39, ("Set5", 4): 28.42,
                     ("BSD100", 2): 29.56, ("BSD100", 3): 27.21, ("BSD100", 4): 25.96}
_loaded: dict[str, list] = {}


@pytest.mark.parametrize("name, scale", list(PUBLISHED_BICUBIC))
def test_bicubic_baseline_reproduces_the_published_psnr(name, scale):
    _require(name)
    if name not in _loaded:
        _loaded[name] = data.load_set(name)
    scores = []
    for _, image in _loaded[name]:
        lr, hr = data.make_pair(image, scale)
        sr = resample.imresize(lr, scale)
        assert sr.shape == hr.shape
        scores.append(metrics.evaluate(sr, hr, scale)["psnr"])
    assert np.mean(scores) == pytest.approx(PUBLISHED_BICUBIC[name, scale], abs=0.02)


def test_missing_lists_absent_and_incomplete_sets_by_their_registered_names(monkeypatch, tmp_path):
    monkeypatch.setenv("SRLIB_DATA", str(tmp_path))
    (tmp_path / "Set5").mkdir()
    for entry in DATASETS["Set5"].files:
        (tmp_path / "Set5" / entry.name).write_bytes(b"")
    (tmp_path / "Set14").mkdir()
    (tmp_path / "Set14" / DATASETS["Set14"].files[0].name).write_bytes(b"")
    assert data.missing(["Set5", "set14", "T91"]) == ["Set14", "T91"]
    with pytest.raises(ValueError, match="unknown dataset"):
        data.missing(["Set6"])
