"""srlib.training: aligned patches, the papers' recipes, validation under the protocol, and a
loop that is reproducible, resumable after SIGKILL and stops cleanly on divergence."""
import json
import math
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from srlib import color, data, metrics, models, resample, samples, training

TINY = dict(model="spvdsr", scale=2, options={"depth": 2, "width": 4}, patch_size=8,
            patches_per_image=8, batch_size=8)
"""A two-step epoch of a 2-layer, 4-filter SP-VDSR: fast enough for many runs per test."""


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def images():
    return samples.line_art_set(2, 0, (48, 48))


def config(**changes) -> training.TrainConfig:
    return training.TrainConfig(**{**TINY, **changes})


def weights(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def assert_bit_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].tobytes() == b[key].tobytes(), key


# --- data -----------------------------------------------------------------------------------

DIHEDRAL = [lambda p, k=k, f=f: np.rot90(p, k)[:, ::-1] if f else np.rot90(p, k)
            for f in (False, True) for k in range(4)]


def test_patches_are_aligned_lr_hr_pairs_under_the_same_symmetry():
    rgb = np.random.default_rng(3).integers(0, 256, (40, 36, 3), dtype=np.uint8)  # noise: every patch unique
    p, s = 5, 2
    lr_full, hr_full = training.luma_pair(rgb, s)
    lrs, hrs = training.make_patches([("noise", rgb)], s, p, patches_per_image=12, seed=7)
    assert lrs.shape == (12, 1, p, p) and hrs.shape == (12, 1, p * s, p * s)
    used = set()
    for lr, hr in zip(lrs[:, 0].numpy(), hrs[:, 0].numpy()):
        matches = [(y, x, t) for y in range(lr_full.shape[0] - p + 1) for x in range(lr_full.shape[1] - p + 1)
                   for t, f in enumerate(DIHEDRAL) if np.array_equal(f(lr_full[y:y + p, x:x + p]), lr)]
        assert len(matches) == 1
        y, x, t = matches[0]
        assert np.array_equal(DIHEDRAL[t](hr_full[y * s:(y + p) * s, x * s:(x + p) * s]), hr)
        used.add(t)
    assert len(used) > 2  # the augmentation is at work


def test_patches_depend_only_on_the_seed(images):
    a = training.make_patches(images, 2, 8, seed=1)
    b = training.make_patches(images, 2, 8, seed=1)
    c = training.make_patches(images, 2, 8, seed=2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_degrade_is_matlab_imresize_for_bicubic_and_the_named_kernel_otherwise(images):
    image = images[0][1]
    hr = training.luma(data.modcrop(image, 3))
    assert np.allclose(training.luma_pair(image, 3)[0], resample.imresize(hr, 1 / 3), atol=1e-6)
    lanczos = training.luma_pair(image, 3, "lanczos3")[0]
    assert np.allclose(lanczos, resample.resize(hr, 1 / 3, kernel="lanczos3"), atol=1e-6)
    assert not np.allclose(lanczos, training.luma_pair(image, 3)[0], atol=1e-3)
    with pytest.raises(ValueError, match="unknown degradation"):
        training.degrade(hr, 2, "gaussian")


def test_luma_is_unrounded_studio_y_over_255_and_grey_counts_as_r_eq_g_eq_b():
    rgb = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert np.allclose(training.luma(rgb) * 255, color.rgb_to_ycbcr(rgb, "studio")[..., 0])
    grey = rgb[..., 0]
    assert np.allclose(training.luma(grey) * 255, 16 + 219 / 255 * grey.astype(float))
    with pytest.raises(ValueError, match="uint8"):
        training.luma(rgb.astype(np.float32))


def test_images_too_small_for_one_hr_patch_are_refused_with_the_sizes():
    with pytest.raises(ValueError, match="at least 48x48"):
        training.PatchDataset([("small", np.zeros((40, 40), np.uint8))], 2, 24)


def test_load_images_knows_the_special_sets_and_folders(tmp_path, monkeypatch):
    assert [name for name, _ in training.load_images("photos")] == list(samples.SAMPLE_LICENSES)
    loaded = []
    monkeypatch.setattr(data, "load_set", lambda name: loaded.append(name) or [(name, None)])
    assert training.load_images("291") == [("T91", None), ("BSD200", None)]
    assert training.load_images(str(tmp_path)) == [(str(tmp_path), None)]
    assert loaded == ["T91", "BSD200", str(tmp_path)]


# --- recipes --------------------------------------------------------------------------------

def test_every_network_has_a_recipe_with_its_papers_learning_rates():
    assert set(training.RECIPES) == set(models.MODELS)
    for name, options, rates in [("srcnn", {"f": (4, 2)}, (1e-4, 1e-5)), ("fsrcnn", {"d": 4, "s": 2, "m": 1}, (1e-3, 1e-4)),
                                 ("espcn", {"f": (4, 2)}, (1e-3, 1e-4))]:
        model = models.build(name, 2, **options)
        optimizer, _, clip = training.RECIPES[name](model)
        body, last = optimizer.param_groups
        assert (body["lr"], last["lr"]) == pytest.approx(rates), name
        assert last["params"] == list(training.last_layer(model).parameters())
        assert clip is None
    assert isinstance(training.last_layer(models.build("fsrcnn", 3)), torch.nn.ConvTranspose2d)


def test_vdsr_recipe_steps_lr_down_tenfold_every_20_epochs_and_clips_gradients_to_theta_over_lr():
    model = models.build("vdsr", 2, depth=3, width=4)
    optimizer, scheduler, theta = training.RECIPES["vdsr"](model)
    group = optimizer.param_groups[0]
    assert isinstance(optimizer, torch.optim.SGD)
    half_patch = 41 * 41 / 2  # the paper's patches, by default
    assert (group["lr"], group["momentum"], group["weight_decay"], theta) == pytest.approx(
        (0.1 * half_patch, 0.9, 1e-4 / half_patch, 0.01))
    rates = []
    for _ in range(45):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradients: only keeps the scheduler's order check quiet
        scheduler.step()
    assert rates[19] == pytest.approx(0.1 * half_patch) and rates[20] == pytest.approx(0.01 * half_patch)
    assert rates[40] == pytest.approx(0.001 * half_patch)
    for p in model.parameters():
        p.grad = torch.full_like(p, 100.0)
    training.clip_adjustable(optimizer, theta)
    assert max(p.grad.abs().max().item() for p in model.parameters()) == pytest.approx(theta / rates[-1])


def test_vdsr_recipe_on_the_mean_loss_takes_the_papers_steps_on_its_half_summed_loss():
    torch.manual_seed(0)
    ours, paper = models.build("vdsr", 2, depth=3, width=4), models.build("vdsr", 2, depth=3, width=4)
    paper.load_state_dict(ours.state_dict())
    lr, hr = torch.rand(4, 1, 6, 6), torch.rand(4, 1, 12, 12)
    sgd, _, _ = training.RECIPES["vdsr"](ours, None, 12 * 12)
    reference = torch.optim.SGD(paper.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)  # the paper, verbatim
    for _ in range(3):
        for model, optimizer, loss in ((ours, sgd, torch.nn.functional.mse_loss(ours(lr), hr)),
                                       (paper, reference, 0.5 * ((paper(lr) - hr) ** 2).sum((1, 2, 3)).mean())):
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    for a, b in zip(ours.parameters(), paper.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_spvdsr_recipe_is_adam_decaying_progressively_to_a_floor_of_1e_4():
    model = models.build("spvdsr", 2, depth=2, width=4)
    optimizer, scheduler, _ = training.RECIPES["spvdsr"](model)
    assert isinstance(optimizer, torch.optim.Adam)
    rates = []
    for _ in range(2000):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradients: only keeps the scheduler's order check quiet
        scheduler.step()
    assert rates[0] == 1e-3 and all(b <= a for a, b in zip(rates, rates[1:]))
    assert rates[100] < 1e-3 and rates[-1] == pytest.approx(1e-4) and min(rates) == pytest.approx(1e-4)


def test_cosine_schedule_falls_from_every_groups_start_to_a_hundredth_over_the_epochs():
    model = models.build("espcn", 3)
    optimizer, _, _ = training.RECIPES["espcn"](model)
    scheduler = training.cosine(optimizer, epochs=10)
    rates = []
    for _ in range(12):
        rates.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    assert rates[0] == [1e-3, 1e-4]
    assert rates[5] == pytest.approx([0.505e-3, 0.505e-4])  # halfway: the mean of start and floor
    assert rates[10] == rates[11] == pytest.approx([1e-5, 1e-6])
    assert all(b[0] < a[0] for a, b in zip(rates[:10], rates[1:11]))


# --- configuration --------------------------------------------------------------------------

@pytest.mark.parametrize("changes, message", [
    ({}, "give a budget"), ({"epochs": 0}, "epochs must be positive"),
    ({"epochs": 1, "model": "srgan"}, "unknown model"), ({"epochs": 1, "recipe": "sgd"}, "unknown recipe"),
    ({"epochs": 1, "scale": 1}, "scale must be"), ({"epochs": 1, "batch_size": 0}, "batch_size"),
    ({"epochs": 1, "degrade": "blur"}, "unknown degradation"),
    ({"iterations": 3, "schedule": "cosine"}, "spans the run's epochs"),
    ({"epochs": 1, "schedule": "step"}, "unknown schedule"),
    ({"epochs": 1, "mix_scales": (2, 3)}, "refines an interpolated image"),
    ({"epochs": 1, "model": "vdsr", "options": {"depth": 2, "width": 2}, "mix_scales": (3, 4)}, "one of mix_scales")])
def test_bad_configurations_are_refused_with_one_line(changes, message, tmp_path, images):
    with pytest.raises(ValueError, match=message):
        training.train(config(**changes), tmp_path, train_images=images, progress=False)


def test_device_preference_is_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert training.default_device().type == "cpu"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert training.default_device().type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert training.default_device().type == "cuda"


def test_a_device_the_machine_lacks_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="'cuda' is not available on this machine"):
        training.resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        training.resolve_device("gpu")
    assert training.resolve_device("cpu") == torch.device("cpu")


# --- validation -----------------------------------------------------------------------------

class Oracle(torch.nn.Module):
    """Returns the protocol's HR Y / 255 plus ``offset`` grey levels, whatever the input."""

    def __init__(self, hr_y: np.ndarray, scale: int, offset: float):
        super().__init__()
        self.scale, self.target = scale, torch.from_numpy((hr_y + offset) / 255).float()

    def forward(self, lr):
        assert lr.shape[-2] * self.scale == self.target.shape[0] and lr.shape[-1] * self.scale == self.target.shape[1]
        return self.target[None, None]


def test_validation_rounds_the_output_and_scores_it_against_the_protocols_uint8_y(images):
    image = images[0][1][:47, :45]  # odd sizes: modcrop matters
    pairs = training.validation_pairs([("a", image)], 3)
    hr_y = color.rgb_to_y(data.modcrop(image, 3)).astype(np.float64)
    assert training.validate(Oracle(hr_y, 3, 0.4), pairs, 3) == (math.inf, 1.0)
    psnr, ssim = training.validate(Oracle(hr_y, 3, 0.6), pairs, 3)  # every pixel one level off
    clipped = np.minimum(hr_y + 1, 255)[3:-3, 3:-3]
    expected = 10 * math.log10(255**2 / np.mean((clipped - hr_y[3:-3, 3:-3]) ** 2))
    assert psnr == pytest.approx(expected, abs=1e-9)
    assert ssim == pytest.approx(metrics.ssim(np.minimum(hr_y + 1, 255), hr_y, crop=3))


# --- the loop -------------------------------------------------------------------------------

def test_a_few_steps_lower_the_loss(images, tmp_path):
    lr, hr = training.make_patches(images, 2, 8, seed=99)
    torch.manual_seed(0)  # train() seeds the same way before building the network
    untrained = models.build("spvdsr", 2, depth=2, width=4)
    model = training.train(config(iterations=20), tmp_path, train_images=images, progress=False).model
    with torch.no_grad():
        before, after = (torch.nn.functional.mse_loss(m(lr), hr).item() for m in (untrained, model))
    assert after < 0.5 * before


def test_the_same_seed_gives_bit_identical_weights_and_another_seed_does_not(images, tmp_path):
    runs = [training.train(config(epochs=3, seed=seed), tmp_path / f"{i}", train_images=images, progress=False)
            for i, seed in enumerate((5, 5, 6))]
    assert_bit_identical(weights(runs[0].model), weights(runs[1].model))
    assert not np.array_equal(weights(runs[0].model)["features.0.weight"], weights(runs[2].model)["features.0.weight"])


def test_history_json_records_the_curve_and_its_provenance(images, tmp_path, capsys):
    result = training.train(config(epochs=2, val_every=2), tmp_path, train_images=images, val_images=images[:1],
                            progress=False)
    record = json.loads((tmp_path / "history.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert record["history"] == json.loads(json.dumps(result.history))
    assert [h["epoch"] for h in record["history"]] == [1, 2] and record["iterations"] == 4
    assert set(record["history"][0]) == {"epoch", "iteration", "wall_time", "loss", "lr", "val_psnr", "val_ssim"}
    assert record["history"][0]["val_psnr"] is None and record["history"][1]["val_psnr"] == result.val_psnr > 0
    assert record["config"]["options"] == {"depth": 2, "width": 4} and record["wall_time"] > 0
    assert {"srlib", "git_commit", "torch", "device"} <= set(record["provenance"])
    assert record["provenance"]["torch"] == torch.__version__
    assert capsys.readouterr().err == ""  # progress=False prints nothing


def test_a_wall_clock_budget_stops_the_run(images, tmp_path):
    start = time.perf_counter()
    result = training.train(config(seconds=0.5), tmp_path, train_images=images, progress=False)
    assert result.history[-1]["wall_time"] >= 0.5 and time.perf_counter() - start < 30


def test_a_run_stopped_mid_epoch_continues_to_the_same_weights(images, tmp_path):
    straight = training.train(config(iterations=5), tmp_path / "straight", train_images=images, progress=False)
    training.train(config(iterations=3), tmp_path / "split", train_images=images, progress=False)
    resumed = training.train(config(iterations=5), tmp_path / "split", train_images=images, progress=False)
    assert_bit_identical(weights(straight.model), weights(resumed.model))
    assert resumed.history[-1]["iteration"] == 5


def test_a_checkpoint_of_another_run_is_refused(images, tmp_path):
    training.train(config(epochs=1), tmp_path, train_images=images, progress=False)
    with pytest.raises(ValueError, match="another run.*seed"):
        training.train(config(epochs=2, seed=1), tmp_path, train_images=images, progress=False)


def test_a_cosine_run_refuses_to_resume_with_other_epochs_which_would_bend_its_schedule(images, tmp_path):
    training.train(config(epochs=1, schedule="cosine"), tmp_path, train_images=images, progress=False)
    with pytest.raises(ValueError, match="another run.*epochs"):
        training.train(config(epochs=2, schedule="cosine"), tmp_path, train_images=images, progress=False)
    resumed = training.train(config(epochs=1, schedule="cosine", val_every=3), tmp_path, train_images=images, progress=False)
    assert resumed.history[-1]["epoch"] == 1


def test_validation_runs_every_val_every_epochs_and_at_the_end(images, tmp_path):
    result = training.train(config(epochs=5, val_every=2), tmp_path, train_images=images, val_images=images,
                            progress=False)
    assert [entry["val_psnr"] is not None for entry in result.history] == [False, True, False, True, True]


DRIVER = """
import sys, torch
torch.set_num_threads(1)
from srlib import samples, training
training.train(training.TrainConfig(**{config!r}), sys.argv[1],
               train_images=samples.line_art_set(2, 0, (48, 48)), progress=False)
"""


def test_a_run_killed_with_sigkill_resumes_to_bit_identical_weights(images, tmp_path):
    epochs = 40
    spec = {**TINY, "epochs": epochs}
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(config=spec))
    killed = tmp_path / "killed"
    child = subprocess.Popen([sys.executable, str(driver), str(killed)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (killed / "checkpoint.pt").exists():
        assert child.poll() is None, child.stderr.read().decode()
        assert time.monotonic() < deadline, "the training subprocess wrote no checkpoint in 120 s"
        time.sleep(0.005)
    time.sleep(0.05)  # let it train on, so the kill lands mid-epoch
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    reached = torch.load(killed / "checkpoint.pt", weights_only=True)["epoch"]
    assert 1 <= reached < epochs, "the subprocess finished before it was killed"

    resumed = training.train(config(epochs=epochs), killed, train_images=images, progress=False)
    straight = training.train(config(epochs=epochs), tmp_path / "straight", train_images=images, progress=False)
    assert_bit_identical(weights(straight.model), weights(resumed.model))
    assert [h["epoch"] for h in resumed.history] == list(range(1, epochs + 1))
    assert not list(killed.glob(".*.tmp"))


def test_a_nan_loss_raises_training_diverged_and_keeps_the_last_good_checkpoint(images, tmp_path, monkeypatch):
    build = models.build

    def poisoned(name, scale, **options):  # NaN output from the fifth training batch on (epoch 3)
        model, calls = build(name, scale, **options), iter(range(10**6))
        forward = model.forward
        model.forward = lambda lr: forward(lr) * (math.nan if next(calls) >= 4 else 1.0)
        return model

    monkeypatch.setattr(models, "build", poisoned)
    with pytest.raises(training.TrainingDiverged, match=r"loss became nan at epoch 3.*checkpoint \(epoch 2"):
        training.train(config(epochs=5), tmp_path, train_images=images, progress=False)
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 2
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values())


def test_a_huge_learning_rate_diverges_before_any_checkpoint(images, tmp_path):
    with pytest.raises(training.TrainingDiverged, match="no checkpoint was written yet; try a lower learning rate"):
        training.train(config(epochs=1, lr=1e9), tmp_path, train_images=images, progress=False)
    assert not (tmp_path / "checkpoint.pt").exists()


def test_bf16_applies_only_on_cuda(images, tmp_path):
    plain = training.train(config(epochs=2), tmp_path / "plain", train_images=images, progress=False)
    flagged = training.train(config(epochs=2, bf16=True, device="cpu"), tmp_path / "flags",
                             train_images=images, progress=False)
    assert_bit_identical(weights(plain.model), weights(flagged.model))


def test_channels_last_on_a_cpu_is_reproducible_and_learns_the_same_network(images, tmp_path):
    plain = training.train(config(epochs=2), tmp_path / "plain", train_images=images, progress=False)
    runs = [training.train(config(epochs=2, channels_last=True, device="cpu"), tmp_path / f"last{i}",
                           train_images=images, progress=False) for i in range(2)]
    assert_bit_identical(weights(runs[0].model), weights(runs[1].model))
    for key, value in weights(plain.model).items():
        np.testing.assert_allclose(weights(runs[0].model)[key], value, rtol=1e-3, atol=1e-5)


def test_rescale_adds_shrunk_copies_of_every_image():
    rng = np.random.default_rng(0)
    images = [("a", rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)), ("b", rng.integers(0, 256, (64, 64), dtype=np.uint8))]
    plain = training.PatchDataset(images, 2, 8)
    rescaled = training.PatchDataset(images, 2, 8, rescale=(0.75, 0.5))
    assert len(rescaled.pairs) == 3 * len(plain.pairs)
    assert [hr.shape for _, hr in rescaled.pairs[2:4]] == [(60, 72), (48, 48)]  # 0.75x, modcropped to even
    with pytest.raises(ValueError, match="between 0 and 1"):
        training.PatchDataset(images, 2, 8, rescale=(1.2,))


def test_mixed_scales_pair_every_image_with_its_bicubic_interpolation_at_each_scale():
    rng = np.random.default_rng(0)
    images = [("a", rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)), ("b", rng.integers(0, 256, (64, 66), dtype=np.uint8))]
    mixed = training.PatchDataset(images, 2, 12, mix=(2, 3, 4))
    assert len(mixed.pairs) == 3 * len(images)
    for k, (scale, (_, image)) in enumerate((s, im) for s in (2, 3, 4) for im in images):
        lr, hr = training.luma_pair(image, scale)
        upscaled, target = mixed.pairs[k]
        np.testing.assert_array_equal(target, hr)
        np.testing.assert_allclose(upscaled, resample.resize(lr, scale, kernel="bicubic"), atol=1e-6)
    inputs, targets = mixed.draw(seed=0)
    assert inputs.shape == targets.shape == (3 * 2 * 16, 1, 12, 12)  # HR-size patches, every scale in one draw
    with pytest.raises(ValueError, match="integer scales"):
        training.PatchDataset(images, 2, 12, mix=(1, 2))


def test_vdsr_refines_the_interpolation_it_makes_itself():
    model = models.build("vdsr", 3, depth=3, width=4)
    lr = torch.rand(2, 1, 9, 10)
    upscaled = resample.resize(lr, 3, kernel="bicubic")
    with torch.no_grad():
        torch.testing.assert_close(model.refine(upscaled), model(lr))


def test_one_vdsr_trained_on_mixed_scales_improves_at_every_scale(images, tmp_path):
    mixed = config(model="vdsr", options={"depth": 4, "width": 8}, recipe="spvdsr", patch_size=12,
                   mix_scales=(2, 3, 4), iterations=40)
    torch.manual_seed(0)  # train() seeds the same way before building the network
    untrained = models.build("vdsr", 2, depth=4, width=8)
    trained = training.train(mixed, tmp_path, train_images=images, progress=False).model
    for scale in (2, 3, 4):
        upscaled, hr = training.PatchDataset(images, scale, 12, mix=(scale,)).draw(seed=7)
        with torch.no_grad():
            before, after = (torch.nn.functional.mse_loss(m.refine(upscaled), hr).item() for m in (untrained, trained))
        assert after < 0.7 * before, scale


def test_an_initial_network_is_trained_as_a_copy_and_its_frozen_layers_stay_put(images, tmp_path):
    torch.manual_seed(1)
    x3 = models.build("fsrcnn", 3, d=4, s=2, m=1)
    initial = models.freeze_all_but_deconv(models.with_new_deconv(x3, 2))
    before = weights(initial)
    result = training.train(config(model="fsrcnn", options={"d": 4, "s": 2, "m": 1}, iterations=3), tmp_path,
                            train_images=images, progress=False, initial=initial)
    after = weights(result.model)
    assert_bit_identical(before, weights(initial))  # the caller's network is untouched
    assert_bit_identical({k: v for k, v in before.items() if not k.startswith("deconv")},
                         {k: v for k, v in after.items() if not k.startswith("deconv")})
    assert not np.array_equal(before["deconv.weight"], after["deconv.weight"])
    record = json.loads((tmp_path / "history.json").read_text())
    assert record["provenance"]["initial"] == {"trainable": ["deconv.weight", "deconv.bias"]}


def test_an_initial_network_of_another_scale_is_refused(images, tmp_path):
    with pytest.raises(ValueError, match="initial network is fsrcnn x3 .* asks for fsrcnn x2"):
        training.train(config(model="fsrcnn", options={}, iterations=1), tmp_path, train_images=images, progress=False,
                       initial=models.build("fsrcnn", 3))


def test_an_exploding_loss_stops_the_run_and_keeps_the_last_good_checkpoint(images, tmp_path, monkeypatch):
    training.train(config(epochs=1), tmp_path, train_images=images, progress=False)
    kept = (tmp_path / training.CHECKPOINT).read_bytes()
    real_step = training._step
    calls = []

    def exploding(*args):
        calls.append(1)
        return 1.98e12 if len(calls) == 2 else real_step(*args)
    monkeypatch.setattr(training, "_step", exploding)
    with pytest.raises(training.TrainingDiverged, match=r"loss became 1.98e\+12 at epoch 2.*epoch 1, iteration 2"):
        training.train(config(epochs=3), tmp_path, train_images=images, progress=False)
    assert (tmp_path / training.CHECKPOINT).read_bytes() == kept


def test_validation_collapsing_far_below_interpolation_stops_the_run(images, tmp_path, monkeypatch):
    baseline = training.interpolation_psnr(training.validation_pairs(images, 2), 2)
    scores = iter([baseline + 1, baseline - 2 * training.COLLAPSE_DB])
    monkeypatch.setattr(training, "validate", lambda *args: (next(scores), 0.5))
    with pytest.raises(training.TrainingDiverged, match=r"validation PSNR fell to .* at epoch 2.*epoch 1, iteration 2"):
        training.train(config(epochs=3), tmp_path, train_images=images, val_images=images, progress=False)
    state = torch.load(tmp_path / training.CHECKPOINT, weights_only=True)
    assert state["epoch"] == 1


def test_a_fresh_network_far_below_interpolation_is_not_a_collapse(images, tmp_path, monkeypatch):
    baseline = training.interpolation_psnr(training.validation_pairs(images, 2), 2)
    monkeypatch.setattr(training, "validate", lambda *args: (baseline - 2 * training.COLLAPSE_DB, 0.1))
    result = training.train(config(epochs=2), tmp_path, train_images=images, val_images=images, progress=False)
    assert result.history[-1]["epoch"] == 2


def test_interpolation_psnr_is_the_protocols_bicubic_score_up_to_the_lr_rounding(images):
    score = training.interpolation_psnr(training.validation_pairs(images, 2), 2)
    protocol = metrics.evaluate_set(images, 2, lambda lr, s: resample.imresize(lr, s))["psnr"]
    assert score == pytest.approx(protocol, abs=0.1)  # validation's LR is float, the protocol's uint8


def test_epoch_seconds_is_the_typical_epoch_of_the_training_clock_not_the_odd_slow_one(tmp_path):
    history = [{"epoch": e, "wall_time": t} for e, t in enumerate((1.0, 2.0, 3.0, 10.0, 11.0), start=1)]
    result = training.TrainResult(model=torch.nn.Identity(), history=history, out_dir=tmp_path, provenance={})
    assert result.epoch_seconds == 1.0


def test_zero_last_starts_a_residual_network_as_its_interpolation():
    config = training.TrainConfig(model="vdsr", scale=2, options={"depth": 3, "width": 4}, epochs=1, zero_last=True)
    network = training.fresh_network(config)
    lr = torch.rand(1, 1, 9, 11)
    assert torch.equal(network(lr), resample.resize(lr, 2, kernel="bicubic"))
    with pytest.raises(ValueError, match="zero_last needs a network that adds the interpolated input"):
        training.TrainConfig(model="espcn", scale=2, epochs=1, zero_last=True).check()
