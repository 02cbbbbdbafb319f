"""srlib.reproduce: the plan of paper-scale runs, its command line, one tiny run end to end
(in a temporary folder, on the CPU), the manifest update and the published numbers."""
import json
import shutil
from collections import Counter

import pytest
import torch

from srlib import cli, inference, models, reproduce, samples, training

TINY = {"epochs": None, "iterations": 2, "patch_size": 8, "batch_size": 4, "patches_per_image": 2}
"""Overrides that shrink any run to two steps on 16x16 HR patches."""


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def drawings():
    return samples.line_art_set(3, 0, (48, 64))


def entry(name: str) -> dict:
    return {"name": name, "model": "spvdsr", "scale": 2, "options": {}, "file": f"{name}.pt", "sha256": "0" * 64,
            "training_data": "line art", "psnr_set5": 30.0, "results": f"results/{name}.json"}


# --- the plan -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(reproduce.RUNS))
def test_every_run_builds_its_network_and_a_valid_deterministic_config(name):
    run = reproduce.RUNS[name]
    config = run.config
    config.check()
    network = models.build(config.model, config.scale, **config.options)
    assert name == f"{run.network.key}-x{config.scale}" and config.scale in reproduce.SCALES
    assert network.scale == config.scale
    assert config.val == "Set5" and config.data in reproduce.TRAINING_IMAGES
    assert config.epochs and config.seconds is None  # budgets in epochs: the same run on any machine
    assert not config.bf16 and not config.channels_last  # off until checked on a GPU
    assert run.network.note and (run.network.paper is None or reproduce.published(run.network.paper, "Set5", 3))


def test_runs_cover_every_network_at_every_scale():
    assert len(reproduce.RUNS) == len(reproduce.NETWORKS) * len(reproduce.SCALES)
    deep = reproduce.RUNS["spvdsr-deep-x2"].config
    assert (deep.model, deep.options) == ("spvdsr", {"depth": 20, "width": 64})
    assert reproduce.RUNS["srcnn-x3"].config.options == {"variant": "9-5-5"}


def test_select_takes_names_and_patterns_in_plan_order_and_refuses_unknown_ones():
    assert reproduce.select(["vdsr-x4", "srcnn-x2"]) == ["srcnn-x2", "vdsr-x4"]
    assert reproduce.select(["spvdsr-x*"]) == ["spvdsr-x2", "spvdsr-x3", "spvdsr-x4"]
    assert reproduce.select(["spvdsr-*"])[3:] == ["spvdsr-deep-x2", "spvdsr-deep-x3", "spvdsr-deep-x4"]
    assert reproduce.select([]) == list(reproduce.RUNS)
    with pytest.raises(ValueError, match="no run matches 'vdsr-x8'"):
        reproduce.select(["vdsr-x8"])


def test_estimated_iterations_count_every_rescaled_copy():
    fsrcnn = reproduce.RUNS["fsrcnn-x2"].config  # 291 images x 5 sizes x 32 patches / batch 128, 200 epochs
    assert reproduce.estimated_iterations(fsrcnn) == 364 * 200
    assert reproduce.estimated_iterations(training.TrainConfig("vdsr", data="291", epochs=80, iterations=100)) == 100
    with pytest.raises(ValueError, match="no image count"):
        reproduce.estimated_iterations(training.TrainConfig("vdsr", data="lineart", epochs=1))


def test_plan_states_done_resuming_and_new_runs(tmp_path):
    (tmp_path / "out" / "vdsr-x3").mkdir(parents=True)
    (tmp_path / "out" / "vdsr-x3" / training.HISTORY).write_text(json.dumps({"iterations": 1234}))
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "vdsr-x2.json").write_text("{}")
    text = reproduce.plan(["vdsr-x2", "vdsr-x3", "vdsr-x4"], tmp_path / "out", tmp_path / "results")
    rows = {line.split()[0]: line for line in text.splitlines()[1:4]}
    assert rows["vdsr-x2"].endswith("done") and rows["vdsr-x3"].endswith("resumes at iteration 1,234")
    assert rows["vdsr-x4"].endswith("new") and "46,560" in rows["vdsr-x4"]


def test_cli_list_and_dry_run_print_the_runs_and_train_nothing(tmp_path, capsys):
    assert cli.main(["reproduce", "--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in reproduce.RUNS) and "adjustable clipping" in listed
    out = tmp_path / "runs"
    assert cli.main(["reproduce", "espcn-*", "--dry-run", "--out", str(out)]) == 0
    planned = capsys.readouterr().out
    assert "espcn-x4" in planned and "vdsr" not in planned and "3 runs" in planned
    assert not out.exists()


def test_cli_refuses_an_unknown_run_in_one_line(capsys):
    assert cli.main(["reproduce", "--dry-run", "edsr-x2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no run matches 'edsr-x2'" in err


# --- one run, end to end --------------------------------------------------------------------

def test_a_tiny_run_writes_results_loadable_weights_and_a_manifest_entry(tmp_path, drawings):
    pretrained = tmp_path / "pretrained"
    pretrained.mkdir()
    shutil.copy(inference.MANIFEST, pretrained / "manifest.json")
    shipped = [e.name for e in inference.pretrained_models(pretrained / "manifest.json")]
    reproduce.register(entry("spvdsr-x2-lineart"), pretrained / "manifest.json")  # another helper's entry
    path = reproduce.run("spvdsr-x2", tmp_path / "runs", results_dir=tmp_path / "results",
                         pretrained_dir=pretrained, overrides=TINY, train_images=drawings[:2],
                         val_images=drawings[2:], test_sets={"Set5": drawings[2:], "Set14": drawings[:1]},
                         frame=(48, 64), progress=False)
    assert path == tmp_path / "results" / "spvdsr-x2.json"
    record = json.loads(path.read_text())
    assert set(record["scores"]) == {"Set5", "Set14"} and 10 < record["scores"]["Set5"]["psnr"] < 60
    assert record["training"]["iterations"] == 2 and record["training"]["history"]
    assert record["training"]["wall_time_s"] > 0 and record["provenance"]["profile"] == "custom"
    assert record["overrides"] == TINY and record["parameters"] == 2664 and record["macs_per_pixel"] == 666
    assert record["throughput"]["input_frame"] == [24, 32] and record["throughput"]["cpu"]["fps"] > 0

    manifest = json.loads((pretrained / "manifest.json").read_text())
    assert "spvdsr-x2" not in shipped and [e["name"] for e in manifest["entries"]] == [*shipped, "spvdsr-x2"]
    assert manifest["entries"][shipped.index("spvdsr-x2-lineart")] == entry("spvdsr-x2-lineart")  # replaced in place
    network = inference.load_pretrained("spvdsr-x2", 2, pretrained / "manifest.json")  # checks sha256 and options
    assert network.metadata["psnr_set5"] == record["scores"]["Set5"]["psnr"]
    again = inference.load_weights(pretrained / "spvdsr-x2.pt", model="spvdsr", scale=2)
    lr = torch.rand(1, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(again(lr), network(lr))


def test_run_refuses_unknown_runs_and_test_sets_without_set5(tmp_path, drawings):
    with pytest.raises(ValueError, match="unknown run 'srcnn-x9'"):
        reproduce.run("srcnn-x9", tmp_path)
    with pytest.raises(ValueError, match="must include Set5"):
        reproduce.run("espcn-x2", tmp_path, overrides=TINY, train_images=drawings, test_sets={"Set14": drawings})
    assert not (tmp_path / "espcn-x2").exists()  # refused before any training


def test_register_replaces_its_own_entry_and_keeps_the_others(tmp_path):
    manifest = tmp_path / "manifest.json"
    reproduce.register(entry("a"), manifest)  # a missing manifest starts from the shipped schema
    reproduce.register(entry("b"), manifest)
    reproduce.register({**entry("a"), "psnr_set5": 31.5}, manifest)
    document = json.loads(manifest.read_text())
    assert document["schema"] == json.loads(inference.MANIFEST.read_text())["schema"]
    assert [(e["name"], e["psnr_set5"]) for e in document["entries"]] == [("a", 31.5), ("b", 30.0)]
    with pytest.raises(ValueError, match="exactly the fields"):
        reproduce.register({"name": "c"}, manifest)


# --- timing ---------------------------------------------------------------------------------

def test_frames_per_second_times_a_copy_and_leaves_the_model_as_it_was():
    model = models.build("spvdsr", 2, depth=2, width=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    fps = inference.frames_per_second(model, (20, 30), device="cpu", repeats=1)
    assert fps > 0 and model.training
    assert all(torch.equal(before[k], v) and v.is_contiguous() for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="repeats must be positive"):
        inference.best_time(lambda: None, 0)


def test_a_frame_too_costly_for_the_cpu_is_timed_as_a_crop_and_scaled(monkeypatch):
    model = models.build("spvdsr", 2, depth=2, width=4)
    frame_macs = models.macs_per_pixel(model) * 48 * 64
    monkeypatch.setattr(reproduce, "CPU_TIMING_MACS", frame_macs / 4)
    speed = reproduce.throughput(model, (48, 64))
    assert speed["input_frame"] == [24, 32] and speed["cpu"]["timed_input"] == [12, 16]
    assert speed["cpu"]["fps"] > 0


# --- published numbers ----------------------------------------------------------------------

def test_published_numbers_are_one_per_cell_from_a_named_source():
    cells = Counter((p.network, p.dataset, p.scale) for p in reproduce.PUBLISHED)
    assert max(cells.values()) == 1
    papers = {n.paper for n in reproduce.NETWORKS} | {"bicubic"}
    assert all(p.source in reproduce.SOURCES and p.network in papers for p in reproduce.PUBLISHED)
    assert all(20 < p.psnr < 40 and (p.ssim is None or 0.6 < p.ssim < 1) for p in reproduce.PUBLISHED)
    assert (reproduce.published("vdsr", "Set5", 2).psnr, reproduce.published("vdsr", "Set5", 2).ssim) == (37.53, .9587)
    assert reproduce.published("srcnn", "Urban100", 4).psnr == 24.52
    assert reproduce.published("spvdsr", "Set5", 2) is None


def test_load_results_reads_every_results_file_by_run_name(tmp_path):
    assert reproduce.load_results(tmp_path / "missing") == {}
    (tmp_path / "vdsr-x2.json").write_text(json.dumps({"run": "vdsr-x2"}))
    assert reproduce.load_results(tmp_path) == {"vdsr-x2": {"run": "vdsr-x2"}}
