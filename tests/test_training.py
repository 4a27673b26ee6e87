"""The real training code learns a tiny generated dataset: held-out shapes get the right caption."""

import json

import pytest

from captioner.inference import CaptionEngine
from training.datasets import load_flickr8k
from training.synthetic import make_shapes_dataset
from training.train import TrainConfig, train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shapes")
    root = make_shapes_dataset(tmp / "data", n_train=960, n_dev=48, n_test=96, seed=0)
    tc = TrainConfig(
        data=str(root),
        out=str(tmp / "run"),
        cache_dir=str(tmp / "cache"),
        encoder="tiny_cnn",
        pretrained=False,
        feature_dim=64,
        embed_dim=32,
        hidden_dim=96,
        attention_dim=32,
        dropout=0.0,
        alpha_c=0.0,
        epochs=14,
        batch_images=8,
        lr=5e-3,
        lr_decay=0.9,
        patience=14,
        min_count=1,
        max_len=10,
        scst_epochs=1,
        scst_evals_per_epoch=2,
        scst_lr=5e-4,
        seed=0,
        device="cpu",
        threads=1,
    )  # hflip is on (the default): mirrored photos must come with "left"/"right" swapped to still pass
    best = train(tc, resume=False)
    return root, tc, best


def test_held_out_images_get_their_caption(trained):
    root, _, best = trained
    engine = CaptionEngine.load(best, device="cpu")
    canonical = json.loads((root / "canonical.json").read_text())
    test = load_flickr8k(root).split("test")
    from captionbot.images import load_image

    results = engine.caption([load_image(im.path) for im in test], beam_size=3)
    said = [" ".join(r.tokens) for r in results]
    wanted = [" ".join(canonical[im.name].replace(" .", "").split()) for im in test]
    exact = sum(s == w for s, w in zip(said, wanted, strict=True)) / len(test)
    assert exact >= 0.9, list(zip(said, wanted, strict=True))[:10]


def test_run_writes_curves_metrics_and_resumes(trained):
    root, tc, best = trained
    run = best.parent
    assert (run / "curves.png").stat().st_size > 1000
    history = json.loads((run / "metrics.json").read_text())
    assert [h["epoch"] for h in history if h["stage"] == "scst"] == [0.5, 1.0]  # dev checked mid-epoch
    assert all("CIDEr-D" in h["dev"] for h in history)
    assert history[-1]["dev"]["CIDEr-D"] > 1.0  # near-perfect captions score far above 1 on CIDEr-D
    # Resuming a finished run trains nothing more and keeps the history.
    before = (run / "last.pt").stat().st_mtime_ns
    train(tc, resume=True)
    assert json.loads((run / "metrics.json").read_text()) == history
    assert (run / "last.pt").stat().st_mtime_ns == before


def test_cli_eval_and_caption_on_the_trained_model(trained, tmp_path):
    from typer.testing import CliRunner

    from captionbot_cli.main import app

    root, _, best = trained
    runner = CliRunner()
    out, metrics = tmp_path / "captions.json", tmp_path / "metrics.json"
    result = runner.invoke(
        app,
        [
            "eval",
            "--model",
            str(best),
            "--data",
            str(root),
            "--split",
            "test",
            "--no-meteor",
            "--out",
            str(out),
            "--metrics-out",
            str(metrics),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "CIDEr-D" in result.output
    rows = json.loads(out.read_text())
    assert len(rows) == 96 and {"image", "caption", "confidence", "references"} <= set(rows[0])
    scores = json.loads(metrics.read_text())
    assert scores["split"] == "test" and scores["CIDEr-D"] > 1.0 and scores["METEOR"] is None

    photo = next((root / "Images").glob("*.jpg"))
    result = runner.invoke(app, ["caption", str(photo), "--model", str(best), "--json"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.output.strip().splitlines()[-1])
    assert line["image"] == str(photo) and line["caption"].endswith(".") and 0 < line["confidence"] <= 1
    junk = tmp_path / "notes.txt"
    junk.write_text("not a photo")
    result = runner.invoke(app, ["caption", str(junk), "--model", str(best)])
    assert result.exit_code == 1 and "isn't an image" in result.output


def test_mirrored_views_swap_left_and_right_and_pick_mirrored_grids(tmp_path):
    import numpy as np
    import torch

    from captioner.vocab import Vocabulary
    from training.data import TrainingData, swap_left_right

    vocab = Vocabulary.build(["a dog on the left", "a cat on the right"], min_count=1)
    ids = vocab.encode("a dog on the left")
    assert vocab.decode(swap_left_right(ids, vocab)) == vocab.decode(vocab.encode("a dog on the right"))
    no_sides = Vocabulary.build(["a dog"], min_count=1)
    assert swap_left_right(no_sides.encode("a dog"), no_sides) == no_sides.encode("a dog")

    grids = torch.zeros(3, 2, 4, dtype=torch.float16)
    data = TrainingData(vocab, grids, {}, [], grids_mirrored=torch.ones(3, 2, 4, dtype=torch.float16))
    picked = data.grid(np.array([2, 0]), mirrored=[True, False])
    assert picked[0].eq(1).all() and picked[1].eq(0).all()
    assert data.grid(np.array([2, 0])).eq(0).all()  # evaluation never sees mirrored grids


def test_scst_reward_counts_the_caption_end_so_cut_off_captions_lose():
    from training.cider import CiderD
    from training.scst import with_eos

    refs = {0: ["A dog runs on the grass.", "a brown dog is running through the grass"], 1: ["a man rides a bike"]}
    cider = CiderD({k: [" ".join(w) for w in with_eos(v)] for k, v in refs.items()}, tokenize=False)
    whole, cut = cider.score_keys(with_eos(["a dog runs on the grass", "a dog runs on the"]), [0, 0])
    plain = CiderD(refs)
    plain_whole, plain_cut = plain.score_keys(["a dog runs on the grass", "a dog runs on the"], [0, 0])
    assert whole > cut and (whole - cut) / whole > (plain_whole - plain_cut) / plain_whole


def test_encoder_fine_tuning_trains_the_cnn_only_when_asked(tmp_path):
    import torch

    from captioner.checkpoint import load_checkpoint
    from training.train import build_model, set_seed

    root = make_shapes_dataset(tmp_path / "data", n_train=64, n_dev=16, n_test=8, seed=3)

    def run(name: str, finetune_from: int):
        tc = TrainConfig(
            data=str(root),
            out=str(tmp_path / name),
            cache_dir=str(tmp_path / "cache"),
            encoder="tiny_cnn",
            pretrained=False,
            feature_dim=32,
            embed_dim=16,
            hidden_dim=32,
            attention_dim=16,
            epochs=2,
            batch_images=16,
            min_count=1,
            max_len=10,
            seed=0,
            threads=1,
            finetune_encoder_from=finetune_from,
            encoder_lr=1e-3,
        )
        best = train(tc, resume=False)
        model, vocab, _ = load_checkpoint(best.parent / "last.pt")
        set_seed(tc.seed)  # as train() does before building the model: the same initial weights
        start = build_model(tc, vocab)
        same = all(
            torch.equal(a, b)
            for a, b in zip(start.encoder.state_dict().values(), model.encoder.state_dict().values(), strict=True)
        )
        history = json.loads((best.parent / "metrics.json").read_text())
        return same, history

    frozen_same, _ = run("frozen", 0)
    tuned_same, history = run("tuned", 2)
    assert frozen_same, "without fine-tuning the encoder keeps its weights"
    assert not tuned_same, "epoch 2 fine-tuned the encoder"
    assert [h["epoch"] for h in history] == [1, 2] and all(h["dev"]["CIDEr-D"] >= 0 for h in history)


@pytest.mark.parametrize("dropout", [True, False])
def test_scst_samples_with_dropout_only_when_asked(tmp_path, monkeypatch, dropout):
    import training.scst as scst
    from training.data import prepare
    from training.datasets import load_flickr8k
    from training.train import build_model, make_optimizer

    root = make_shapes_dataset(tmp_path / "data", n_train=16, n_dev=4, n_test=4, seed=1)
    tc = TrainConfig(
        data=str(root),
        encoder="tiny_cnn",
        pretrained=False,
        feature_dim=16,
        embed_dim=8,
        hidden_dim=16,
        attention_dim=8,
        min_count=1,
        max_len=8,
        batch_images=8,
        hflip=False,
        scst_dropout=dropout,
    )
    dataset = load_flickr8k(root)
    from captioner.vocab import Vocabulary

    vocab = Vocabulary.build((c for im in dataset.split("train") for c in im.captions), min_count=1)
    model = build_model(tc, vocab)
    data = prepare(
        dataset,
        encoder="tiny_cnn",
        cache_dir=tmp_path / "cache",
        vocab=vocab,
        max_len=8,
        encoder_module=model.encoder,
        weights_tag="t",
    )
    modes = []
    real_sample = scst.sample

    def spy(decoder, *args, **kwargs):
        modes.append(decoder.training)
        return real_sample(decoder, *args, **kwargs)

    monkeypatch.setattr(scst, "sample", spy)
    scst.scst_epoch(model, data, make_optimizer(model, tc), tc, scst.train_cider(data), epoch=1)
    assert modes and all(m is dropout for m in modes)
