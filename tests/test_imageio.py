"""srlib.imageio: layouts read_image returns, its one-line errors, and atomic writes."""
import numpy as np
import pytest
from PIL import Image, ImageFile

from srlib.imageio import MAX_PIXELS, ImageError, read_image, read_info, write_image

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)
GREY = RNG.integers(0, 256, (24, 32), dtype=np.uint8)
RGBA = RNG.integers(0, 256, (24, 32, 4), dtype=np.uint8)


def _one_line_naming(exc: pytest.ExceptionInfo, path) -> None:
    message = str(exc.value)
    assert "\n" not in message
    assert str(path) in message


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
@pytest.mark.parametrize("image", [RGB, GREY], ids=["rgb", "grey"])
def test_lossless_formats_round_trip_exactly(tmp_path, suffix, image):
    path = tmp_path / f"image{suffix}"
    write_image(path, image)
    back = read_image(path)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, image)


def test_auto_mode_keeps_alpha_as_fourth_channel(tmp_path):
    write_image(tmp_path / "a.png", RGBA)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), RGBA)


def test_auto_mode_turns_palette_and_cmyk_into_rgb(tmp_path):
    Image.fromarray(RGB).convert("P").save(tmp_path / "p.png")
    Image.fromarray(RGB).convert("CMYK").save(tmp_path / "c.jpg")
    palette = read_image(tmp_path / "p.png")
    assert palette.shape == (24, 32, 3)
    np.testing.assert_array_equal(palette, np.asarray(Image.open(tmp_path / "p.png").convert("RGB")))
    assert read_image(tmp_path / "c.jpg").shape == (24, 32, 3)


def test_auto_mode_gives_grey_with_alpha_as_rgba(tmp_path):
    Image.fromarray(RGBA).convert("LA").save(tmp_path / "la.png")
    out = read_image(tmp_path / "la.png")
    assert out.shape == (24, 32, 4)
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_sixteen_bit_grey_is_scaled_to_eight_bits(tmp_path):
    wide = (np.arange(24 * 32, dtype=np.uint16).reshape(24, 32) * 85).astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / "g16.png")
    out = read_image(tmp_path / "g16.png")
    assert out.shape == (24, 32) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.rint(wide / 257.0).astype(np.uint8))


def test_one_bit_image_reads_as_grey_0_or_255(tmp_path):
    Image.fromarray(GREY > 127).save(tmp_path / "bw.png")
    out = read_image(tmp_path / "bw.png")
    assert out.shape == (24, 32)
    np.testing.assert_array_equal(out, np.where(GREY > 127, 255, 0))


def test_forced_modes_convert_between_layouts(tmp_path):
    write_image(tmp_path / "g.png", GREY)
    write_image(tmp_path / "c.png", RGB)
    np.testing.assert_array_equal(read_image(tmp_path / "g.png", mode="RGB"), np.stack([GREY] * 3, axis=-1))
    np.testing.assert_array_equal(read_image(tmp_path / "c.png", mode="L"),
                                  np.asarray(Image.fromarray(RGB).convert("L")))
    rgba = read_image(tmp_path / "c.png", mode="RGBA")
    np.testing.assert_array_equal(rgba[..., :3], RGB)
    assert (rgba[..., 3] == 255).all()


def test_unknown_mode_is_rejected(tmp_path):
    write_image(tmp_path / "c.png", RGB)
    with pytest.raises(ValueError, match="mode"):
        read_image(tmp_path / "c.png", mode="YCbCr")


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError) as exc:
        read_image(tmp_path / "absent.png")
    _one_line_naming(exc, tmp_path / "absent.png")


def test_non_image_raises_image_error_naming_the_file(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image\nat all\n")
    with pytest.raises(ImageError, match="not an image") as exc:
        read_image(path)
    _one_line_naming(exc, path)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".jpg"])
def test_truncated_file_is_refused_not_padded(tmp_path, suffix):
    full = tmp_path / f"full{suffix}"
    write_image(full, RGB)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(ImageError, match="truncated") as exc:
        read_image(cut)
    _one_line_naming(exc, cut)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_corrupted_png_data_is_refused(tmp_path):
    path = tmp_path / "bad.png"
    write_image(path, RGB)
    raw = bytearray(path.read_bytes())
    raw[200:220] = bytes(20)  # inside the compressed pixel data
    path.write_bytes(bytes(raw))
    with pytest.raises(ImageError, match="corrupt") as exc:
        read_image(path)
    _one_line_naming(exc, path)


def test_image_above_max_pixels_is_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("1", (11_000, MAX_PIXELS // 11_000 + 1)).save(path)  # a few kB on disk
    with pytest.raises(ImageError, match="decompression bomb") as exc:
        read_image(path)
    _one_line_naming(exc, path)


def test_pillow_decompression_bomb_error_becomes_image_error(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (14_000, 13_000)).save(path)  # beyond Pillow's own hard limit
    with pytest.raises(ImageError, match="decompression bomb") as exc:
        read_image(path)
    _one_line_naming(exc, path)


def test_min_size_rejects_small_images(tmp_path):
    path = tmp_path / "small.png"
    write_image(path, RGB)
    assert read_image(path, min_size=24).shape == RGB.shape
    with pytest.raises(ImageError, match="too small") as exc:
        read_image(path, min_size=25)
    _one_line_naming(exc, path)


def test_float_image_is_refused(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray(RNG.random((8, 8), dtype=np.float32)).save(path)
    with pytest.raises(ImageError, match="floating-point"):
        read_image(path)


@pytest.mark.parametrize("bad, match", [
    (RGB.astype(np.float32), "uint8"),
    (np.zeros((4, 4, 2), np.uint8), "shape"),
    (np.zeros((2, 4, 4, 3), np.uint8), "shape"),
])
def test_write_image_rejects_wrong_arrays(tmp_path, bad, match):
    with pytest.raises(ValueError, match=match):
        write_image(tmp_path / "x.png", bad)
    assert list(tmp_path.iterdir()) == []


def test_write_image_rejects_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match="suffix"):
        write_image(tmp_path / "x.unknown", RGB)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "photo.jpg"
    write_image(path, RGB)
    before = path.read_bytes()
    with pytest.raises(ImageError, match="cannot write") as exc:
        write_image(path, RGBA)  # JPEG has no alpha channel
    _one_line_naming(exc, path)
    assert ".tmp" not in str(exc.value)  # the hidden temporary it wrote to is never named
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["photo.jpg"]


def test_write_image_replaces_an_existing_file(tmp_path):
    path = tmp_path / "a.png"
    write_image(path, RGB)
    write_image(path, GREY)
    np.testing.assert_array_equal(read_image(path), GREY)
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


def test_exif_orientation_turns_the_pixels_upright_and_read_info_reports_the_upright_size(tmp_path):
    stored = np.zeros((20, 30), dtype=np.uint8)
    stored[:, :10] = 255  # a bright left third, as stored
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90° counter-clockwise to view"
    Image.fromarray(stored).save(tmp_path / "o.png", exif=exif.tobytes())
    upright = read_image(tmp_path / "o.png")
    np.testing.assert_array_equal(upright, np.rot90(stored))
    info = read_info(tmp_path / "o.png")
    assert (info.width, info.height, info.bits, info.frames) == (20, 30, 8, 1)
    reread = Image.Exif()
    reread.load(info.exif)
    assert reread.get(0x0112) == 1


def test_sixteen_bit_files_are_reported_as_such(tmp_path):
    Image.fromarray(np.zeros((8, 8), dtype=np.uint16)).save(tmp_path / "g16.png")
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "g8.png")
    assert (read_info(tmp_path / "g16.png").bits, read_info(tmp_path / "g8.png").bits) == (16, 8)
