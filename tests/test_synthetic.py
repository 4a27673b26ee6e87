"""training.synthetic: the generated shapes dataset is readable, balanced, deterministic and honest."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from training.datasets import load_flickr8k
from training.synthetic import (
    COLOURS,
    SHAPES,
    ShapeSpec,
    all_specs,
    canonical_caption,
    load_canonical,
    make_shapes_dataset,
)


@pytest.fixture(scope="module")
def default_dataset(tmp_path_factory) -> tuple[Path, float]:
    root = tmp_path_factory.mktemp("shapes")
    start = time.perf_counter()
    make_shapes_dataset(root)
    return root, time.perf_counter() - start


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_load_flickr8k_reads_it(default_dataset):
    root, _ = default_dataset
    data = load_flickr8k(root)
    assert [len(data.split(s)) for s in ("train", "dev", "test")] == [300, 40, 40]
    names = [im.name for im in data.images]
    assert len(set(names)) == 380  # no image is in two splits
    for im in data.images:
        assert len(im.captions) == 5
        assert im.path.is_file()
    with Image.open(data.images[0].path) as first:
        assert (first.format, first.mode, first.size) == ("JPEG", "RGB", (224, 224))


def test_generation_is_fast(default_dataset):
    _, seconds = default_dataset
    assert seconds < 5, f"generating the default dataset took {seconds:.1f} s"


def test_canonical_caption_is_the_most_frequent(default_dataset):
    root, _ = default_dataset
    canonical = load_canonical(root)
    data = load_flickr8k(root)
    assert set(canonical) == {im.name for im in data.images}
    for im in data.images:
        (top, n_top), (_, n_next) = Counter(im.captions).most_common(2)
        assert top == canonical[im.name] == im.captions[0]
        assert n_top > n_next


def test_training_split_is_balanced_and_words_are_frequent(default_dataset):
    root, _ = default_dataset
    canonical = load_canonical(root)
    train = load_flickr8k(root).split("train")
    per_class = Counter(canonical[im.name] for im in train)
    assert set(per_class) == {s.caption for s in all_specs()}  # all 48 classes are in train
    assert max(per_class.values()) - min(per_class.values()) <= 1
    words = Counter(w for im in train for c in im.captions for w in c.split())
    assert min(words.values()) >= 5  # nothing falls under the vocabulary's default min_count


def test_deterministic_for_a_seed(tmp_path):
    kw = {"n_train": 12, "n_dev": 3, "n_test": 3, "size": 64}
    a = digest(make_shapes_dataset(tmp_path / "a", seed=7, **kw))
    b = digest(make_shapes_dataset(tmp_path / "b", seed=7, **kw))
    c = digest(make_shapes_dataset(tmp_path / "c", seed=8, **kw))
    assert len(a) == 18 + 5
    assert a == b
    assert a["Flickr8k.token.txt"] != c["Flickr8k.token.txt"]
    assert a["Images/shapes_00000.jpg"] != c["Images/shapes_00000.jpg"]


def test_canonical_caption():
    assert canonical_caption("red", "circle", "big", "left") == "a big red circle on the left ."
    assert ShapeSpec("blue", "column", "small", "right").caption == "a small blue column on the right ."
    assert len(all_specs()) == 48
    with pytest.raises(ValueError, match="colour"):
        canonical_caption("purple", "circle", "big", "left")


def parse(caption: str) -> ShapeSpec:
    _, size, colour, shape, _, _, position, _ = caption.split()
    return ShapeSpec(colour, shape, size, position)


def test_captions_match_what_is_drawn(tmp_path):
    """Measure each picture and check that its canonical caption describes it."""
    np = pytest.importorskip("numpy")
    root = make_shapes_dataset(tmp_path, n_train=96, n_dev=0, n_test=0, seed=3)
    palette = {name: np.array(rgb, dtype=float) for name, rgb in COLOURS.items()}
    areas = {(shape, size): [] for shape in SHAPES for size in ("big", "small")}
    for name, caption in load_canonical(root).items():
        spec = parse(caption)
        with Image.open(root / "Images" / name) as im:
            pixels = np.asarray(im.convert("RGB"), dtype=float)
        background = pixels[0, 0]
        mask = np.abs(pixels - background).sum(axis=2) > 90
        ys, xs = np.nonzero(mask)
        assert len(xs) > 100, name

        assert ("left" if xs.mean() < 112 else "right") == spec.position, name
        mean = pixels[mask].mean(axis=0)
        assert min(palette, key=lambda c: np.abs(palette[c] - mean).sum()) == spec.colour, name
        fill = mask.sum() / ((np.ptp(xs) + 1) * (np.ptp(ys) + 1))  # share of the bounding box covered
        expected_fill = {"bar": (0.9, 1.01), "column": (0.9, 1.01), "circle": (0.7, 0.86)}[spec.shape]
        assert expected_fill[0] < fill < expected_fill[1], (name, spec.shape, fill)
        aspect = (np.ptp(xs) + 1) / (np.ptp(ys) + 1)  # width / height
        expected_aspect = {"bar": (2.5, 4.0), "column": (0.25, 0.4), "circle": (0.9, 1.1)}[spec.shape]
        assert expected_aspect[0] < aspect < expected_aspect[1], (name, spec.shape, aspect)
        areas[spec.shape, spec.size].append(mask.sum())
    for shape in SHAPES:  # big and small never overlap, shape by shape
        assert min(areas[shape, "big"]) > 1.4 * max(areas[shape, "small"]), shape
