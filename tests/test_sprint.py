"""srlib.resident and srlib.sprint: device-resident patches, a step that never reads back, the
images archive, and the whole GPU sprint run on a CPU with a tiny budget."""
import json
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from srlib import inference, models, resident, samples, sprint, training


@pytest.fixture(scope="module")
def photos():
    return [(name, image[:150, :170]) for name, image in samples.photographs()[:2]]


@pytest.mark.parametrize("options", [{"scale": 3, "patch_size": 11}, {"scale": 2, "patch_size": 9, "rescale": (0.8,)},
                                     {"scale": 2, "patch_size": 20, "mix": (2, 3, 4)}])
def test_resident_patches_are_the_host_datasets_patches(photos, options):
    on_device = resident.ResidentPatches(photos, device="cpu", **options)
    on_host = training.PatchDataset(photos, **options)
    assert on_device.count == len(on_host.pairs)
    rows = on_device.plan(seed=0, epoch=0)[:40]
    lr, hr = on_device.cut(rows)
    host_lr, host_hr = on_host._cut(rows.numpy())
    assert lr.shape == host_lr.shape and hr.shape == host_hr.shape
    assert (lr - host_lr).abs().max() < 1e-6 and (hr - host_hr).abs().max() < 1e-6


def test_an_epoch_plan_draws_each_image_equally_inside_it_and_repeats_with_the_seed(photos):
    patches = resident.ResidentPatches(photos, 2, 16, device="cpu", patches_per_image=8)
    plan = patches.plan(seed=3, epoch=5)
    assert torch.bincount(plan[:, 0]).tolist() == [8, 8]
    assert (plan[:, 1] + 16 <= patches.heights[plan[:, 0]]).all() and (plan[:, 2] + 16 <= patches.widths[plan[:, 0]]).all()
    assert set(plan[:, 3].tolist()) <= set(range(8))
    assert torch.equal(plan, patches.plan(seed=3, epoch=5)) and not torch.equal(plan, patches.plan(seed=3, epoch=6))


def test_cutting_a_batch_and_a_training_step_read_nothing_back_from_the_device(photos):
    # On PyTorch's meta device tensors have no values: any read to the host (.item(), .cpu(),
    # .numpy(), a Python branch on a value) raises, so this passing means no step waits.
    patches = resident.ResidentPatches(photos, 2, 16, device="cpu")
    rows = patches.plan(seed=0, epoch=0)[:8]
    for name, value in vars(patches).items():
        if isinstance(value, torch.Tensor):
            setattr(patches, name, value.to("meta"))
    lr, hr = patches.cut(rows.to("meta"))
    for name, options in [("espcn", {}), ("vdsr", {"depth": 3, "width": 8})]:
        model = models.build(name, 2, **options).to("meta")
        optimizer, _, clip = training.RECIPES[name](model, None, 32 * 32)
        inputs = torch.empty(8, 1, 32, 32, device="meta") if name == "vdsr" else lr
        loss = resident.step(model.refine if name == "vdsr" else model, optimizer, clip, inputs, hr)
        assert loss.device.type == "meta" and loss.shape == ()


def test_resident_training_learns_and_stops_a_diverging_run_with_its_last_good_weights(photos):
    patches = resident.ResidentPatches(photos, 2, 12, device="cpu")
    config = training.TrainConfig(model="spvdsr", scale=2, batch_size=8, iterations=1)
    run = resident.train(config, patches, 40)
    assert run.iterations == 40 and run.diverged is None
    assert run.history[-1]["loss"] < run.history[0]["loss"]
    exploding = training.TrainConfig(model="spvdsr", scale=2, batch_size=8, iterations=1, lr=1e4)
    blown = resident.train(exploding, patches, 40)
    assert blown.diverged and "stopped" in blown.diverged
    assert all(torch.isfinite(p).all() for p in blown.model.parameters())


def test_the_images_archive_keeps_every_pixel_and_refuses_an_altered_image(tmp_path, photos):
    for folder in ("Set5", "T91"):
        (tmp_path / folder).mkdir()
        Image.fromarray(photos[0][1]).save(tmp_path / folder / "colour.bmp")
        Image.fromarray(photos[1][1][..., 1]).save(tmp_path / folder / "grey.png")
    sprint.pack(tmp_path / "images.tar", tmp_path, sets=("Set5", "T91"))
    sets = sprint.unpack(tmp_path / "images.tar")
    assert sorted(sets) == ["Set5", "T91"]
    decoded = dict(sets["Set5"])
    assert np.array_equal(decoded["colour"], photos[0][1]) and np.array_equal(decoded["grey"], photos[1][1][..., 1])
    with tarfile.open(tmp_path / "images.tar") as tar, tarfile.open(tmp_path / "altered.tar", "w") as out:
        for member in tar.getmembers():
            payload = tar.extractfile(member).read()
            if member.name == sprint.MANIFEST:
                manifest = json.loads(payload)
                manifest["T91/grey.webp"]["sha256"] = "0" * 64
                payload = json.dumps(manifest).encode()
            sprint._add(out, member.name, payload)
    with pytest.raises(ValueError, match="T91/grey.webp does not decode"):
        sprint.unpack(tmp_path / "altered.tar")


def test_the_runs_are_shared_so_every_worker_ends_together():
    queues = sprint.share(sprint.RUNS, 6, 300.0, {})
    assert sorted(run.key for q in queues for run, _, _ in q) == sorted(run.key for run in sprint.RUNS)
    for queue in queues:
        assert sum(seconds for _, seconds, _ in queue) == pytest.approx(300.0)
    loads = [sum(run.weight for run, _, _ in q) for q in queues]
    assert max(loads) - min(loads) <= max(run.weight for run in sprint.RUNS)


def test_the_sprint_runs_every_stage_on_a_tiny_budget(tmp_path, photos):
    for index, folder in enumerate(sprint.SETS):
        (tmp_path / "data" / folder).mkdir(parents=True)
        for name, image in photos:
            Image.fromarray(image[20 * index:20 * index + 110]).save(tmp_path / "data" / folder / f"{name}.png")
    sprint.pack(tmp_path / "images.tar", tmp_path / "data")
    packed = sprint.sprint(tmp_path / "images.tar", tmp_path / "out", minutes=0.5, workers=2, device="cpu", tiny=True)
    record = json.loads((tmp_path / "out" / "sprint.json").read_text())
    assert [run["run"]["key"] for run in record["runs"]] == [run.key for run in sprint.RUNS]
    assert [run.get("error") for run in record["runs"]] == [None] * len(sprint.RUNS)
    assert all(run["iterations"] == 3 for run in record["runs"])
    assert sorted(record["paired_checks"]) == ["bf16", "channels_last", "tf32"]
    vdsr = record["runs"][-1]
    assert sorted(vdsr["scores"]) == ["x2", "x3", "x4"] and sorted(vdsr["scores"]["x3"]) == sorted(sprint.TEST_SETS)
    assert record["provenance"]["git_commit"] is not None and vdsr["fps"]["x4"]["fp32"] > 0
    with tarfile.open(packed) as tar:
        names = tar.getnames()
    assert f"out/runs/{sprint.RUNS[0].key}/weights.pt" in names and "out/sprint.json" in names
    assert not any("check-" in name for name in names)  # the paired checks' networks are not shipped
    network = inference.load_weights(tmp_path / "out" / "runs" / "vdsr-x234" / "weights.pt")
    assert network.name == "vdsr" and network.options == {"depth": 20, "width": 64}
    history = json.loads((tmp_path / "out" / "runs" / "vdsr-x234" / "history.json").read_text())
    assert history["iterations"] == 3 and history["config"]["mix_scales"] == [2, 3, 4]  # as ship_weights reads it


def test_the_command_says_what_it_needs_in_one_line(capsys):
    from srlib import cli
    assert cli.main(["sprint", "--out", "somewhere"]) == 2
    assert capsys.readouterr().err.strip() == (
        "srlib: error: give --images ARCHIVE and --out DIR (or --pack ARCHIVE to make the archive)")
