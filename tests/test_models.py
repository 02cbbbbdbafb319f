"""srlib.models: shapes, the papers' parameter counts, cost, receptive fields, FSRCNN's
scale transfer, SP-VDSR's skip path, build errors, determinism and trainability."""
import pytest
import torch

from srlib.models import (FSRCNN, MODELS, SPVDSR, build, count_parameters, freeze_all_but_deconv,
                          macs_per_pixel, with_new_deconv)
from srlib.resample import resize

SCALES = (2, 3, 4)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are tiny: a second thread saves nothing and, on a busy machine, every
    hand-off between threads waits for a time slice (tens of ms per layer)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name", list(MODELS))
def test_output_is_scale_times_an_odd_sized_input(name, scale):
    torch.manual_seed(0)
    model = build(name, scale).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 1, 17, 23))
    assert out.shape == (2, 1, 17 * scale, 23 * scale) and out.dtype == torch.float32
    assert model.scale == scale and model.name == name


@pytest.mark.parametrize("name, scale, options, weights", [
    ("srcnn", 3, {"variant": "9-1-5"}, 8_032),    # 81*64 + 1*64*32 + 25*32
    ("srcnn", 3, {"variant": "9-5-5"}, 57_184),   # 81*64 + 25*64*32 + 25*32
    ("fsrcnn", 2, {}, 12_464),                    # 25d + ds + 9ms^2 + sd + 81d, (56, 12, 4)
    ("fsrcnn", 3, {}, 12_464),
    ("fsrcnn", 4, {}, 12_464),
    ("fsrcnn", 3, {"d": 32, "s": 5, "m": 1}, 3_937),  # FSRCNN-s
    ("espcn", 3, {}, 22_624),                     # the paper's "about 22.6K"
    ("espcn", 2, {}, 21_184),
    ("vdsr", 2, {}, 664_704),                     # 9*64 + 18*9*64^2 + 9*64
    ("spvdsr", 2, {}, 2_664),                     # 9*8 + 4*9*8^2 + 9*8*4
])
def test_weight_counts_match_the_papers(name, scale, options, weights):
    assert count_parameters(build(name, scale, **options)) == weights


def test_count_with_biases_adds_biases_and_prelu_slopes():
    assert count_parameters(build("srcnn", 2), biases=True) == 8_032 + 64 + 32 + 1
    # FSRCNN: 56 + 12 + 4*12 + 56 conv biases, as many PReLU slopes, one deconv bias.
    assert count_parameters(build("fsrcnn", 3), biases=True) == 12_464 + 2 * 172 + 1


@pytest.mark.parametrize("name, scale, options, macs", [
    ("srcnn", 2, {"variant": "9-1-5"}, 8_032),
    ("srcnn", 4, {"variant": "9-5-5"}, 57_184),
    ("fsrcnn", 2, {}, 3_116),
    ("fsrcnn", 3, {}, 12_464 / 9),
    ("fsrcnn", 4, {}, 779),
    ("espcn", 2, {}, 5_296),
    ("espcn", 3, {}, 22_624 / 9),
    ("espcn", 4, {}, 1_540),
    ("vdsr", 2, {}, 664_704),
    ("spvdsr", 2, {}, 666),
    ("spvdsr", 3, {}, 336),
    ("spvdsr", 4, {}, 220.5),
])
def test_macs_per_output_pixel_are_pinned(name, scale, options, macs):
    model = build(name, scale, **options)
    assert macs_per_pixel(model, lr_size=(9, 13)) == pytest.approx(macs, rel=1e-12)
    assert not any(m._forward_hooks for m in model.modules())


def _he_weights(model: torch.nn.Module) -> torch.nn.Module:
    """Weights big enough that a change travels as far as the architecture lets it."""
    for p in model.parameters():
        if p.ndim > 1:
            torch.nn.init.normal_(p, 0.0, (2.0 / p[0].numel()) ** 0.5)
    return model


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name, options", [
    ("srcnn", {}), ("srcnn", {"variant": "9-5-5"}), ("fsrcnn", {}), ("espcn", {}),
    ("vdsr", {"width": 8}),  # full depth, narrow: the same reach, 64 times cheaper
    ("spvdsr", {}), ("spvdsr", {"interpolation": "bilinear", "depth": 1}),
])
def test_receptive_field_bounds_the_reach_of_one_lr_pixel(name, options, scale):
    torch.manual_seed(1)
    model = _he_weights(build(name, scale, **options)).eval()
    field = model.receptive_field
    size = 2 * field + 5
    centre = size // 2
    lr = torch.rand(1, 1, size, size)
    poked = lr.clone()
    poked[0, 0, centre, centre] += 1.0
    with torch.no_grad():
        changed = (model(poked) - model(lr))[0, 0] != 0
    block_distance = (torch.arange(size * scale) // scale - centre).abs()
    distance = torch.maximum(block_distance[:, None], block_distance[None, :])
    reach = int(distance[changed].max())
    assert reach <= field           # a tiling halo of `field` LR pixels is enough...
    assert reach >= field - 2       # ...and not wastefully larger


@pytest.mark.parametrize("name", list(MODELS))
def test_initialisation_is_deterministic_under_manual_seed(name):
    def weights(seed):
        torch.manual_seed(seed)
        return build(name, 3).state_dict()
    first, again, other = weights(7), weights(7), weights(8)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_initialisation_follows_the_papers():
    torch.manual_seed(0)
    srcnn, fsrcnn, vdsr = build("srcnn", 3), build("fsrcnn", 3), build("vdsr", 3)
    assert srcnn.body[0].weight.std().item() == pytest.approx(1e-3, rel=0.1)       # N(0, 0.001)
    assert fsrcnn.deconv.weight.std().item() == pytest.approx(1e-3, rel=0.1)
    he_prelu = (2 / (1 + 0.25 ** 2) / 12) ** 0.5  # He for PReLU(0.25), fan-in 12 (1×1 expand)
    assert fsrcnn.body[-2].weight.std().item() == pytest.approx(he_prelu, rel=0.1)
    assert vdsr.body[2].weight.std().item() == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.05)
    assert all(not m.bias.any() for m in vdsr.modules() if isinstance(m, torch.nn.Conv2d))


def test_options_rebuild_an_identical_architecture():
    for name in MODELS:
        model = build(name, 3, **({"width": 16} if name in ("vdsr", "spvdsr") else {}))
        rebuilt = build(model.name, model.scale, **model.options)
        assert {k: v.shape for k, v in model.state_dict().items()} == \
               {k: v.shape for k, v in rebuilt.state_dict().items()}
        rebuilt.load_state_dict(model.state_dict())


def test_fsrcnn_freeze_all_but_deconv_leaves_only_the_deconv_trainable():
    model = freeze_all_but_deconv(build("fsrcnn", 3))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"deconv.weight", "deconv.bias"}


def test_fsrcnn_with_new_deconv_changes_scale_and_copies_the_body():
    torch.manual_seed(0)
    x3 = freeze_all_but_deconv(build("fsrcnn", 3))
    x2 = with_new_deconv(x3, 2)
    assert isinstance(x2, FSRCNN) and x2.scale == 2 and x2.deconv.stride == (2, 2)
    assert x2(torch.rand(1, 1, 17, 23)).shape == (1, 1, 34, 46)
    body3, body2 = x3.body.state_dict(), x2.body.state_dict()
    assert all(torch.equal(body3[k], body2[k]) for k in body3)
    assert count_parameters(x2) == count_parameters(x3) == 12_464
    assert all(p.requires_grad for p in x2.parameters())
    with torch.no_grad():                     # a deep copy: training the new one leaves the old
        next(x2.body.parameters()).add_(1.0)
    assert not torch.equal(next(x2.body.parameters()), next(x3.body.parameters()))
    assert x3.scale == 3 and x3.deconv.stride == (3, 3)


@pytest.mark.parametrize("interpolation", ["lanczos3", "bicubic", "bilinear"])
@pytest.mark.parametrize("scale", SCALES)
def test_spvdsr_with_a_zero_last_layer_is_exactly_its_interpolation(scale, interpolation):
    torch.manual_seed(0)
    model = SPVDSR(scale, interpolation=interpolation)
    last = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    lr = torch.rand(2, 1, 17, 23)
    with torch.no_grad():
        assert torch.equal(model(lr), resize(lr, scale, kernel=interpolation))


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_spvdsr_adds_the_pixel_shuffled_residual_to_its_interpolation(memory_format):
    torch.manual_seed(0)
    model = SPVDSR(3).to(memory_format=memory_format)
    lr = torch.rand(2, 1, 17, 23).contiguous(memory_format=memory_format)
    with torch.no_grad():
        residual = torch.nn.functional.pixel_shuffle(model.residual(model.features(lr)), 3)
        expected = resize(lr, 3, kernel="lanczos3") + residual
        assert torch.allclose(model(lr), expected, atol=1e-6)


@pytest.mark.parametrize("name", ["vdsr", "spvdsr"])
def test_interpolation_stays_float32_under_bfloat16_autocast(name):
    torch.manual_seed(0)
    model = build(name, 2)
    last = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    lr = torch.rand(1, 1, 17, 23)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(lr)
    kernel = model.options.get("interpolation", "bicubic")
    assert out.dtype == torch.float32 and torch.equal(out, resize(lr, 2, kernel=kernel))


@pytest.mark.parametrize("call", [
    lambda: build("edsr", 2),
    lambda: build("srcnn", 2, depth=3),
    lambda: build("vdsr", 0),
    lambda: build("vdsr", 2.5),
    lambda: build("espcn", True),
    lambda: build("srcnn", 2, variant="9-2-5"),
    lambda: build("srcnn", 2, f=(64,)),
    lambda: build("fsrcnn", 2, d=0),
    lambda: build("vdsr", 2, depth=1),
    lambda: build("spvdsr", 2, interpolation="cubic"),
    lambda: build("spvdsr", 2, negative_slope=-0.1),
    lambda: with_new_deconv(build("espcn", 2), 3),
    lambda: build("espcn", 2)(torch.rand(1, 3, 8, 8)),
    lambda: build("vdsr", 2)(torch.rand(8, 8)),
])
def test_bad_input_raises_a_one_line_value_error(call):
    with pytest.raises(ValueError) as error:
        call()
    assert "\n" not in str(error.value) and str(error.value)


@pytest.mark.parametrize("name", list(MODELS))
def test_each_model_overfits_one_tiny_batch(name):
    torch.manual_seed(0)
    scale = 2
    hr = resize(torch.rand(1, 1, 5, 5), size=(10 * scale, 10 * scale), kernel="bicubic").clamp(0, 1)
    lr = resize(hr, 1 / scale, kernel="bicubic")
    model = build(name, scale)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(lr), hr)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
