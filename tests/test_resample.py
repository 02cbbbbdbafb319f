"""srlib.resample: kernels, agreement with Pillow, and MATLAB's imresize conventions."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import data

from srlib import resample
from srlib.resample import KERNELS, contributions, cubic, imresize, mirror_index, resize, sinc

PILLOW = {"nearest": Image.NEAREST, "box": Image.BOX, "bilinear": Image.BILINEAR,
          "bicubic": Image.BICUBIC, "lanczos3": Image.LANCZOS}
SIZES = [(1024, 1024), (1536, 1536), (256, 256), (171, 171), (333, 517), (700, 411), (97, 131)]


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return data.astronaut()


def pillow_float(image: np.ndarray, size: tuple[int, int], kernel: str) -> np.ndarray:
    """Pillow's float ('F') path per channel, rounded once: Pillow's 8-bit path rounds and
    clips between its two passes, so it drifts by up to ~10 levels next to strong edges."""
    planes = [Image.fromarray(image[..., c].astype(np.float32), "F").resize(size[::-1], PILLOW[kernel])
              for c in range(image.shape[2])]
    return np.clip(np.round(np.stack([np.asarray(p) for p in planes], -1)), 0, 255)


def interior(a: np.ndarray, in_size: int, out_size: int, support: float) -> np.ndarray:
    """Drop the border band where Pillow truncates its kernel and srlib mirrors the image."""
    ratio = out_size / in_size
    band = math.ceil((support + 1) * max(ratio, 1 / ratio))
    return a[band:-band, band:-band]


@pytest.mark.parametrize("kernel", ["box", "bilinear", "bicubic", "lanczos3"])
@pytest.mark.parametrize("size", SIZES)
def test_resize_matches_pillow_within_one_grey_level(photo, kernel, size):
    ours = resize(photo, size=size, kernel=kernel)
    theirs = pillow_float(photo, size, kernel)
    assert ours.dtype == np.uint8 and ours.shape == (*size, 3)
    diff = np.abs(ours.astype(int) - theirs.astype(int))
    assert interior(diff, 512, size[0], KERNELS[kernel].support).max() <= 1


@pytest.mark.parametrize("size", [(1024, 1024), (1536, 1536), (256, 256), (128, 128)])
def test_nearest_matches_pillow_for_integer_factors(photo, size):
    ours = resize(photo, size=size, kernel="nearest")
    theirs = np.asarray(Image.fromarray(photo).resize(size[::-1], Image.NEAREST))
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("size", [(333, 517), (700, 411), (97, 131)])
def test_nearest_picks_the_input_pixel_under_each_output_centre(photo, size):
    # Pillow's NEAREST steps through the image in 16.16 fixed point and drifts by one pixel on
    # ~0.3 % of outputs for such factors; the exact rule is floor((x + 0.5) * in / out).
    rows = np.floor((np.arange(size[0]) + 0.5) * 512 / size[0]).astype(int)
    cols = np.floor((np.arange(size[1]) + 0.5) * 512 / size[1]).astype(int)
    np.testing.assert_array_equal(resize(photo, size=size, kernel="nearest"), photo[rows][:, cols])


def test_kernels_interpolate_where_they_should():
    t = np.arange(-4, 5)
    for name in ["nearest", "box", "triangle", "bicubic", "catmull-rom", "lanczos2", "lanczos3", "lanczos4"]:
        np.testing.assert_allclose(KERNELS[name](t), (t == 0).astype(float), atol=1e-12, err_msg=name)
    # The B-spline and Mitchell filters blur: they do not pass through the samples.
    assert KERNELS["bspline"](0.0) == pytest.approx(2 / 3)
    assert KERNELS["mitchell"](0.0) == pytest.approx(8 / 9)


def test_keys_bicubic_is_catmull_rom_and_cubic_family_has_unit_dc_gain():
    t = np.linspace(-2.5, 2.5, 1001)
    np.testing.assert_allclose(KERNELS["bicubic"](t), KERNELS["catmull-rom"](t), atol=1e-12)
    for B, C in [(1, 0), (1 / 3, 1 / 3), (0, 0.5), (0.2, 0.7)]:
        k = cubic(B, C)
        # Sum over integer shifts = 1 for any offset: flat areas stay flat.
        for shift in [0.0, 0.25, 0.5]:
            assert k(np.arange(-3, 4) + shift).sum() == pytest.approx(1.0)


def test_sinc_is_refused_for_resampling():
    with pytest.raises(ValueError, match="infinitely long"):
        resize(np.zeros((4, 4)), 2, kernel=sinc)


def test_mirror_index_reflects_with_edge_repeated():
    np.testing.assert_array_equal(mirror_index(np.arange(-3, 7), 4), [2, 1, 0, 0, 1, 2, 3, 3, 2, 1])


@pytest.mark.parametrize("kernel", ["bilinear", "bicubic", "lanczos3", "mitchell"])
def test_upscale_downscale_keep_constant_images_constant(kernel):
    flat = np.full((37, 53), 0.625, np.float32)
    for scale in [0.3, 0.5, 1.7, 2, 3]:
        np.testing.assert_allclose(resize(flat, scale, kernel=kernel), 0.625, atol=1e-6)


def test_resize_accepts_non_integer_scales_and_sizes():
    img = np.random.default_rng(0).random((50, 70))
    assert resize(img, 1.5).shape == (75, 105)
    assert resize(img, (0.5, 2.0)).shape == (25, 140)
    assert resize(img, size=(13, 200)).shape == (13, 200)
    assert resize(img, 2 / 3).shape == (34, 47)


def test_float_inputs_keep_their_dtype_and_are_not_clipped():
    img = np.zeros((16, 16), np.float32)
    img[:, 8:] = 1.0
    out = resize(img, 2, kernel="lanczos3")
    assert out.dtype == np.float32
    assert out.max() > 1.0 and out.min() < 0.0  # ringing survives in float


def test_torch_batched_input_matches_numpy_per_image():
    rng = np.random.default_rng(1)
    batch = rng.random((2, 3, 20, 30), dtype=np.float32)
    out = resize(torch.from_numpy(batch), 2, kernel="lanczos3")
    assert isinstance(out, torch.Tensor) and out.shape == (2, 3, 40, 60) and out.dtype == torch.float32
    for n in range(2):
        ref = resize(batch[n].transpose(1, 2, 0), 2, kernel="lanczos3").transpose(2, 0, 1)
        np.testing.assert_allclose(out[n].numpy(), ref, atol=1e-5)


def dense(in_len: int, out_len: int, scale: float, kernel: str) -> np.ndarray:
    """The whole (out_len x in_len) resampling matrix, from the contributions, borders mirrored."""
    index, weight = contributions(in_len, out_len, scale, kernel)
    matrix = np.zeros((out_len, in_len))
    np.add.at(matrix, (np.arange(out_len)[:, None], mirror_index(index, in_len)), weight)
    return matrix


@pytest.mark.parametrize("width", [170, 192])
@pytest.mark.parametrize("scale", [2, 3, 4, 0.5, 1 / 3, 0.25, 1.7, 0.62])
@pytest.mark.parametrize("kernel", ["bicubic", "lanczos3"])
def test_blocked_passes_equal_the_dense_matrix_product(scale, kernel, width):
    # Integer factors take the fast paths (rows read in place, one shared tile for the
    # columns, read in place too when shrinking a width the blocks tile: 192 at 1/2, 1/3
    # and 1/4); others the gathered one: every path must be the plain matrix product.
    x = torch.rand(2, 3, 150, width, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    out = resize(x, scale, kernel=kernel)
    rows = dense(150, out.shape[-2], scale, kernel)
    cols = dense(width, out.shape[-1], scale, kernel)
    expected = torch.from_numpy(rows) @ x @ torch.from_numpy(cols).T
    assert (out - expected).abs().max().item() < 1e-12


@pytest.mark.parametrize("scale, width, in_place", [(0.5, 192, True), (1 / 3, 192, True), (0.25, 192, True),
                                                     (0.5, 170, False), (0.62, 192, False)])
def test_shrinking_reads_the_column_windows_in_place_when_the_blocks_tile_the_rows(scale, width, in_place):
    x = torch.rand(3, 40, width, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    plan = resample._plan(width, math.ceil(width * scale - 1e-9), scale, resample.get_kernel("bicubic"), True, 0.0, 16)
    assert (resample._shrink_cols_in_place(x, plan) is not None) is in_place


def test_torch_uint8_tensor_rounds_like_numpy(photo):
    ref = resize(photo, 0.5)
    out = resize(torch.from_numpy(photo).permute(2, 0, 1), 0.5)
    assert out.dtype == torch.uint8
    np.testing.assert_array_equal(out.permute(1, 2, 0).numpy(), ref)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu():
    x = torch.rand(2, 1, 64, 48)
    np.testing.assert_allclose(resize(x.cuda(), 2, kernel="lanczos3").cpu(), resize(x, 2, kernel="lanczos3"), atol=1e-4)


def test_offset_shifts_sample_positions():
    ramp = np.tile(np.arange(40, dtype=np.float64), (8, 1))
    out = resize(ramp, (1, 0.5), kernel="bilinear", antialias=False, offset=(0, -0.5))
    # Without offset output k sits at 2k + 0.5; the offset moves it onto input pixel 2k.
    np.testing.assert_allclose(out[0, 1:-1], np.arange(2, 38, 2))


@pytest.mark.parametrize("bad, message", [
    (dict(scale=0), "positive"), (dict(scale=-2), "positive"), (dict(scale=float("nan")), "positive"),
    (dict(scale=2, size=(4, 4)), "exactly one"), (dict(), "exactly one"),
    (dict(size=(0, 3)), "positive"), (dict(scale=(1, 2, 3)), "pair"), (dict(scale=2, kernel="cubic"), "unknown kernel"),
])
def test_bad_arguments_raise_one_clear_error(bad, message):
    with pytest.raises(ValueError, match=message):
        resize(np.zeros((8, 8)), **bad)


def test_bad_images_raise_one_clear_error():
    with pytest.raises(ValueError, match="dtype"):
        resize(np.zeros((8, 8), np.int32), 2)
    with pytest.raises(ValueError, match="shape"):
        resize(np.zeros(8), 2)


# --- MATLAB imresize conventions (srlib.resample.imresize's docstring) ---------------------------------

def test_imresize_output_size_is_ceil_of_scaled_size():
    img = np.zeros((100, 101), np.uint8)
    assert imresize(img, 1 / 3).shape == (34, 34)  # Pillow/torch would need a size; round() gives 33
    assert imresize(img, 1 / 2).shape == (50, 51)
    assert imresize(img, 3).shape == (300, 303)


def test_imresize_aligns_pixel_centres():
    # Cubic convolution reproduces straight lines, so away from the borders an upscaled ramp
    # samples the line at u = (x + 0.5) / s - 0.5: a corner-aligned resampler fails this.
    ramp = np.tile(np.arange(30, dtype=np.float64), (6, 1))
    for s in [2, 3, 4]:
        out = imresize(ramp, s)[0]
        u = (np.arange(30 * s) + 0.5) / s - 0.5
        np.testing.assert_allclose(out[3 * s:-3 * s], u[3 * s:-3 * s], atol=1e-9)


def test_imresize_antialiases_when_shrinking():
    # Stripes at the Nyquist frequency shrunk by 3: MATLAB's antialiased kernel (width 4 s,
    # scaled 1/s) averages them to grey; torch's bicubic (no antialiasing) samples single
    # input pixels and keeps full-contrast stripes, i.e. aliasing.
    stripes = np.tile(np.array([0.0, 1.0] * 24), (48, 1))
    ours = imresize(stripes, 1 / 3)[3:-3, 3:-3]
    assert np.ptp(ours) < 0.1 and ours.mean() == pytest.approx(0.5, abs=0.02)
    torch_bicubic = F.interpolate(torch.from_numpy(stripes)[None, None], scale_factor=1 / 3, mode="bicubic",
                                  align_corners=False)[0, 0].numpy()[3:-3, 3:-3]
    assert np.ptp(torch_bicubic) > 0.9


def test_imresize_weights_are_matlabs_at_a_border():
    # Output 0 of x2 upscaling sits at u = -0.25; MATLAB mirrors index -1 onto 0 and -2 onto 1.
    index, weight = contributions(8, 16, 2.0, "bicubic")
    keys = KERNELS["bicubic"]
    np.testing.assert_array_equal(mirror_index(index[0], 8), [1, 0, 0, 1])
    np.testing.assert_allclose(weight[0], keys(-0.25 - np.array([-2, -1, 0, 1])), atol=1e-15)
    x = np.zeros((4, 8))
    x[:, 1] = 100.0
    expected = (weight[0] * x[0, mirror_index(index[0], 8)]).sum()
    ours = imresize(x, 2)
    assert ours[0, 0] == pytest.approx(expected)
    # Pillow truncates and renormalises the kernel instead: different values at the border.
    pillow = np.asarray(Image.fromarray(x.astype(np.float32), "F").resize((16, 8), Image.BICUBIC))
    assert np.abs(pillow[0, :3] - ours[0, :3]).max() > 1


def test_imresize_downscale_kernel_spans_four_times_the_factor():
    index, weight = contributions(64, 16, 0.25, "bicubic")
    assert weight.shape[1] >= 16  # kernel width 4 / 0.25 = 16 input samples
    np.testing.assert_allclose(weight.sum(1), 1.0)
    assert (weight[5] != 0).sum() == 16


def test_imresize_rounds_uint8_once(photo):
    out = imresize(photo, 0.5)
    ref = np.clip(np.round(resize(photo.astype(np.float64), 0.5, kernel="bicubic")), 0, 255)
    np.testing.assert_array_equal(out, ref.astype(np.uint8))


def test_frequency_response_matches_closed_forms():
    from srlib.resample import frequency_response
    f = np.linspace(0, 1.5, 31)
    # box of width 1 -> sinc(f); triangle (box * box) -> sinc(f)^2; ideal sinc -> box.
    np.testing.assert_allclose(frequency_response("box", f), np.sinc(f), atol=1e-4)
    np.testing.assert_allclose(frequency_response("triangle", f), np.sinc(f) ** 2, atol=1e-4)
    np.testing.assert_array_equal(frequency_response(sinc, f), (f < 0.5).astype(float))


def test_a_channels_last_tensor_is_refused_with_how_to_fix_it_not_resampled_along_colour():
    with pytest.raises(ValueError, match=r"looks like \(H, W, C\).*permute\(2, 0, 1\)"):
        resize(torch.rand(64, 48, 3), 2)
    assert resize(torch.rand(3, 64, 48), 2).shape == (3, 128, 96)
