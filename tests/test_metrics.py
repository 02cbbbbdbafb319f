"""Tests for srlib.metrics: PSNR/SSIM against scikit-image, batching, errors, evaluate()."""
import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from srlib import data, metrics, resample
from srlib.color import rgb_to_y, rgb_to_ycbcr


def noisy_pair(shape=(64, 80), noise=12.0, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth uint8 image with texture, and a noisy copy of it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    clean = 128 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0) + rng.normal(0, 15, shape)
    a = np.clip(np.round(clean), 0, 255).astype(np.uint8)
    b = np.clip(np.round(clean + rng.normal(0, noise, shape)), 0, 255).astype(np.uint8)
    return a, b


def skimage_ssim(a, b, data_range=255):
    return structural_similarity(a.astype(np.float64), b.astype(np.float64), gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=data_range)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("crop", [0, 2, 4])
def test_psnr_and_ssim_match_skimage(seed, crop):
    a, b = noisy_pair(seed=seed, noise=4.0 * (seed + 1))
    inner = (slice(crop, a.shape[0] - crop), slice(crop, a.shape[1] - crop))
    expected_psnr = peak_signal_noise_ratio(a[inner], b[inner], data_range=255)
    assert metrics.psnr(a, b, crop=crop) == pytest.approx(expected_psnr, abs=1e-4)
    assert metrics.ssim(a, b, crop=crop) == pytest.approx(skimage_ssim(a[inner], b[inner]), abs=1e-4)


def test_skimage_ssim_is_the_mean_over_the_valid_region():
    a, b = noisy_pair()
    _, full_map = structural_similarity(a.astype(float), b.astype(float), gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, data_range=255, full=True)
    valid = full_map[5:-5, 5:-5]  # where the 11 x 11 window lies inside the image
    x, y = a.astype(float), b.astype(float)
    np.testing.assert_allclose(metrics.ssim_map(x, y), valid, rtol=0, atol=1e-10)
    on_torch = metrics.ssim_map(torch.from_numpy(x)[None, None], torch.from_numpy(y)[None, None])
    assert on_torch.shape == (1, 1, a.shape[0] - 10, a.shape[1] - 10)
    np.testing.assert_allclose(on_torch[0, 0].numpy(), valid, rtol=0, atol=1e-10)
    assert skimage_ssim(a, b) == pytest.approx(valid.mean(), abs=1e-12)
    assert full_map.mean() != pytest.approx(valid.mean(), abs=1e-4)  # padding would change the answer


def test_psnr_known_value_and_identical_images():
    a = np.zeros((8, 8), np.uint8)
    assert metrics.psnr(a, a + 1) == pytest.approx(20 * np.log10(255), abs=1e-12)  # MSE 1
    assert metrics.psnr(a, a) == float("inf")
    assert metrics.ssim(np.full((16, 16), 90, np.uint8), np.full((16, 16), 90, np.uint8)) == pytest.approx(1.0)


def test_crop_ignores_the_border():
    a, _ = noisy_pair()
    b = a.copy()
    b[:2], b[:, -2:] = 0, 255
    assert metrics.psnr(a, b, crop=2) == float("inf")
    assert metrics.ssim(a, b, crop=2) == pytest.approx(1.0)
    assert metrics.psnr(a, b, crop=1) < 30


def test_uint8_inputs_do_not_wrap_around():
    a, b = np.zeros((16, 16), np.uint8), np.full((16, 16), 255, np.uint8)
    assert metrics.psnr(a, b) == pytest.approx(0.0, abs=1e-12)


def test_ssim_does_not_depend_on_the_scale_of_the_data():
    a, b = noisy_pair()
    assert metrics.ssim(a / 255, b / 255, data_range=1.0) == pytest.approx(metrics.ssim(a, b), abs=1e-12)
    assert metrics.psnr(a / 255, b / 255, data_range=1.0) == pytest.approx(metrics.psnr(a, b), abs=1e-9)


@pytest.mark.parametrize("layout", ["NHW", "N1HW"])
def test_torch_batch_gives_per_image_numpy_values(layout):
    pairs = [noisy_pair(seed=s, noise=5.0 + 5 * s) for s in range(3)]
    a = torch.from_numpy(np.stack([p[0] for p in pairs]))
    b = torch.from_numpy(np.stack([p[1] for p in pairs]))
    if layout == "N1HW":
        a, b = a[:, None], b[:, None]
    for name in ("psnr", "ssim"):
        batch = getattr(metrics, name)(a, b, crop=3)
        assert batch.shape == (3,) and batch.dtype == torch.float64
        single = [getattr(metrics, name)(x, y, crop=3) for x, y in pairs]
        np.testing.assert_allclose(batch.numpy(), single, rtol=0, atol=1e-12)


def test_torch_single_image_gives_a_float():
    a, b = noisy_pair()
    value = metrics.ssim(torch.from_numpy(a).float(), torch.from_numpy(b).float())
    assert isinstance(value, float) and value == pytest.approx(metrics.ssim(a, b), abs=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batch_matches_cpu():
    a, b = (torch.from_numpy(x)[None] for x in noisy_pair())
    for name in ("psnr", "ssim"):
        on_gpu = getattr(metrics, name)(a.cuda(), b.cuda(), crop=2)
        assert on_gpu.device.type == "cuda"
        torch.testing.assert_close(on_gpu.cpu(), getattr(metrics, name)(a, b, crop=2), rtol=0, atol=1e-10)


@pytest.mark.parametrize("a, b, crop, message", [
    (np.zeros((20, 20)), np.zeros((20, 21)), 0, "differ in shape"),
    (np.zeros((20, 20, 3)), np.zeros((20, 20, 3)), 0, r"single-channel images \(H, W\)"),
    (np.zeros((20, 20)), np.zeros((20, 20)), 10, "cropped by 10"),
    (np.zeros((20, 20)), np.zeros((20, 20)), -1, "non-negative"),
    (np.zeros((20, 20)), torch.zeros(20, 20), 0, "not one of each"),
    (torch.zeros(2, 3, 20, 20), torch.zeros(2, 3, 20, 20), 0, r"\(N, 1, H, W\)"),
])
def test_bad_inputs_raise_one_line_errors(a, b, crop, message):
    for fn in (metrics.psnr, metrics.ssim):
        with pytest.raises(ValueError, match=message):
            fn(a, b, crop=crop)


def test_ssim_rejects_images_smaller_than_its_window():
    with pytest.raises(ValueError, match="smaller than the 11x11"):
        metrics.ssim(np.zeros((10, 30)), np.zeros((10, 30)))
    with pytest.raises(ValueError, match="smaller than the 11x11"):
        metrics.ssim(np.zeros((30, 30)), np.zeros((30, 30)), crop=10)
    assert metrics.psnr(np.zeros((10, 30), np.uint8), np.ones((10, 30), np.uint8)) == pytest.approx(48.1308036, abs=1e-6)


def colour_pair(seed=0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    hr = rng.integers(0, 256, (30, 36, 3), dtype=np.uint8)
    sr = np.clip(hr + rng.normal(0, 6, hr.shape).round(), 0, 255).astype(np.uint8)
    return sr, hr


def test_evaluate_measures_rounded_studio_y_with_scale_crop():
    sr, hr = colour_pair()
    result = metrics.evaluate(sr, hr, 3)
    y_sr, y_hr = rgb_to_y(sr), rgb_to_y(hr)
    assert result == {"psnr": metrics.psnr(y_sr, y_hr, crop=3), "ssim": metrics.ssim(y_sr, y_hr, crop=3)}
    unrounded = metrics.psnr(rgb_to_ycbcr(sr)[..., 0], rgb_to_ycbcr(hr)[..., 0], crop=3)
    assert result["psnr"] != pytest.approx(unrounded, abs=1e-3)


def test_evaluate_grey_equals_evaluate_of_equal_channels():
    sr, hr = (x[..., 0] for x in colour_pair())
    as_rgb = metrics.evaluate(np.repeat(sr[..., None], 3, axis=2), np.repeat(hr[..., None], 3, axis=2), 2)
    assert metrics.evaluate(sr, hr, 2) == as_rgb


def test_evaluate_rejects_non_uint8_mismatched_shapes_and_bad_scale():
    sr, hr = colour_pair()
    with pytest.raises(ValueError, match="uint8"):
        metrics.evaluate(sr.astype(np.float32), hr, 2)
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.evaluate(sr[:-1], hr, 2)
    with pytest.raises(ValueError, match="positive integer"):
        metrics.evaluate(sr, hr, 1.5)


def small_set() -> list[tuple[str, np.ndarray]]:
    """A colour and a grey image whose sides are not multiples of 3 (so modcrop matters)."""
    _, hr = colour_pair(seed=4)
    smooth = np.clip(np.round(128 + 80 * np.sin(np.mgrid[0:41, 0:38].sum(axis=0) / 6.0)), 0, 255).astype(np.uint8)
    return [("colour", np.repeat(np.repeat(hr, 2, axis=0), 2, axis=1)[:-1]), ("grey", smooth)]


def test_evaluate_set_scores_each_protocol_pair_and_averages():
    result = metrics.evaluate_set(small_set(), 3, resample.imresize)
    assert [row["name"] for row in result["images"]] == ["colour", "grey"]
    for (_, image), row in zip(small_set(), result["images"]):
        lr, hr = data.make_pair(image, 3)
        assert row == {"name": row["name"], **metrics.evaluate(resample.imresize(lr, 3), hr, 3)}
    for key in ("psnr", "ssim"):
        assert result[key] == pytest.approx(np.mean([row[key] for row in result["images"]]), abs=1e-12)


@pytest.mark.parametrize("upscale, message", [
    (lambda lr, scale: resample.imresize(lr, scale)[:-1], "colour: SR and HR images differ in shape"),
    (lambda lr, scale: resample.imresize(lr.astype(np.float64), scale), "colour: evaluate needs uint8"),
])
def test_evaluate_set_names_the_image_whose_output_is_unusable(upscale, message):
    with pytest.raises(ValueError, match=message):
        metrics.evaluate_set(small_set(), 2, upscale)


def test_evaluate_set_rejects_an_empty_set_and_a_bad_scale():
    with pytest.raises(ValueError, match="no images"):
        metrics.evaluate_set([], 2, resample.imresize)
    with pytest.raises(ValueError, match="positive integer"):
        metrics.evaluate_set(small_set(), 2.5, resample.imresize)


def test_floats_within_0_1_must_say_their_range_instead_of_being_scored_against_255():
    a = np.linspace(0, 1, 400).reshape(20, 20)
    for metric in (metrics.psnr, metrics.ssim):
        with pytest.raises(ValueError, match="pass data_range=1.0"):
            metric(a, a * 0.9)
        with pytest.raises(ValueError, match="pass data_range=1.0"):
            metric(torch.from_numpy(a), torch.from_numpy(a * 0.9))
    assert metrics.psnr(a, a * 0.9, data_range=1.0) == pytest.approx(metrics.psnr(a * 255, a * 229.5))
