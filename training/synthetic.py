"""A tiny generated caption dataset ("shapes") for fast end-to-end tests of the training code.

Each image is one coloured shape on a plain, nearly white background. Its caption is fully determined
by four visible attributes: size (big/small), colour (red/green/blue/yellow), shape
(circle/bar/column) and position (left/right), e.g. "a big red circle on the left ." That is
48 classes whose words are independent of each other, so the real encoder + attention-LSTM learns it
in well under a minute on a CPU, and a test can check that training actually learnt something.

Files are written in the Flickr8k layout read by :func:`training.datasets.load_flickr8k`:
``Images/*.jpg``, ``Flickr8k.token.txt`` (``NAME.jpg#N<TAB>caption``, N = 0..4), the three
``Flickr_8k.{train,dev,test}Images.txt`` split files, plus ``canonical.json`` (image -> the one
canonical caption, which is also the most frequent of its five captions).

Pillow only (no torch/numpy), deterministic for a given seed: same seed, same bytes.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from itertools import product
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 160, 60),
    "blue": (40, 70, 210),
    "yellow": (235, 200, 30),
}
# Shapes that differ in outline at the 7x7 grid the decoder attends over (a wide bar, a tall column,
# a round blob), so even a randomly initialised encoder's features tell them apart.
SHAPES = ("circle", "bar", "column")
SIZES = ("big", "small")
POSITIONS = ("left", "right")

CANONICAL_TEMPLATE = "a {size} {colour} {shape} on the {position} ."
# Other wordings of the same picture. Three of these plus the canonical caption twice make an image's
# five captions, so the canonical one is always the most frequent. Every word here shows up in
# hundreds of training captions, so a vocabulary with min_count=5 has no <unk>.
VARIANT_TEMPLATES = (
    "a {size} {colour} {shape} .",
    "a {colour} {shape} on the {position} .",
    "there is a {size} {colour} {shape} on the {position} .",
    "a {size} {colour} {shape} on the {position} of the picture .",
    "a {colour} {shape} on a white background .",
    "a {size} {colour} {shape} on a white background .",
)

_SPLITS = (
    ("train", "Flickr_8k.trainImages.txt"),
    ("dev", "Flickr_8k.devImages.txt"),
    ("test", "Flickr_8k.testImages.txt"),
)


@dataclass(frozen=True)
class ShapeSpec:
    """The visible attributes of one image; they alone determine its captions."""

    colour: str
    shape: str
    size: str
    position: str

    @property
    def caption(self) -> str:
        return canonical_caption(self.colour, self.shape, self.size, self.position)


def canonical_caption(colour: str, shape: str, size: str, position: str) -> str:
    """The one caption a perfect model should produce, e.g. "a big red circle on the left ."."""
    _check(colour, shape, size, position)
    return CANONICAL_TEMPLATE.format(colour=colour, shape=shape, size=size, position=position)


def all_specs() -> list[ShapeSpec]:
    """Every class: 4 colours x 3 shapes x 2 sizes x 2 positions = 48."""
    return [ShapeSpec(c, s, z, p) for c, s, z, p in product(COLOURS, SHAPES, SIZES, POSITIONS)]


def captions_for(spec: ShapeSpec, rng: random.Random) -> list[str]:
    """Five captions: the canonical one twice and three different rewordings, in random order."""
    fields = {"colour": spec.colour, "shape": spec.shape, "size": spec.size, "position": spec.position}
    others = [t.format(**fields) for t in rng.sample(VARIANT_TEMPLATES, 3)]
    rest = [spec.caption, *others]
    rng.shuffle(rest)
    return [spec.caption, *rest]  # #0 is canonical, for code that takes the first reference


def draw_shape(spec: ShapeSpec, rng: random.Random, size: int = 224) -> Image.Image:
    """One picture of `spec`, with mild noise in background shade, colour, size and position."""
    grey = rng.randint(232, 252)
    background = tuple(min(255, grey + rng.randint(-3, 3)) for _ in range(3))
    colour = tuple(max(0, min(255, v + rng.randint(-20, 20))) for v in COLOURS[spec.colour])
    # Radii keep big and small well apart and every shape inside the frame.
    r = size * (rng.uniform(0.17, 0.21) if spec.size == "big" else rng.uniform(0.08, 0.11))
    cx = size * (rng.uniform(0.24, 0.32) if spec.position == "left" else rng.uniform(0.68, 0.76))
    cy = size * rng.uniform(0.32, 0.68)

    im = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(im)
    if spec.shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif spec.shape == "bar":  # wide and flat, still inside the frame
        draw.rectangle((cx - 1.1 * r, cy - 0.35 * r, cx + 1.1 * r, cy + 0.35 * r), fill=colour)
    else:  # column: tall and narrow
        draw.rectangle((cx - 0.35 * r, cy - 1.1 * r, cx + 0.35 * r, cy + 1.1 * r), fill=colour)
    return im


def make_shapes_dataset(
    root: Path,
    n_train: int = 300,
    n_dev: int = 40,
    n_test: int = 40,
    seed: int = 0,
    size: int = 224,
) -> Path:
    """Write the shapes dataset under `root` in the Flickr8k layout and return `root`.

    Classes are dealt out evenly (every class appears in train when n_train >= 48). Existing files
    with the same names are overwritten; nothing else under `root` is touched.
    """
    root = Path(root)
    image_dir = root / "Images"
    image_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    specs = all_specs()

    token_lines: list[str] = []
    canonical: dict[str, str] = {}
    index = 0
    for (_, split_file), n in zip(_SPLITS, (n_train, n_dev, n_test), strict=True):
        names = []
        for spec in _deal(specs, n, rng):
            name = f"shapes_{index:05d}.jpg"
            index += 1
            draw_shape(spec, rng, size).save(image_dir / name, "JPEG", quality=90)
            token_lines.extend(f"{name}#{k}\t{c}" for k, c in enumerate(captions_for(spec, rng)))
            canonical[name] = spec.caption
            names.append(name)
        (root / split_file).write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    (root / "Flickr8k.token.txt").write_text("\n".join(token_lines) + "\n", encoding="utf-8")
    (root / "canonical.json").write_text(json.dumps(canonical, indent=1) + "\n", encoding="utf-8")
    return root


def load_canonical(root: Path) -> dict[str, str]:
    """canonical.json of a generated dataset: image file name -> canonical caption."""
    return json.loads((Path(root) / "canonical.json").read_text(encoding="utf-8"))


def _deal(specs: list[ShapeSpec], n: int, rng: random.Random) -> list[ShapeSpec]:
    """n specs, cycling through shuffled copies of all classes so the counts stay balanced."""
    out: list[ShapeSpec] = []
    while len(out) < n:
        batch = specs[:]
        rng.shuffle(batch)
        out.extend(batch[: n - len(out)])
    return out


def _check(colour: str, shape: str, size: str, position: str) -> None:
    for value, allowed, what in (
        (colour, COLOURS, "colour"),
        (shape, SHAPES, "shape"),
        (size, SIZES, "size"),
        (position, POSITIONS, "position"),
    ):
        if value not in allowed:
            raise ValueError(f"unknown {what} {value!r}: choose one of {', '.join(allowed)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the synthetic shapes caption dataset (Flickr8k layout).")
    parser.add_argument("root", type=Path)
    parser.add_argument("--n-train", type=int, default=300)
    parser.add_argument("--n-dev", type=int, default=40)
    parser.add_argument("--n-test", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args(argv)
    make_shapes_dataset(args.root, args.n_train, args.n_dev, args.n_test, args.seed, args.size)
    print(args.root)


if __name__ == "__main__":
    main()
