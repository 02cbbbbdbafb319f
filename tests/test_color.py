"""Tests for srlib.color: YCbCr conventions, MATLAB-exact luma, chroma subsampling, upscale_rgb."""
import numpy as np
import pytest
import torch

from srlib import color
from srlib.resample import resize

CONVENTIONS = ["studio", "full"]


def random_rgb(shape=(37, 51), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def smooth_rgb(shape=(40, 48), seed=0) -> np.ndarray:
    """A gently varying colour image (no clipping, no noise) for geometry checks."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]] / max(shape)
    channels = [128 + 80 * np.sin(2 * np.pi * (rng.uniform(0.3, 1) * xx + rng.uniform(0.3, 1) * yy) + rng.uniform(0, 6))
                for _ in range(3)]
    return np.round(np.stack(channels, axis=-1)).astype(np.uint8)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_float64_round_trip_is_exact_numpy(convention):
    rgb = np.random.default_rng(1).uniform(0, 255, (20, 30, 3))
    back = color.ycbcr_to_rgb(color.rgb_to_ycbcr(rgb, convention), convention)
    np.testing.assert_allclose(back, rgb, rtol=0, atol=1e-11)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_round_trip_is_exact_torch_float64_and_float32(convention):
    rgb = torch.rand(2, 3, 16, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 255
    back = color.ycbcr_to_rgb(color.rgb_to_ycbcr(rgb, convention), convention)
    torch.testing.assert_close(back, rgb, rtol=0, atol=1e-11)
    back32 = color.ycbcr_to_rgb(color.rgb_to_ycbcr(rgb.float(), convention), convention)
    assert back32.dtype == torch.float32
    torch.testing.assert_close(back32, rgb.float(), rtol=0, atol=1e-4)


def test_uint8_input_gives_float64_and_float32_is_kept():
    rgb = random_rgb()
    assert color.rgb_to_ycbcr(rgb).dtype == np.float64
    assert color.rgb_to_ycbcr(torch.from_numpy(rgb).permute(2, 0, 1)).dtype == torch.float64
    assert color.rgb_to_ycbcr(rgb.astype(np.float32), "full").dtype == np.float32


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_numpy_channels_last_and_torch_channels_first_agree(convention):
    rgb = random_rgb()
    from_numpy = color.rgb_to_ycbcr(rgb, convention)
    from_torch = color.rgb_to_ycbcr(torch.from_numpy(rgb).permute(2, 0, 1)[None], convention)
    np.testing.assert_allclose(from_torch[0].permute(1, 2, 0).numpy(), from_numpy, rtol=0, atol=1e-11)


@pytest.mark.parametrize("convention, rgb, expected", [
    ("studio", (255, 255, 255), (235, 128, 128)),
    ("studio", (0, 0, 0), (16, 128, 128)),
    ("studio", (255, 0, 0), (81.481, 90.203, 240.0)),
    ("full", (255, 255, 255), (255, 128, 128)),
    ("full", (0, 0, 0), (0, 128, 128)),
    ("full", (255, 0, 0), (76.245, 84.972, 255.5)),
])
def test_known_ycbcr_values(convention, rgb, expected):
    got = color.rgb_to_ycbcr(np.array([[rgb]], dtype=np.uint8), convention)[0, 0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-3)


def test_rgb_to_ycbcr_rejects_wrong_channel_count_and_convention():
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        color.rgb_to_ycbcr(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, H, W\)"):
        color.rgb_to_ycbcr(torch.zeros(4, 4, 3))
    with pytest.raises(ValueError, match="convention"):
        color.rgb_to_ycbcr(random_rgb(), "bt709")


def test_rgb_to_y_known_values():
    rgb = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    y = color.rgb_to_y(rgb)
    assert y.dtype == np.uint8
    assert y.tolist() == [[235, 16, 81, 145, 41]]


def test_rgb_to_y_equals_exact_rounding_for_every_colour_off_exact_halves():
    # Y = 16 + (65481 R + 128553 G + 24966 B) / 255000 exactly; off ties, rounding is unambiguous.
    levels = np.arange(256, dtype=np.int64)
    g, b = np.meshgrid(levels, levels, indexing="ij")
    ties = 0
    for r in range(256):
        numerator = 65481 * r + 128553 * g + 24966 * b
        exact = 16 + (numerator + 127500) // 255000
        tie = numerator % 255000 == 127500
        rgb = np.stack([np.full_like(g, r), g, b], axis=-1).astype(np.uint8)
        got = color.rgb_to_y(rgb)
        assert np.array_equal(got[~tie], exact[~tie]), f"mismatch for R={r}"
        ties += int(tie.sum())
    assert ties == 194


@pytest.mark.parametrize("rgb, expected", [((0, 204, 68), 125), ((1, 173, 225), 126),
                                           ((19, 185, 116), 125), ((39, 37, 80), 52)])
def test_rgb_to_y_exact_halves_follow_matlab_accumulation_order(rgb, expected):
    # These colours are exactly x.5 in decimal; MATLAB's ((T1 R + T2 G) + T3 B) + 16 in double
    # lands just below or above the half, and that decides the uint8 result. The last two round
    # up if the offset is added first, if T = c / 255, or if the sum is divided by 255 at the end.
    assert color.rgb_to_y(np.array([[rgb]], dtype=np.uint8))[0, 0] == expected


def test_rgb_to_y_of_grey_equals_equal_channels():
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert np.array_equal(color.rgb_to_y(grey), color.rgb_to_y(np.repeat(grey[..., None], 3, axis=2)))


def test_rgb_to_y_rejects_float_and_rgba():
    with pytest.raises(ValueError, match="uint8"):
        color.rgb_to_y(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        color.rgb_to_y(np.zeros((4, 4, 4), np.uint8))


def test_round_half_away_rounds_halves_up_not_to_even():
    assert color.round_half_away(np.array([0.5, 1.5, 2.5, 2.4999, 254.5])).tolist() == [1, 2, 3, 2, 255]


@pytest.mark.parametrize("scheme, shape", [("4:4:4", (37, 51)), ("4:2:2", (37, 26)),
                                           ("4:2:0", (19, 26)), ("4:1:1", (37, 13))])
def test_subsampled_chroma_plane_sizes(scheme, shape):
    planes = color.subsample_chroma(random_rgb((37, 51)), scheme)
    assert planes.y.shape == (37, 51)
    assert planes.cb.shape == planes.cr.shape == shape


def test_subsampling_leaves_luma_untouched():
    rgb = random_rgb()
    planes = color.subsample_chroma(rgb, "4:2:0", convention="studio")
    np.testing.assert_array_equal(planes.y, color.rgb_to_ycbcr(rgb, "studio")[..., 0])


def test_444_round_trip_is_lossless():
    rgb = random_rgb()
    assert np.array_equal(color.chroma_roundtrip(rgb, "4:4:4", down_kernel="bspline", up_kernel="bspline"), rgb)


@pytest.mark.parametrize("scheme", list(color.SCHEMES))
@pytest.mark.parametrize("siting", color.SITINGS)
@pytest.mark.parametrize("kernels", [("box", "triangle"), ("lanczos3", "bicubic"), ("nearest", "mitchell")])
def test_flat_colour_survives_every_scheme(scheme, siting, kernels):
    rgb = np.broadcast_to(np.array([200, 30, 90], np.uint8), (21, 35, 3)).copy()
    out = color.chroma_roundtrip(rgb, scheme, down_kernel=kernels[0], up_kernel=kernels[1], siting=siting)
    assert np.array_equal(out, rgb)


def ramp_rgb(width=64) -> np.ndarray:
    """Blue rises linearly left to right, so Cb is linear in the column index."""
    rgb = np.zeros((8, width, 3), np.uint8)
    rgb[..., 0], rgb[..., 1] = 100, 120
    rgb[..., 2] = 4 * np.arange(width)
    return rgb


@pytest.mark.parametrize("scheme, factor", [("4:2:0", 2), ("4:1:1", 4)])
def test_chroma_siting_positions(scheme, factor):
    rgb = ramp_rgb()
    cb = color.rgb_to_ycbcr(rgb, "full")[0, :, 1]
    slope = cb[1] - cb[0]
    inner = slice(2, 64 // factor - 2)  # away from the mirrored borders
    j = np.arange(64 // factor)[inner]
    left = color.subsample_chroma(rgb, scheme, kernel="triangle", siting="left").cb[0, inner]
    center = color.subsample_chroma(rgb, scheme, kernel="triangle", siting="center").cb[0, inner]
    np.testing.assert_allclose(left, cb[0] + slope * factor * j, atol=1e-9)  # on column factor * j
    np.testing.assert_allclose(center, cb[0] + slope * (factor * j + (factor - 1) / 2), atol=1e-9)


@pytest.mark.parametrize("siting", color.SITINGS)
def test_linear_chroma_is_reconstructed_at_either_siting(siting):
    rgb = ramp_rgb(63)  # odd: the padded column must be cut off again on the right
    out = color.chroma_roundtrip(rgb, "4:2:0", down_kernel="triangle", up_kernel="triangle", siting=siting)
    assert np.abs(out[:, 4:-4].astype(int) - rgb[:, 4:-4]).max() <= 1


@pytest.mark.parametrize("scheme", list(color.SCHEMES))
@pytest.mark.parametrize("siting", color.SITINGS)
def test_chroma_positions_are_where_subsample_chroma_samples(scheme, siting):
    yy, xx = np.mgrid[0:32, 0:48]
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 60, 90, 2 * xx + 3 * yy  # Cb linear in row and column
    cb = color.rgb_to_ycbcr(rgb, "full")[..., 1]
    dy, dx = cb[1, 0] - cb[0, 0], cb[0, 1] - cb[0, 0]
    rows, cols = color.chroma_positions(scheme, siting, (32, 48))
    planes = color.subsample_chroma(rgb, scheme, kernel="triangle", siting=siting)
    assert planes.cb.shape == (len(rows), len(cols))
    inner = (slice(2, -2), slice(2, -2))  # away from the mirrored borders
    expected = cb[0, 0] + dy * rows[:, None] + dx * cols[None, :]
    np.testing.assert_allclose(planes.cb[inner], expected[inner], atol=1e-9)


def test_chroma_positions_of_a_420_block_and_bad_shape():
    rows, cols = color.chroma_positions("4:2:0", "left", (3, 5))
    np.testing.assert_array_equal(rows, [0.5, 2.5])
    np.testing.assert_array_equal(cols, [0.0, 2.0, 4.0])
    with pytest.raises(ValueError, match="shape"):
        color.chroma_positions("4:2:0", "center", (0, 5))


def test_unknown_scheme_siting_and_non_uint8_rgb_are_rejected():
    with pytest.raises(ValueError, match="scheme"):
        color.subsample_chroma(random_rgb(), "4:2:1")
    with pytest.raises(ValueError, match="siting"):
        color.subsample_chroma(random_rgb(), "4:2:0", siting="top")
    with pytest.raises(ValueError, match="uint8 RGB"):
        color.subsample_chroma(random_rgb().astype(float))


def test_upscale_rgb_with_one_linear_kernel_equals_rgb_resize():
    rgb = random_rgb()
    out = color.upscale_rgb(rgb, 2, lambda y: resize(y, 2, kernel="bicubic"), chroma_kernel="bicubic")
    expected = resize(rgb, 2, kernel="bicubic")
    assert out.shape == expected.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - expected).max() <= 1


def test_upscale_rgb_gives_the_upscaler_unrounded_studio_y():
    rgb = random_rgb()
    seen = []

    def upscaler(y):
        seen.append(y)
        return resize(y, 3, kernel="nearest")

    color.upscale_rgb(rgb, 3, upscaler)
    assert seen[0].dtype == np.float64 and seen[0].shape == rgb.shape[:2]
    np.testing.assert_array_equal(seen[0], color.rgb_to_ycbcr(rgb, "studio")[..., 0])


def test_upscale_rgb_passes_alpha_through_and_keeps_grey_grey():
    rgba = np.concatenate([smooth_rgb(), np.full((40, 48, 1), 77, np.uint8)], axis=2)
    out = color.upscale_rgb(rgba, 2, lambda y: resize(y, 2, kernel="bicubic"))
    assert out.shape == (80, 96, 4) and np.all(out[..., 3] == 77)
    grey = smooth_rgb()[..., 0]
    out = color.upscale_rgb(grey, 2, lambda y: resize(y, 2, kernel="bicubic"), chroma_kernel="bicubic")
    assert out.shape == (80, 96)
    assert np.abs(out.astype(int) - resize(grey, 2, kernel="bicubic")).max() <= 1


def test_upscale_rgb_rejects_a_wrongly_sized_luma():
    with pytest.raises(ValueError, match="y_upscaler returned shape"):
        color.upscale_rgb(random_rgb(), 2, lambda y: y)


def test_as_rgb_repeats_grey_and_leaves_alpha_out():
    grey = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert np.array_equal(color.as_rgb(grey), np.stack([grey] * 3, axis=2))
    rgba = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(color.as_rgb(rgba), rgba[..., :3])
