"""Constrained beam search and vocabulary expansion: rules that must hold for any weights."""

import pytest
import torch

from captioner.constrained import constrained_beam_search, constraint_mask
from captioner.decoding import beam_search
from captioner.guidance import forced_words, guide
from captioner.model import Captioner, CaptionerConfig
from captioner.scoring import caption_logprobs
from captioner.vocab import END_ID, PAD_ID, Vocabulary
from captioner.vocab_expansion import ExpansionError, expand_vocabulary, restricted_mask
from tests.test_decoding import grids, make_decoder


def _words_before_end(row: torch.Tensor) -> list[int]:
    out = []
    for t in row.tolist():
        if t == END_ID:
            break
        out.append(t)
    return out


@pytest.mark.parametrize("beam", [1, 3])
def test_every_caption_contains_a_forced_word_and_ends(beam):
    dec, g = make_decoder(seed=3), grids(8, seed=4)
    free = beam_search(dec, g, beam, 12)
    # For each image a word its free caption never says (so the constraint changes something).
    sets = []
    for b in range(8):
        said = set(free.tokens[b].tolist())
        sets.append([next(w for w in range(10, 30) if w not in said)] + ([29] if b % 2 else []))
    out, met = constrained_beam_search(dec, g, constraint_mask(sets, 30), beam, 12)
    assert bool(met.all())
    for b in range(8):
        words = _words_before_end(out.tokens[b])
        assert set(words) & set(sets[b]), f"image {b}: no forced word in {words}"
        n = int(out.lengths[b])
        assert out.tokens[b, n - 1] == END_ID, "the caption ends with <end>"
        assert (out.tokens[b, n:] == PAD_ID).all()
        assert n <= 13


def test_constrained_caption_scores_are_its_own_logprobs():
    dec, g = make_decoder(seed=5), grids(4, seed=6)
    out, met = constrained_beam_search(dec, g, constraint_mask([[11], [12], [13], [14]], 30), 3, 12)
    seqs = [_words_before_end(out.tokens[b]) for b in range(4)]
    teacher = caption_logprobs(dec, g, seqs)
    for b in range(4):
        n = int(out.lengths[b])
        assert torch.allclose(teacher[b, :n], out.token_logprobs[b, :n], atol=1e-4)


def test_no_constraint_falls_back_to_best_free_hypothesis():
    dec, g = make_decoder(seed=7), grids(3, seed=8)
    out, met = constrained_beam_search(dec, g, constraint_mask([[], [], []], 30), 3, 12)
    assert not bool(met.any())
    free = beam_search(dec, g, 3, 12)
    for b in range(3):
        assert _words_before_end(out.tokens[b]) == _words_before_end(free.tokens[b]) or out.scores[b] <= free.scores[b]


def test_restricted_words_appear_only_where_they_are_the_constraint():
    dec, g = make_decoder(seed=9), grids(6, seed=10)
    with torch.no_grad():
        dec.out.bias[20] += 50.0  # the model would say word 20 everywhere
    restricted = torch.zeros(30, dtype=torch.bool)
    restricted[20] = True
    sets = [[20], [21], [20], [22], [23], [24]]
    out, met = constrained_beam_search(dec, g, constraint_mask(sets, 30), 3, 12, restricted=restricted)
    for b in range(6):
        words = _words_before_end(out.tokens[b])
        assert (20 in words) == (sets[b] == [20]), (b, words)


def test_guide_only_redecodes_images_that_miss_their_word():
    dec, g = make_decoder(seed=11), grids(4, seed=12)
    free = beam_search(dec, g, 3, 12)
    said = _words_before_end(free.tokens[0])[0]
    unsaid = next(w for w in range(10, 30) if w not in free.tokens[1].tolist())
    constraints = [[], [unsaid], [], []]
    out, forced = guide(dec, g, free, constraints, beam_size=3, max_len=12)
    assert forced == [False, True, False, False]
    assert unsaid in _words_before_end(out.tokens[1])
    for b in (0, 2, 3):
        assert _words_before_end(out.tokens[b]) == _words_before_end(free.tokens[b])
    assert said in _words_before_end(out.tokens[0])


def test_forced_words_skips_unsure_tags_and_captions_that_already_name_the_thing():
    from captioner.labelmap import LabelEntry, LabelMap, WordScore

    lm = LabelMap(
        [
            LabelEntry(0, "tabby", "cat", ("kitten",), "cat", "plain"),
            LabelEntry(1, "espresso", "coffee", ("cup",), "drink", "plain"),
        ]
    )
    vocab = Vocabulary(["<pad>", "<start>", "<end>", "<unk>", "a", "cat", "kitten", "cup", "coffee"])
    tokens = torch.tensor([[4, 5, 2], [4, 7, 2], [4, 4, 2]])
    tops = [[WordScore("cat", 0.9, "tabby")], [WordScore("coffee", 0.9, "espresso")], [WordScore("cat", 0.2, "tabby")]]
    assert forced_words(tops, tokens, lm, vocab, 0.5) == [[], [], []]
    tokens[0, 1] = 4
    assert forced_words(tops, tokens, lm, vocab, 0.5)[0] == [5, 6]


def _tiny_captioner(vocab_size):
    torch.manual_seed(0)
    cfg = CaptionerConfig(
        vocab_size=vocab_size,
        encoder="tiny_cnn",
        encoder_channels=130,
        feature_dim=16,
        embed_dim=16,
        hidden_dim=16,
        attention_dim=16,
        max_len=8,
        image_size=64,
    )
    return Captioner(cfg).eval()


def test_vocabulary_expansion_appends_words_and_keeps_old_ids(tmp_path):
    from captioner.checkpoint import load_checkpoint, save_checkpoint

    vocab = Vocabulary(["<pad>", "<start>", "<end>", "<unk>", "a", "horse", "dog", "grass"])
    model = _tiny_captioner(len(vocab))
    g = torch.randn(2, 4, 130)
    before = caption_logprobs(model.decoder, g, [[4, 5, 7], [4, 6]])
    old_out = model.decoder.out.weight.clone()
    vocab2, added = expand_vocabulary(model, vocab, {"giraffe": "horse", "dog": "horse", "teddy bear": "dog"})
    assert added == {"giraffe": "horse", "teddy bear": "dog"}
    assert vocab2.words[: len(vocab)] == vocab.words
    assert vocab2.id_of("giraffe") == 8 and vocab2.id_of("teddy bear") == 9
    assert model.cfg.vocab_size == 10
    assert torch.equal(model.decoder.out.weight[:8], old_out)
    assert torch.equal(model.decoder.embed.weight[8], model.decoder.embed.weight[5])
    # The new word gets exactly the donor's logit, so the old words' relative odds are unchanged.
    logits, _, _ = model.decoder.step(torch.tensor([4, 4]), model.decoder.init_state(g))
    assert torch.allclose(logits[:, 8], logits[:, 5])
    after = caption_logprobs(model.decoder, g, [[4, 5, 7], [4, 6]])
    assert (after <= before + 1e-6).all()  # probability is shared with the new words, never gained
    mask = restricted_mask(vocab2, added)
    assert mask.nonzero().flatten().tolist() == [8, 9]
    # The expanded model saves and loads; its old vocabulary still loads into the old model too.
    path = save_checkpoint(tmp_path / "x.pt", model, vocab2, extra={"expanded_words": added})
    m2, v2, payload = load_checkpoint(path)
    assert v2.words == vocab2.words and payload["extra"]["expanded_words"] == added


def test_expansion_refuses_an_unknown_donor():
    vocab = Vocabulary(["<pad>", "<start>", "<end>", "<unk>", "a"])
    with pytest.raises(ExpansionError, match="donor"):
        expand_vocabulary(_tiny_captioner(len(vocab)), vocab, {"giraffe": "horse"})


def test_old_checkpoints_without_a_tagger_still_load(tmp_path):
    from captioner.checkpoint import load_checkpoint, save_checkpoint

    vocab = Vocabulary(["<pad>", "<start>", "<end>", "<unk>", "a"])
    model = _tiny_captioner(len(vocab))
    payload_path = save_checkpoint(tmp_path / "old.pt", model, vocab)
    raw = torch.load(payload_path, weights_only=True)
    raw["config"].pop("tagger_classes")  # as written before the tagger existed
    del raw["calibration"]
    torch.save(raw, payload_path)
    m, _, _ = load_checkpoint(payload_path)
    assert m.tagger is None and m.cfg.tagger_classes == 0


def test_the_article_agrees_with_the_word_after_it():
    from captioner.vocab import detokenize

    assert detokenize(["a", "man", "rides", "a", "elephant"]) == "A man rides an elephant."
    assert detokenize(["an", "dog", "and", "a", "umbrella", "and", "a", "unicycle"]) == (
        "A dog and an umbrella and a unicycle."
    )


def test_a_forced_caption_far_below_the_free_one_is_dropped_unless_the_tagger_insists():
    dec, g = make_decoder(seed=13), grids(2, seed=14)
    free = beam_search(dec, g, 3, 12)
    unsaid = [next(w for w in range(10, 30) if w not in free.tokens[b].tolist()) for b in range(2)]
    constraints = [[unsaid[0]], [unsaid[1]]]
    _, forced = guide(dec, g, free, constraints, beam_size=3, max_len=12, max_drop=0.0)
    assert forced == [False, False]  # a forced word never makes the sentence more likely here
    out, forced = guide(dec, g, free, constraints, beam_size=3, max_len=12, max_drop=0.0, insist=[True, False])
    assert forced == [True, False] and unsaid[0] in _words_before_end(out.tokens[0])


def test_borrowed_words_take_no_probability_from_captions_that_do_not_use_them():
    from captioner.vocab_expansion import RestrictedDecoder

    vocab = Vocabulary(["<pad>", "<start>", "<end>", "<unk>", "a", "horse", "dog", "grass"])
    model = _tiny_captioner(len(vocab))
    g = torch.randn(2, 4, 130)
    before = caption_logprobs(model.decoder, g, [[4, 5, 7], [4, 6]])
    vocab2, added = expand_vocabulary(model, vocab, {"zebra": "horse"})
    restricted = restricted_mask(vocab2, added)
    seqs = [[4, 5, 7], [4, 8]]  # the second caption says the borrowed word
    after = caption_logprobs(RestrictedDecoder.for_captions(model.decoder, restricted, seqs), g, seqs)
    assert torch.allclose(after[0], before[0], atol=1e-5)
    assert torch.isfinite(after[1, :3]).all()
    # Free decoding never says it, and the others' probabilities are as before the expansion.
    free = beam_search(model.decoder, g, 3, 8, banned=restricted)
    assert 8 not in free.tokens.tolist()
