"""Sample images: the bundled free photographs and the generated line-art stand-in."""
import numpy as np
import pytest

from srlib.samples import (SAMPLE_LICENSES, astronaut, line_art, line_art_set, line_art_test,
                           line_art_train, photographs)

SEEDS = [0, 7, 1000]


def _luma(image: np.ndarray) -> np.ndarray:
    return image.astype(float) @ np.array([0.299, 0.587, 0.114])


def test_line_art_same_seed_gives_identical_bytes():
    assert line_art(3).tobytes() == line_art(3).tobytes()


def test_line_art_different_seeds_differ():
    assert line_art(3).tobytes() != line_art(4).tobytes()


@pytest.mark.parametrize("size", [(360, 640), (50, 71)])
def test_line_art_is_uint8_rgb_of_requested_size(size):
    image = line_art(1, size)
    assert image.dtype == np.uint8
    assert image.shape == (*size, 3)


@pytest.mark.parametrize("seed", SEEDS)
def test_line_art_edges_are_antialiased(seed):
    colours, counts = np.unique(line_art(seed).reshape(-1, 3), axis=0, return_counts=True)
    dominant = np.sort(counts)[::-1][:20].sum() / counts.sum()
    assert dominant > 0.85, "a handful of flat colours should cover most of the frame"
    assert len(colours) > 150, "edges should add many blended in-between colours"


@pytest.mark.parametrize("seed", SEEDS)
def test_line_art_has_large_flat_areas_and_dark_strokes(seed):
    image = line_art(seed).astype(int)
    still_down = np.abs(np.diff(image, axis=0)).sum(-1)[:, :-1] == 0
    still_right = np.abs(np.diff(image, axis=1)).sum(-1)[:-1] == 0
    assert (still_down & still_right).mean() > 0.7
    assert 0.005 < (_luma(image) < 70).mean() < 0.25


def test_line_art_without_colour_is_grey_version_of_same_drawing():
    grey = line_art(5, colour=False)
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    colour_edges = np.abs(np.diff(_luma(line_art(5)), axis=1)) > 40
    grey_edges = np.abs(np.diff(_luma(grey), axis=1)) > 40
    assert (colour_edges & grey_edges).sum() > 0.5 * colour_edges.sum()


@pytest.mark.parametrize("seed, size", [(-1, (64, 64)), (1.5, (64, 64)), (0, (8, 64)), (0, "big")])
def test_line_art_rejects_bad_arguments(seed, size):
    with pytest.raises(ValueError):
        line_art(seed, size)


def test_line_art_set_names_drawings_by_seed():
    drawings = line_art_set(2, seed=5, size=(40, 60))
    assert [name for name, _ in drawings] == ["lineart-005", "lineart-006"]
    assert np.array_equal(drawings[1][1], line_art(6, (40, 60)))


def test_line_art_train_and_test_sets_are_disjoint():
    train = {name for name, _ in line_art_train(32, size=(16, 16))}
    test = {name for name, _ in line_art_test(4, size=(16, 16))}
    assert len(train) == 32 and len(test) == 4
    assert not train & test
    with pytest.raises(ValueError):
        line_art_train(1001)


def test_photographs_are_the_licensed_uint8_rgb_images():
    pytest.importorskip("skimage")
    images = photographs()
    assert [name for name, _ in images] == list(SAMPLE_LICENSES)
    for _, image in images:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


def test_astronaut_is_the_512_square_nasa_photograph():
    pytest.importorskip("skimage")
    image = astronaut()
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    assert np.array_equal(image, dict(photographs())["astronaut"])
