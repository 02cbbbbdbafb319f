"""srlib.losses: each loss is zero on a perfect output, weighs what it claims to, and trains."""
import numpy as np
import pytest
import torch

from srlib import losses, metrics
from srlib.training import TrainConfig, train


def edge_image(size: int = 32) -> torch.Tensor:
    """A vertical step edge from 0.2 to 0.8, as a (1, 1, size, size) batch."""
    image = torch.full((1, 1, size, size), 0.2)
    image[..., size // 2:] = 0.8
    return image


def test_every_loss_is_zero_on_a_perfect_output_and_positive_otherwise():
    hr = edge_image()
    noisy = hr + 0.05 * torch.randn(hr.shape, generator=torch.Generator().manual_seed(0))
    for name, loss in losses.LOSSES.items():
        assert float(loss(hr, hr)) == pytest.approx(0.0, abs=1e-6), name
        assert float(loss(noisy, hr)) > 1e-4, name


def test_the_edge_mask_is_one_on_the_edge_and_zero_on_flat_ground():
    mask = losses.edge_mask(edge_image())[0, 0]
    assert float(mask.max()) == 1.0 and float(mask.min()) == 0.0
    assert (mask[:, 15:17] == 1).all() and float(mask[:, :14].max()) < 1e-6 and float(mask[:, 18:].max()) < 1e-6
    assert (losses.edge_mask(torch.full((2, 1, 8, 8), 0.5)) == 0).all()  # a flat image has no edges


def test_the_sobel_magnitude_of_a_step_is_four_steps_beside_it_and_zero_elsewhere():
    magnitude = losses.sobel_magnitude(edge_image())[0, 0]  # Sobel's weights 1, 2, 1 sum to 4
    assert torch.allclose(magnitude[:, 15:17], torch.tensor(4 * 0.6))
    assert float(magnitude[:, :15].max()) < 1e-6 and float(magnitude[:, 17:].max()) < 1e-6


def test_the_gradient_sensitive_loss_weighs_an_error_on_the_edge_more_than_one_on_flat_ground():
    hr = edge_image()
    on_edge, on_flat = hr.clone(), hr.clone()
    on_edge[..., 10:22, 15] += 0.1  # the same error, the same MSE, in two places
    on_flat[..., 10:22, 5] += 0.1
    assert float(losses.mse(on_edge, hr)) == pytest.approx(float(losses.mse(on_flat, hr)))
    assert float(losses.gradient_sensitive(on_edge, hr)) > 2 * float(losses.gradient_sensitive(on_flat, hr))
    edge_rms, flat_rms = losses.edge_flat_errors(on_edge, hr)
    assert edge_rms > 0 and flat_rms == 0


def test_mse_ssim_is_mse_plus_one_minus_the_protocols_ssim():
    rng = np.random.default_rng(1)
    hr = torch.from_numpy(rng.random((1, 1, 24, 24)))
    sr = (hr + 0.1 * torch.from_numpy(rng.standard_normal((1, 1, 24, 24)))).clamp(0, 1)
    expected = float(((sr - hr) ** 2).mean()) + 1 - metrics.ssim(sr, hr, data_range=1.0)
    assert float(losses.mse_ssim(sr, hr)) == pytest.approx(expected, rel=1e-12)


def test_one_scale_of_ms_ssim_is_the_protocols_ssim_away_from_the_borders():
    rng = np.random.default_rng(2)
    hr = torch.from_numpy(rng.random((1, 1, 30, 30)))
    sr = (hr + 0.1 * torch.from_numpy(rng.standard_normal((1, 1, 30, 30)))).clamp(0, 1)
    ours = losses.ms_ssim_map(sr, hr, sigmas=(1.5,))[..., 5:-5, 5:-5]  # where no repeated border pixel enters
    protocol = metrics.ssim_map(sr, hr, data_range=1.0)
    assert torch.allclose(ours, protocol, rtol=0, atol=1e-12)


def test_every_loss_gives_finite_gradients_and_an_unknown_one_is_refused():
    hr = edge_image()
    for name, loss in losses.LOSSES.items():
        sr = (hr + 0.01).requires_grad_(True)
        loss(sr, hr).backward()
        assert torch.isfinite(sr.grad).all() and float(sr.grad.abs().sum()) > 0, name
    with pytest.raises(ValueError, match="unknown loss 'l3'"):
        losses.get_loss("l3")
    with pytest.raises(ValueError, match="unknown loss"):
        TrainConfig(model="espcn", epochs=1, loss="l3").check()


def test_a_network_trains_under_each_loss_and_the_loss_is_part_of_the_run(tmp_path):
    images = [("a", np.random.default_rng(3).integers(0, 256, (40, 40, 3), dtype=np.uint8))]
    for name in losses.LOSSES:
        config = TrainConfig(model="spvdsr", scale=2, epochs=2, patch_size=12, patches_per_image=4, batch_size=4,
                             loss=name)
        result = train(config, tmp_path / name, train_images=images, progress=False)
        assert all(np.isfinite(h["loss"]) for h in result.history)
    other = TrainConfig(model="spvdsr", scale=2, epochs=3, patch_size=12, patches_per_image=4, batch_size=4)
    with pytest.raises(ValueError, match="different loss"):
        train(other, tmp_path / "ms-ssim+l1", train_images=images, progress=False)
