"""Weights files, tiled upscaling and the pretrained manifest (srlib.inference)."""
import hashlib
import json
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from srlib import color, data, inference, metrics, models
from srlib.color import rgb_to_ycbcr, round_half_away
from srlib.data import make_pair
from srlib.inference import PretrainedNotFound, WeightsError
from srlib.resample import imresize, resize


def randomised(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Redraw every parameter so each layer matters (SRCNN's N(0, 0.001) start is ~zero)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 1.0 / p[0].numel() ** 0.5 if p.ndim == 4 else 0.1)
    return model


def smooth_image(height: int, width: int, channels: int | None = 3, seed: int = 0) -> np.ndarray:
    """A uint8 image of gentle random waves, away from 0 and 255."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    planes = [128 + 40 * np.sin(x / rng.uniform(2, 5) + y / rng.uniform(2, 5) + rng.uniform(0, 6))
              for _ in range(channels or 1)]
    image = np.stack(planes, axis=-1).astype(np.uint8)
    return image[..., 0] if channels is None else image


def network_luma(model: torch.nn.Module, y: np.ndarray) -> np.ndarray:
    """The model's one-pass output for a studio-range float luma plane, on the 0-255 scale."""
    with torch.no_grad():
        lr = torch.from_numpy(y / 255.0).float()[None, None]
        return model.eval()(lr)[0, 0].double().numpy() * 255.0


TILED_MODELS = {
    "vdsr": lambda: models.VDSR(2, depth=3, width=8),
    "spvdsr": lambda: models.SPVDSR(3),
    "spvdsr-bicubic": lambda: models.SPVDSR(4, depth=2, interpolation="bicubic"),
    "srcnn": lambda: models.SRCNN(3, variant="9-5-5", f=(8, 4)),
    "fsrcnn": lambda: models.FSRCNN(3, d=8, s=4, m=2),
    "espcn": lambda: models.ESPCN(2, f=(8, 4)),
}


# ---------------------------------------------------------------- weights files

def test_saved_weights_rebuild_the_same_network_with_metadata(tmp_path):
    model = randomised(models.SPVDSR(2, depth=3, width=8))
    metadata = {"training_data": "T91", "psnr_set5": np.float64(36.5), "torch": torch.__version__}
    inference.save_weights(tmp_path / "w.pt", model, metadata=metadata)
    loaded = inference.load_weights(tmp_path / "w.pt", model="spvdsr", scale=2)
    assert type(loaded) is models.SPVDSR and loaded.options == model.options and not loaded.training
    lr = torch.rand(1, 1, 9, 11)
    assert torch.equal(loaded(lr), model.eval()(lr))
    assert loaded.metadata["training_data"] == "T91" and loaded.metadata["psnr_set5"] == 36.5
    assert loaded.metadata["torch"] == str(torch.__version__)  # a str subclass, stored as plain str
    assert loaded.metadata["srlib_version"]
    assert [p.name for p in tmp_path.iterdir()] == ["w.pt"]  # no temporary left behind


def test_options_given_as_tuples_survive_a_round_trip(tmp_path):
    inference.save_weights(tmp_path / "w.pt", models.ESPCN(3, f=(8, 4)))
    assert inference.load_weights(tmp_path / "w.pt").options == {"f": (8, 4)}


def test_metadata_that_is_not_json_like_is_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match="JSON-like"):
        inference.save_weights(tmp_path / "w.pt", models.ESPCN(2), metadata={"model": models.ESPCN(2)})
    assert list(tmp_path.iterdir()) == []


class Exploit:
    """Unpickling this would run a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("container", ["torch.save", "raw pickle"])
def test_a_pickle_that_would_run_code_is_refused_and_not_run(tmp_path, container):
    marker = tmp_path / "pwned"
    payload = {"state_dict": {}, "model": "spvdsr", "options": {}, "scale": 2, "metadata": Exploit(marker)}
    path = tmp_path / "evil.pt"
    if container == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))  # torch's own pickle protocol
    with pytest.raises(WeightsError, match="refused") as caught:
        inference.load_weights(path)
    assert len(str(caught.value).splitlines()) == 1
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_damaged_files_are_refused_with_one_line(tmp_path, damage):
    inference.save_weights(tmp_path / "good.pt", models.ESPCN(2, f=(8, 4)))
    good = (tmp_path / "good.pt").read_bytes()
    content = {"garbage": np.random.default_rng(0).bytes(400), "truncated": good[: len(good) // 2], "empty": b""}
    (tmp_path / "bad.pt").write_bytes(content[damage])
    with pytest.raises(WeightsError, match="bad.pt: not a PyTorch weights file") as caught:
        inference.load_weights(tmp_path / "bad.pt")
    assert len(str(caught.value).splitlines()) == 1


def test_a_bare_state_dict_is_not_srlib_weights(tmp_path):
    torch.save(models.ESPCN(2).state_dict(), tmp_path / "bare.pt")
    with pytest.raises(WeightsError, match="not srlib weights"):
        inference.load_weights(tmp_path / "bare.pt")


@pytest.mark.parametrize("expected", [{"model": "vdsr"}, {"scale": 3}, {"model": "vdsr", "scale": 2}])
def test_weights_for_another_network_or_scale_are_refused(tmp_path, expected):
    inference.save_weights(tmp_path / "w.pt", models.SPVDSR(2))
    wanted = f"{expected.get('model', 'spvdsr')} x{expected.get('scale', 2)}"
    with pytest.raises(WeightsError, match=f"holds weights for spvdsr x2, not for {wanted}"):
        inference.load_weights(tmp_path / "w.pt", **expected)


def test_weights_that_do_not_fit_their_options_are_refused(tmp_path):
    inference.save_weights(tmp_path / "w.pt", models.SPVDSR(2, width=8))
    payload = torch.load(tmp_path / "w.pt", weights_only=True)
    payload["options"]["width"] = 4
    torch.save(payload, tmp_path / "w.pt")
    with pytest.raises(WeightsError, match="do not fit spvdsr x2"):
        inference.load_weights(tmp_path / "w.pt")


def test_a_missing_weights_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such weights file"):
        inference.load_weights(tmp_path / "nowhere.pt")


# ---------------------------------------------------------------- tiling

@pytest.mark.parametrize("name, tile", [("vdsr", 5), ("vdsr", 8), ("spvdsr", 7), ("spvdsr", 13),
                                        *((name, 7) for name in TILED_MODELS if name not in ("vdsr", "spvdsr"))])
def test_tiled_luma_equals_one_pass(name, tile):
    model = randomised(TILED_MODELS[name]())
    lr = torch.rand(2, 1, 19, 24, generator=torch.Generator().manual_seed(1))  # no side a multiple of the tile
    whole = inference.upscale_luma(model, lr, tile=None)
    tiled = inference.upscale_luma(model, lr, tile=tile)
    assert tiled.shape == whole.shape == (2, 1, 19 * model.scale, 24 * model.scale)
    assert (tiled - whole).abs().max().item() < 1e-5


@pytest.mark.parametrize("name, scale, capped", [("spvdsr", 2, True), ("spvdsr", 4, True), ("espcn", 2, False),
                                                  ("fsrcnn", 2, False), ("vdsr", 2, False)])
def test_only_networks_with_narrow_hidden_layers_cap_onednn_at_avx2(monkeypatch, isa_unset, name, scale, capped):
    monkeypatch.setattr(inference.platform, "machine", lambda: "x86_64")
    assert inference.prefer_avx2_for(models.build(name, scale)) is capped
    assert os.environ.get("ONEDNN_MAX_CPU_ISA") == ("AVX2" if capped else None)


def test_the_avx2_cap_never_overrides_a_setting_or_another_architecture(monkeypatch, isa_unset):
    monkeypatch.setattr(inference.platform, "machine", lambda: "x86_64")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")
    assert not inference.prefer_avx2_for(models.build("spvdsr", 2))
    assert os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX512_CORE"
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setattr(inference.platform, "machine", lambda: "aarch64")
    assert not inference.prefer_avx2_for(models.build("spvdsr", 2)) and "ONEDNN_MAX_CPU_ISA" not in os.environ


def test_tiles_without_the_receptive_field_as_halo_would_show_seams():
    class NoHalo(models.SPVDSR):
        receptive_field = 0

    model = randomised(NoHalo(2, depth=3))
    lr = torch.rand(1, 1, 23, 31, generator=torch.Generator().manual_seed(1))
    seams = inference.upscale_luma(model, lr, tile=8) - inference.upscale_luma(model, lr, tile=None)
    assert seams.abs().max().item() > 1e-3


def test_the_network_never_sees_more_than_a_tile_and_its_halo():
    model = randomised(models.VDSR(2, depth=3, width=8))
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape[-2:])))
    inference.upscale_luma(model, torch.rand(1, 1, 40, 50), tile=10)
    halo = model.receptive_field
    assert len(seen) == 4 * 5
    assert max(max(shape) for shape in seen) <= 10 + 2 * halo


def test_upscale_luma_restores_the_training_mode():
    model = models.ESPCN(2).train()
    inference.upscale_luma(model, torch.rand(1, 1, 12, 12), tile=5)
    assert model.training


@pytest.mark.parametrize("name", sorted(TILED_MODELS))
def test_upscale_luma_matches_the_plain_forward_pass_and_leaves_the_weights_as_they_were(name):
    model = randomised(TILED_MODELS[name]())
    weights = {key: (p.data_ptr(), p.stride()) for key, p in model.named_parameters()}
    lr = torch.rand(1, 1, 19, 24, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        plain = model(lr)  # PyTorch's default layout; upscale_luma runs channels-last on a CPU
    assert (inference.upscale_luma(model, lr, tile=None) - plain).abs().max().item() < 1e-5
    assert {key: (p.data_ptr(), p.stride()) for key, p in model.named_parameters()} == weights
    model(lr).sum().backward()  # still an ordinary trainable module


@pytest.mark.parametrize("name, scale", [("srcnn", 3), ("fsrcnn", 3), ("espcn", 2), ("vdsr", 4), ("spvdsr", 2)])
def test_the_automatic_tile_bounds_the_widest_activation(name, scale):
    model = models.build(name, scale)
    tile = inference.auto_tile(model)
    seen = []
    for layer in model.modules():
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            layer.register_forward_hook(lambda module, args, out: seen.append(out.numel() * out.element_size()))
    with torch.no_grad():
        model(torch.rand(1, 1, 64, 64))
    assert max(seen) * (tile / 64) ** 2 <= inference.TILE_BYTES
    assert max(seen) * (2 * tile / 64) ** 2 > inference.TILE_BYTES  # not needlessly small either


def test_a_bad_tile_is_refused():
    with pytest.raises(ValueError, match="tile"):
        inference.upscale_luma(models.ESPCN(2), torch.rand(1, 1, 12, 12), tile=0)


# ---------------------------------------------------------------- images

def test_grey_upscale_is_the_network_luma_in_full_range():
    model = randomised(models.SPVDSR(2, depth=3))
    image = smooth_image(21, 27, channels=None)
    out = inference.upscale(image, model, tile=8)
    y = rgb_to_ycbcr(np.repeat(image[..., None], 3, axis=2))[..., 0]
    expected = round_half_away(np.clip((network_luma(model, y) - 16) * 255 / 219, 0, 255))
    assert out.dtype == np.uint8 and out.shape == (42, 54)
    difference = np.abs(out.astype(int) - expected)
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01  # only float ties may round apart


def test_rgb_upscale_carries_the_network_luma_and_lanczos_chroma():
    model = randomised(models.VDSR(3, depth=3, width=8), seed=2)
    image = smooth_image(17, 20)
    out = inference.upscale(image, model, tile=7)
    assert out.dtype == np.uint8 and out.shape == (51, 60, 3)
    ycc = rgb_to_ycbcr(out)
    inside = ((out > 0) & (out < 255)).all(axis=2)  # pixels the uint8 clipping left alone
    assert inside.mean() > 0.9
    luma = network_luma(model, rgb_to_ycbcr(image)[..., 0])
    assert np.abs(ycc[..., 0] - luma)[inside].max() < 0.6  # RGB rounding moves Y by < 0.5
    chroma = resize(rgb_to_ycbcr(image)[..., 1:], 3, kernel="lanczos3")
    assert np.abs(ycc[..., 1:] - chroma)[inside].max() < 1.2


def test_rgba_upscale_keeps_the_colour_result_and_lanczos_alpha():
    model = randomised(models.ESPCN(2, f=(8, 4)))
    rgba = np.concatenate([smooth_image(15, 16), smooth_image(15, 16, channels=None, seed=5)[..., None]], axis=2)
    out = inference.upscale(rgba, model, tile=6)
    assert out.shape == (30, 32, 4)
    assert np.array_equal(out[..., :3], inference.upscale(rgba[..., :3], model, tile=6))
    assert np.array_equal(out[..., 3], resize(rgba[..., 3], 2, kernel="lanczos3"))


def test_a_read_only_image_is_upscaled_without_a_warning_and_left_as_it_was():
    model = randomised(models.ESPCN(2, f=(8, 4)))
    image = smooth_image(15, 16)
    frozen = image.copy()
    frozen.flags.writeable = False  # as np.asarray of a PIL image gives
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = inference.upscale(frozen, model)
    assert np.array_equal(out, inference.upscale(image, model)) and np.array_equal(frozen, image)


def test_an_image_smaller_than_the_receptive_field_is_refused():
    model = models.SPVDSR(2)
    side = inference.min_input_size(model)
    assert side == model.receptive_field
    inference.upscale(smooth_image(side, side + 3), model)
    with pytest.raises(ValueError, match=f"too small for spvdsr x2: both sides must be at least {side}"):
        inference.upscale(smooth_image(side - 1, 40), model)


def test_upscale_by_name_loads_the_weights_file(tmp_path):
    model = randomised(models.ESPCN(3, f=(8, 4)))
    inference.save_weights(tmp_path / "w.pt", model)
    image = smooth_image(12, 14)
    assert np.array_equal(inference.upscale(image, "espcn", 3, weights=tmp_path / "w.pt"),
                          inference.upscale(image, model))
    with pytest.raises(WeightsError, match="not for espcn x2"):
        inference.upscale(image, "espcn", 2, weights=tmp_path / "w.pt")


def test_a_scale_other_than_the_modules_is_refused():
    with pytest.raises(ValueError, match="scale 3 asked of a x2 model"):
        inference.upscale(smooth_image(12, 12), models.ESPCN(2), 3)


@pytest.mark.parametrize("channels", [3, None])
def test_a_network_that_is_exactly_bicubic_scores_the_bicubic_baseline(channels):
    model = models.SPVDSR(2, depth=2, interpolation="bicubic")
    torch.nn.init.zeros_(model.residual.weight)  # no residual: output = bicubic interpolation
    noise = np.random.default_rng(3).integers(0, 256, (60, 66, 3), dtype=np.uint8)  # rounding is a small part of the error
    lr, hr = make_pair(noise if channels else noise[..., 0], 2)
    scores = inference.protocol_scores(model, lr, hr, tile=9)
    baseline = metrics.evaluate(imresize(lr, 2), hr, 2)  # the same through a uint8 RGB image
    assert scores["psnr"] == pytest.approx(baseline["psnr"], abs=0.01)
    assert scores["ssim"] == pytest.approx(baseline["ssim"], abs=1e-3)


# ---------------------------------------------------------------- pretrained manifest

def test_the_shipped_manifest_documents_every_field_and_parses():
    manifest = json.loads(inference.MANIFEST.read_text())
    assert set(manifest["schema"]) == set(inference.Pretrained.__dataclass_fields__)
    assert all(entry.file and (inference.PRETRAINED_DIR / entry.file).is_file()
               for entry in inference.pretrained_models())


def test_every_shipped_weights_file_scores_its_listed_set5_psnr():
    try:
        set5 = data.load_set("Set5")
    except data.DatasetNotFound as exc:
        pytest.skip(str(exc))
    for entry in inference.pretrained_models():
        network = inference.load_pretrained(entry.name, entry.scale)
        scores = [inference.protocol_scores(network, *make_pair(image, entry.scale))["psnr"] for _, image in set5]
        assert round(float(np.mean(scores)), 2) == entry.psnr_set5, entry.name


def test_no_pretrained_weights_says_how_to_train_them(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"entries": []}))
    with pytest.raises(PretrainedNotFound, match="no pretrained weights for vdsr x4 .*srlib train"):
        inference.load_pretrained("vdsr", 4, tmp_path / "manifest.json")


def _manifest_with(tmp_path, model, **changes) -> None:
    inference.save_weights(tmp_path / "w.pt", model)
    entry = {"name": "espcn-x2-test", "model": model.name, "scale": model.scale,
             "options": json.loads(json.dumps(model.options)), "file": "w.pt",
             "sha256": hashlib.sha256((tmp_path / "w.pt").read_bytes()).hexdigest(),
             "training_data": "none (random)", "psnr_set5": 0.0, "results": "results/none.json", **changes}
    (tmp_path / "manifest.json").write_text(json.dumps({"entries": [entry]}))


@pytest.mark.parametrize("name", ["espcn-x2-test", "espcn"])
def test_a_listed_entry_is_found_by_its_name_or_network_and_loaded(tmp_path, name):
    model = randomised(models.ESPCN(2, f=(8, 4)))
    _manifest_with(tmp_path, model)
    loaded = inference.load_pretrained(name, 2, tmp_path / "manifest.json")
    lr = torch.rand(1, 1, 8, 8)
    assert torch.equal(loaded(lr), model.eval()(lr))
    with pytest.raises(PretrainedNotFound):
        inference.load_pretrained(name, 3, tmp_path / "manifest.json")


def test_a_pretrained_file_that_does_not_match_its_sha256_is_refused(tmp_path):
    _manifest_with(tmp_path, models.ESPCN(2), sha256="0" * 64)
    with pytest.raises(WeightsError, match="sha256 differs"):
        inference.load_pretrained("espcn", 2, tmp_path / "manifest.json")


def test_a_manifest_entry_with_a_missing_field_is_refused(tmp_path):
    _manifest_with(tmp_path, models.ESPCN(2))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    del manifest["entries"][0]["sha256"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="entry 1 must have exactly the fields"):
        inference.pretrained_models(tmp_path / "manifest.json")


def test_upscale_refuses_a_tensor_and_says_which_layout_it_takes():
    with pytest.raises(ValueError, match=r"uint8 image array \(H, W\[, C\]\).*permute\(1, 2, 0\)"):
        inference.upscale(torch.zeros(3, 32, 32, dtype=torch.uint8), models.SPVDSR(2))


def test_a_bare_import_srlib_reaches_every_module():
    code = "import srlib; print(srlib.resample.imresize.__name__, srlib.inference.upscale.__name__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.stdout.split() == ["imresize", "upscale"], done.stderr


@pytest.mark.parametrize("channels", [None, 3, 4])
def test_strips_join_without_seams_and_match_the_float64_pipeline_to_a_grey_level(channels, monkeypatch):
    model = randomised(models.SPVDSR(3, depth=3))
    image = smooth_image(41, 23, channels=channels) if channels != 4 else np.concatenate(
        [smooth_image(41, 23), smooth_image(41, 23, channels=None, seed=5)[..., None]], axis=2)
    whole = inference.upscale(image, model, tile=None)
    monkeypatch.setattr(inference, "STRIP_PIXELS", 23 * 5)  # strips of 5 rows, narrower than the halo
    assert np.array_equal(inference.upscale(image, model, tile=None), whole)
    reference = color.upscale_rgb(image, 3, lambda y: network_luma(model, y))
    difference = np.abs(whole.astype(int) - reference)
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01


def test_the_default_network_of_every_scale_beats_lanczos_3_on_every_test_set():
    root = Path(__file__).resolve().parents[1]
    for scale in (2, 3, 4):
        entry = inference.default_pretrained(scale)
        scores = json.loads((root / entry.results).read_text())["scores"]
        for name in ("Set5", "Set14", "BSD100"):
            assert scores[entry.model][name]["psnr"] > scores["lanczos3"][name]["psnr"], (entry.name, name)
        assert round(scores[entry.model]["Set5"]["psnr"], 2) == entry.psnr_set5
