"""Checkpoint round trip and refusal of files this code can't use; the inference API on top of it."""

import pytest
import torch
from PIL import Image

from captioner.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from captioner.inference import CaptionEngine
from captioner.model import Captioner, CaptionerConfig
from captioner.vocab import Vocabulary

CAPTIONS = ["a red circle", "a blue square", "a green triangle on the left", "two dogs run"]


def tiny_model(vocab):
    torch.manual_seed(0)
    cfg = CaptionerConfig(
        vocab_size=len(vocab), feature_dim=16, embed_dim=16, hidden_dim=16, attention_dim=16, max_len=8
    )
    return Captioner(cfg, pretrained_encoder=False).eval()


@pytest.fixture
def vocab():
    return Vocabulary.build(CAPTIONS, min_count=1)


def images():
    return [Image.new("RGB", (64, 48), c) for c in ("red", "blue", "green")] + [Image.new("L", (300, 200), 128)]


@pytest.mark.parametrize("half", [False, True])
def test_round_trip_gives_the_same_captions(tmp_path, vocab, half):
    model = tiny_model(vocab)
    path = save_checkpoint(tmp_path / "m.pt", model, vocab, metrics={"dev": {"CIDEr-D": 0.5}}, half=half)
    loaded, vocab2, payload = load_checkpoint(path, map_location="cpu")
    assert vocab2.words == vocab.words
    assert payload["metrics"]["dev"]["CIDEr-D"] == 0.5
    assert payload["preprocess"] == {"resize": "squash", "size": 224, "encoder": "mobilenet_v2"}
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        a = model.decoder.init_state(model.encode(x)).h
        b = loaded.decoder.init_state(loaded.encode(x)).h
    assert torch.allclose(a, b, atol=1e-2 if half else 1e-6)
    if half:  # float16 storage halves the file
        full = save_checkpoint(tmp_path / "full.pt", model, vocab)
        assert path.stat().st_size < 0.6 * full.stat().st_size


def test_refuses_files_that_are_not_checkpoints(tmp_path, vocab):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="not a captionbot checkpoint"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_refuses_incompatible_checkpoints(tmp_path, vocab):
    path = save_checkpoint(tmp_path / "m.pt", tiny_model(vocab), vocab)
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format 99"):
        load_checkpoint(tmp_path / "future.pt")
    payload = torch.load(path, weights_only=True)
    payload["config"]["hidden_dim"] = 32  # weights no longer fit the config
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(tmp_path / "mismatch.pt")


def test_engine_captions_a_batch_with_confidence_and_timings(tmp_path, vocab):
    path = save_checkpoint(tmp_path / "m.pt", tiny_model(vocab), vocab)
    engine = CaptionEngine.load(path, device="cpu")
    assert engine.version.startswith("m-")
    results = engine.caption(images(), beam_size=3, with_attention=True)
    assert len(results) == 4
    for r in results:
        assert 0.0 < r.confidence <= 1.0
        assert len(r.token_logprobs) == len(r.tokens) + 1  # the words and <end>
        assert r.attention.shape == (len(r.tokens), 7, 7)
        assert set(r.timings_ms) >= {"encode_ms", "decode_ms", "preprocess_ms"}
        assert all(t in vocab.words for t in r.tokens)
    # One image alone gets the same caption as inside the batch.
    solo = engine.caption(images()[1:2], beam_size=3)[0]
    assert solo.tokens == results[1].tokens
    assert engine.caption([]) == []


def test_cpu_engine_decodes_with_int8_weights_that_track_the_float_model(tmp_path, vocab):
    path = save_checkpoint(tmp_path / "m.pt", tiny_model(vocab), vocab)
    fp = CaptionEngine.load(path, device="cpu", int8_decoder=False)
    q = CaptionEngine.load(path, device="cpu")  # CPU default: int8 decoder
    assert q.int8_decoder and not fp.int8_decoder
    assert any("quantized" in type(m).__module__ for m in q.decoder.modules())
    assert not any("quantized" in type(m).__module__ for m in q.model.decoder.modules()), "the float model is kept"
    with torch.inference_mode():
        grid = fp.model.encode(torch.randn(3, 3, 224, 224))
        tokens = torch.tensor([4, 5, 6])
        ref, _, _ = fp.decoder.step(tokens, fp.decoder.init_state(grid))
        got, _, _ = q.decoder.step(tokens, q.decoder.init_state(grid))
    assert (got - ref).abs().max() <= 0.05 * ref.abs().max() + 1e-3
    for r in q.caption(images(), beam_size=3):
        assert 0.0 < r.confidence <= 1.0 and len(r.token_logprobs) == len(r.tokens) + 1


def test_the_model_extra_installs_everything_the_shipped_model_needs():
    """The README's first command installs only [model]; the shipped checkpoint must load with it."""
    import tomllib
    from pathlib import Path

    from captioner.checkpoint import DEFAULT_CHECKPOINT

    payload = torch.load(DEFAULT_CHECKPOINT, map_location="cpu", weights_only=True)
    encoder = payload["config"]["encoder"]
    extras = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    model_extra = " ".join(extras["model"])
    needs = {"mobilenet_v2": "torchvision", "efficientnet_lite0": "efficientnet-lite-pytorch"}[encoder]
    assert needs in model_extra, f"the shipped model's {encoder} encoder needs {needs} in the [model] extra"
