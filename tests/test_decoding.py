"""Decoding rules that must hold for any weights: batched = one at a time, <end> terminates,
beam search never scores below greedy, the length limit holds."""

import pytest
import torch

from captioner.decoding import beam_search, greedy, sample
from captioner.model import AttentionDecoder, CaptionerConfig, caption_loss
from captioner.vocab import END_ID, PAD_ID, START_ID, UNK_ID


def make_decoder(attention=True, seed=0, vocab=30):
    torch.manual_seed(seed)
    cfg = CaptionerConfig(
        vocab_size=vocab,
        encoder_channels=1280,
        feature_dim=24,
        embed_dim=16,
        hidden_dim=32,
        attention_dim=16,
        attention=attention,
        max_len=12,
    )
    dec = AttentionDecoder(cfg).eval()
    # Sharpen the output layer so decoding makes non-trivial choices (random init is near uniform).
    with torch.no_grad():
        dec.out.weight.mul_(8)
    return dec


def grids(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 49, 1280, generator=g)


@pytest.mark.parametrize(("attention", "n", "end_bias"), [(True, 6, 0.0), (False, 6, 0.0), (True, 24, 0.9)])
def test_batched_decoding_equals_one_image_at_a_time(attention, n, end_bias):
    # Beam search drops images whose hypotheses have all ended from the batch: results must not change.
    dec, g = make_decoder(attention), grids(n)
    with torch.no_grad():
        dec.out.bias[END_ID] += end_bias  # > 0: captions end at different steps
    for decode in (lambda x: greedy(dec, x, 12), lambda x: beam_search(dec, x, 3, 12)):
        batch = decode(g)
        if end_bias:
            assert len(set(batch.lengths.tolist())) > 2, "captions of several lengths, so images leave early"
        for i in range(n):
            single = decode(g[i : i + 1])
            k = int(single.lengths[0])
            assert int(batch.lengths[i]) == k
            assert torch.equal(batch.tokens[i, :k], single.tokens[0, :k])
            assert torch.allclose(batch.scores[i], single.scores[0], atol=1e-4)
            assert torch.allclose(batch.token_logprobs[i, :k], single.token_logprobs[0, :k], atol=1e-4)
            if attention:
                assert torch.allclose(batch.alphas[i, :k], single.alphas[0, :k], atol=1e-5)


@pytest.mark.parametrize("seed", range(5))
def test_beam_never_scores_below_greedy(seed):
    dec, g = make_decoder(seed=seed), grids(16, seed=seed + 10)
    gr = greedy(dec, g, 12)
    for k in (2, 3, 5):
        bs = beam_search(dec, g, k, 12)
        assert torch.all(bs.scores >= gr.scores - 1e-5), (k, bs.scores - gr.scores)


def _check_well_formed(out, max_len):
    T = out.tokens.shape[1]
    assert T <= max_len + 1
    for i in range(out.tokens.shape[0]):
        n = int(out.lengths[i])
        row = out.tokens[i].tolist()
        assert row[n - 1] == END_ID, "every caption ends with <end>"
        assert END_ID not in row[: n - 1]
        assert all(t == PAD_ID for t in row[n:]), "nothing but <pad> after <end>"
        assert not {START_ID, UNK_ID, PAD_ID} & set(row[: n - 1])
        assert torch.all(out.token_logprobs[i, n:] == 0)


def test_end_terminates_and_max_len_holds():
    dec, g = make_decoder(), grids(8)
    for max_len in (1, 3, 12):
        _check_well_formed(greedy(dec, g, max_len), max_len)
        _check_well_formed(beam_search(dec, g, 4, max_len), max_len)
        _check_well_formed(sample(dec, g, max_len), max_len)


def test_attention_weights_are_distributions_per_word():
    dec, g = make_decoder(), grids(4)
    out = beam_search(dec, g, 3, 12)
    assert out.alphas.shape[:2] == out.tokens.shape and out.alphas.shape[2] == 49
    for i in range(4):
        n = int(out.lengths[i])
        sums = out.alphas[i, :n].sum(-1)
        assert torch.allclose(sums, torch.ones(n), atol=1e-5)


def test_sampling_has_gradients_for_self_critical_training():
    dec = make_decoder()
    dec.train()
    out = sample(dec, grids(3), 8)
    out.token_logprobs.sum().backward()
    assert dec.out.weight.grad is not None and dec.out.weight.grad.abs().sum() > 0


def test_teacher_forcing_shares_image_projection_across_captions():
    dec = make_decoder()
    g = grids(2)
    caps = torch.tensor([[START_ID, 5, 6, 7, END_ID], [START_ID, 8, 9, END_ID, 0], [START_ID, 4, END_ID, 0, 0]])
    lengths = torch.tensor([5, 4, 3])
    owner = torch.tensor([1, 0, 1])
    logits, alphas = dec(g, caps, lengths, owner=owner)
    logits_rep, _ = dec(g[owner], caps, lengths)
    assert torch.allclose(logits, logits_rep, atol=1e-5)
    loss = caption_loss(logits, caps[:, 1:], alphas, lengths)
    assert torch.isfinite(loss)
