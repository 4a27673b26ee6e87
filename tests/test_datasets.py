"""The three caption dataset formats read into the same shape, and malformed files say what is wrong."""

import json
from pathlib import Path

import pytest

from training.datasets import DatasetError, load_dataset, load_flickr8k


def test_karpathy_json_maps_splits_and_paths(tmp_path):
    data = {
        "images": [
            {"filename": "a.jpg", "filepath": "val2014", "split": "val", "sentences": [{"raw": "A dog."}]},
            {"filename": "b.jpg", "split": "restval", "sentences": [{"tokens": ["a", "cat"]}]},
            {"filename": "c.jpg", "split": "test", "sentences": [{"raw": "x"}, {"raw": "y"}]},
        ]
    }
    path = tmp_path / "dataset_coco.json"
    path.write_text(json.dumps(data))
    ds = load_dataset(path)
    assert [(im.path, im.split, im.captions) for im in ds.images] == [
        (tmp_path / "val2014" / "a.jpg", "dev", ["A dog."]),
        (tmp_path / "b.jpg", "train", ["a cat"]),
        (tmp_path / "c.jpg", "test", ["x", "y"]),
    ]


def test_jsonl_resolves_relative_paths_and_defaults_to_train(tmp_path):
    path = tmp_path / "feedback.jsonl"
    path.write_text(
        '{"image": "photos/1.jpg", "captions": ["a red bus"]}\n\n'
        '{"image": "/abs/2.jpg", "captions": "one caption", "split": "dev"}\n'
    )
    ds = load_dataset(path)
    assert [(im.path, im.split, im.captions) for im in ds.images] == [
        (tmp_path / "photos" / "1.jpg", "train", ["a red bus"]),
        (Path("/abs/2.jpg"), "dev", ["one caption"]),
    ]


def test_malformed_inputs_name_the_problem(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"image": "x.jpg"}\n')
    with pytest.raises(DatasetError, match="bad.jsonl:1"):
        load_dataset(bad)
    with pytest.raises(DatasetError, match="Flickr8k.token.txt"):
        load_flickr8k(tmp_path)
    (tmp_path / "Flickr8k.token.txt").write_text("no tab here\n")
    with pytest.raises(DatasetError, match=":1: expected"):
        load_flickr8k(tmp_path)
    with pytest.raises(DatasetError, match="no dataset at .*missing.*Flickr8k is for research use"):
        load_dataset(tmp_path / "missing")
    (tmp_path / "data.csv").write_text("image,caption\n")
    with pytest.raises(DatasetError, match="don't know how"):
        load_dataset(tmp_path / "data.csv")
    notjson = tmp_path / "k.json"
    notjson.write_text("[1, 2]")
    with pytest.raises(DatasetError, match="not a Karpathy-format"):
        load_dataset(notjson)
