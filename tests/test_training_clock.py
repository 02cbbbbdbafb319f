"""srlib.training's clock: wall_time and the ``seconds`` budget count training only, so two
networks given the same seconds get the same training time however long they take to validate."""
import time

import pytest

from srlib import samples, training


pytestmark = pytest.mark.usefixtures("one_thread")


def slow_validation(monkeypatch, seconds: float) -> None:
    real = training.validate

    def validate(*args, **kwargs):
        time.sleep(seconds)
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "validate", validate)


def tiny(**budget) -> training.TrainConfig:
    return training.TrainConfig(model="spvdsr", scale=2, options={"depth": 2, "width": 4}, patch_size=8,
                                patches_per_image=4, batch_size=8, val_every=1, **budget)


def test_wall_time_leaves_out_the_time_spent_validating(monkeypatch, tmp_path):
    images = samples.line_art_set(1, 0, (32, 32))
    slow_validation(monkeypatch, 0.5)
    result = training.train(tiny(epochs=4), tmp_path, train_images=images, val_images=images, progress=False)
    assert all(h["val_psnr"] is not None for h in result.history)
    clock = [h["wall_time"] for h in result.history]
    # a one-batch epoch of a 2-layer network takes milliseconds; each 0.5 s validation would show
    assert all(later - earlier < 0.4 for earlier, later in zip(clock, clock[1:])), clock


def test_a_seconds_budget_is_spent_training_not_validating(monkeypatch, tmp_path):
    images = samples.line_art_set(1, 0, (32, 32))
    slow_validation(monkeypatch, 0.3)
    result = training.train(tiny(seconds=0.25), tmp_path, train_images=images, val_images=images, progress=False)
    assert result.history[-1]["wall_time"] >= 0.25
    # with validation on the clock the first 0.3 s validation would end the run after two epochs;
    # off the clock, 0.25 s buys many one-batch epochs of a 2-layer network
    assert len(result.history) >= 4, len(result.history)
