"""srlib.plots: the network figures read layers, resolution changes, skips and costs from
the model object, and the crop and curve figures check their input."""
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from srlib import plots
from srlib.models import build
from srlib.plots import compare_crops, describe_layers, draw_architecture, filter_grid, training_curves


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def texts(fig) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(matplotlib.text.Text))


def labels(model) -> list[str]:
    layers, _ = describe_layers(model)
    return [f"{layer.count}x {layer.label} {layer.detail} {layer.activation} {layer.where}".strip() for layer in layers]


def test_srcnn_interpolates_first_then_runs_three_layers_at_hr_size():
    assert labels(build("srcnn", 3, variant="9-5-5")) == [
        "1x bicubic ×3 interpolation  up", "1x conv 9×9 1→64 ReLU HR", "1x conv 5×5 64→32 ReLU HR",
        "1x conv 5×5 32→1  HR"]
    assert describe_layers(build("srcnn", 3))[1] is None


def test_fsrcnn_upsamples_with_its_strided_deconvolution_and_merges_the_mapping_layers():
    found = labels(build("fsrcnn", 4))
    assert found[2] == "4x conv 3×3 12→12 PReLU LR"
    assert found[-1] == "1x deconv 9×9 56→1, stride 4  up"


def test_espcn_ends_with_its_pixel_shuffle_module():
    assert labels(build("espcn", 2))[-2:] == ["1x conv 3×3 32→4  LR", "1x pixel shuffle ×2 4→1  up"]


def test_vdsr_skip_starts_at_the_interpolation_and_hidden_layers_collapse():
    layers, skip = describe_layers(build("vdsr", 2))
    assert skip == "interpolation" and layers[2].count == 18 and layers[2].where == "HR"


def test_spvdsr_shuffle_done_as_a_view_is_found_and_its_skip_starts_at_the_input():
    layers, skip = describe_layers(build("spvdsr", 3))
    assert skip == "input"
    assert (layers[-1].label, layers[-1].detail) == ("pixel shuffle ×3", "9→1")


def test_describe_layers_refuses_a_plain_module():
    with pytest.raises(ValueError, match="srlib model"):
        describe_layers(torch.nn.Conv2d(1, 1, 3))


def test_architecture_title_carries_the_papers_weight_count_and_macs():
    text = texts(draw_architecture(build("srcnn", 2, variant="9-5-5")))
    assert "SRCNN 9-5-5 ×2: 57,184 weights, 57,184 multiply-adds per HR pixel" in text
    assert "1,385 multiply-adds" in texts(draw_architecture(build("fsrcnn", 3)))


def test_architecture_draws_the_skip_only_when_there_is_one():
    assert "skip: add the lanczos3 ×2 interpolation of the input" in texts(draw_architecture(build("spvdsr", 2)))
    assert "skip" not in texts(draw_architecture(build("espcn", 2)))


def test_drawing_leaves_the_model_in_training_mode():
    model = build("srcnn", 2).train()
    draw_architecture(model)
    assert model.training


def image(seed: int, shape=(40, 60, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_compare_crops_shows_the_whole_image_then_one_crop_per_image_titled_with_psnr():
    fig = compare_crops({"bicubic": image(0), "truth": image(1)}, (5, 10, 12, 16), psnr={"bicubic": 21.234})
    whole, crop_bicubic, crop_truth = fig.axes
    assert whole.get_title() == "truth (whole image)"
    assert crop_bicubic.get_title() == "bicubic\n21.23 dB" and crop_truth.get_title() == "truth"
    np.testing.assert_array_equal(crop_bicubic.images[0].get_array(), image(0)[5:17, 10:26])


def test_compare_crops_accepts_grey_images_and_another_full_image():
    fig = compare_crops({"a": image(0, (30, 30)), "b": image(1, (30, 30))}, (0, 0, 8, 8), full="a")
    assert fig.axes[0].get_title() == "a (whole image)"


def test_four_or_more_crops_fill_two_rows_beside_the_whole_image_which_spans_both():
    names = ["bicubic", "a", "b", "c", "truth"]
    fig = compare_crops({n: image(i) for i, n in enumerate(names)}, (5, 10, 12, 16))
    whole, *crops = fig.axes
    assert [ax.get_title() for ax in crops] == names
    assert whole.get_subplotspec().rowspan == range(0, 2)
    assert [ax.get_subplotspec().rowspan.start for ax in crops] == [0, 0, 0, 1, 1]
    assert compare_crops({n: image(i) for i, n in enumerate(names)}, (5, 10, 12, 16), rows=1).axes[1].get_subplotspec().rowspan == range(0, 1)
    with pytest.raises(ValueError, match="rows must be"):
        compare_crops({"a": image(0)}, (0, 0, 4, 4), rows=2)


@pytest.mark.parametrize("shape, box", [((41, 60, 3), (5, 10, 12, 16)), ((256, 256, 3), (0, 0, 40, 90)),
                                        ((120, 50, 3), (10, 5, 60, 20))])
@pytest.mark.parametrize("count", [3, 5])
def test_compare_crops_keeps_every_title_line_inside_the_figure(shape, box, count):
    names = ["bicubic", "network", "other", "more", "truth"][-count:]
    fig = compare_crops({n: image(i, shape) for i, n in enumerate(names)}, box,
                        psnr={"bicubic": 21.2, "network": 22.3})
    fig.canvas.draw()
    frame = fig.bbox
    for ax in fig.axes:
        title = ax.title.get_window_extent()
        assert frame.y0 <= title.y0 and title.y1 <= frame.y1, ax.get_title()
        assert frame.x0 <= title.x0 and title.x1 <= frame.x1, ax.get_title()


@pytest.mark.parametrize("images, box, message", [
    ({}, (0, 0, 4, 4), "at least one"),
    ({"a": image(0), "b": image(1, (41, 60, 3))}, (0, 0, 4, 4), "one size"),
    ({"a": image(0).astype(np.float32)}, (0, 0, 4, 4), "uint8"),
    ({"a": image(0)}, (30, 0, 20, 4), "does not fit"),
    ({"a": image(0)}, (0, 0, 4), "top, left, height, width"),
])
def test_compare_crops_refuses_bad_input(images, box, message):
    with pytest.raises(ValueError, match=message):
        compare_crops(images, box)


def history(n: int, start: float) -> list[dict]:
    return [{"epoch": e, "iteration": 10 * e, "loss": 0.01 / e, "val_psnr": start + e if e % 2 == 0 else None}
            for e in range(1, n + 1)]


def test_training_curves_plot_only_validated_epochs_and_the_reference_lines():
    fig = training_curves({"a": history(6, 30.0), "b": history(4, 29.0)}, references={"bicubic": 31.5})
    psnr_axes, loss_axes = fig.axes
    first = psnr_axes.lines[0]
    assert list(first.get_xdata()) == [2, 4, 6] and list(first.get_ydata()) == [32.0, 34.0, 36.0]
    assert list(psnr_axes.lines[2].get_ydata()) == [31.5, 31.5]
    assert "bicubic (31.50 dB)" in texts(fig)
    assert len(loss_axes.lines) == 2 and loss_axes.get_yscale() == "log"


def test_training_curves_by_iteration():
    fig = training_curves({"a": history(4, 30.0)}, x="iteration")
    assert list(fig.axes[1].lines[0].get_xdata()) == [10, 20, 30, 40]


@pytest.mark.parametrize("histories, x", [({}, "epoch"), ({"a": []}, "epoch"), ({"a": history(2, 0)}, "time")])
def test_training_curves_refuse_empty_histories_and_unknown_axes(histories, x):
    with pytest.raises(ValueError):
        training_curves(histories, x=x)


def test_filter_grid_draws_one_tile_per_filter_centred_on_zero():
    weights = torch.randn(20, 1, 9, 9, generator=torch.Generator().manual_seed(0))
    fig = filter_grid(weights, ncols=8)
    shown = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(fig.axes) == 24 and len(shown) == 20
    low, high = shown[3].get_clim()
    assert low == -high == pytest.approx(-weights[3].abs().max().item())


def test_filter_grid_refuses_multichannel_filters():
    with pytest.raises(ValueError, match="out, 1, k, k"):
        filter_grid(torch.zeros(4, 3, 5, 5))


def test_training_curves_psnr_range_fixes_the_psnr_axis_only():
    fig = training_curves({"a": history(6, 10.0)}, psnr_range=(14.0, 20.0))
    assert fig.axes[0].get_ylim() == (14.0, 20.0)


def test_glue_passes_numpy_scalars_on_as_python_numbers(monkeypatch):
    import myst_nb
    from srlib import plots
    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: seen.update({name: value}))
    plots.glue("x", np.float64(1.5))
    plots.glue("n", np.int64(3))
    assert seen == {"x": 1.5, "n": 3} and type(seen["x"]) is float and type(seen["n"]) is int


def test_most_improved_box_finds_the_window_where_the_better_image_gains_most():
    reference = np.zeros((40, 50, 3))
    worse, better = reference.copy(), reference.copy()
    worse[10:20, 30:40] = 5      # an error the better image fixes
    better[0:5, 0:5] = 1         # and a small one it adds elsewhere
    assert plots.most_improved_box(reference, better, worse, 10) == (10, 30, 10, 10)


def test_cost_quality_draws_one_panel_per_scale_with_a_curve_per_run():
    def run(name, model, scale):
        history = [{"wall_time": t, "val_psnr": 30 + t / 1000} for t in (36.0, 360.0, 3600.0)]
        return {"name": name, "model": model, "scale": scale, "wall_time": 3600.0, "history": history,
                "scores": {model: {"Set5": {"psnr": 33.7}}}}
    fig = plots.cost_quality([run("a-x2", "espcn", 2), run("b-x2", "spvdsr", 2), run("c-x3", "espcn", 3)],
                             {2: 33.0}, {"espcn x2": 34.0})
    left, right = fig.axes
    assert (left.get_title(), right.get_title()) == ("×2", "×3")
    assert [line.get_label() for line in left.lines if not line.get_label().startswith("_")] == [
        "a-x2", "b-x2", "bicubic (33.00 dB)"]
    assert left.get_xscale() == "log"
    plt.close(fig)
    twins = plots.cost_quality([run("a-x2", "fsrcnn", 2), run("b-x2", "fsrcnn", 2)], {2: 33.0})
    first, second = (line for line in twins.axes[0].lines if line.get_label() in ("a-x2", "b-x2"))
    assert first.get_color() == second.get_color() and first.get_linestyle() != second.get_linestyle()
    with pytest.raises(ValueError, match="at least one run"):
        plots.cost_quality([], {})


def test_cost_quality_marks_a_scale_the_run_did_not_validate_with_its_score_alone():
    history = [{"wall_time": t, "val_psnr": None} for t in (360.0, 3600.0)]
    run = {"name": "vdsr-x3", "model": "vdsr", "scale": 3, "wall_time": 3600.0, "history": history,
           "scores": {"vdsr": {"Set5": {"psnr": 32.1}}}}
    fig = plots.cost_quality([run], {3: 30.4})
    (labelled,) = [line for line in fig.axes[0].lines if line.get_label() == "vdsr-x3"]
    assert list(labelled.get_xdata()) == [1.0] and list(labelled.get_ydata()) == [32.1]
    plt.close(fig)
