"""Stanford CoreNLP 3.4.1's PTBTokenizer (the jar pycocoevalcap ships) with -lowerCase, then
pycocoevalcap's punctuation filter, in plain Python.

Checked against the jar on all 40k Flickr8k captions and ~300k generated strings (no differences); its
quirks are kept on purpose (e.g. "(" becomes "-lrb-" and survives the filter, which only lists the
upper-case "-LRB-").  The rules themselves are in training/ptb_rules.py.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from training.ptb_rules import NEWLINE_TOKEN, RULES, SPACE, skip

# Shortcuts for the common cases, each checked to be what the full rule set would do there: a run of
# spaces from a plain space (one from U+00A0 may start a "likely URL"); a plain word before a space (the
# rules that reach past a space need a period, digit or quote first; only the assimilations below split
# a plain word); lone punctuation (". . ." is an ellipsis, ",5" a number).
_SHORTCUT = re.compile(
    rf"(?P<space>[ \t]{SPACE}*)|(?P<newline>\n)|(?P<word>[A-Za-z]+)(?=[ \n]|\Z)"
    r"|(?P<punct>[,;:!?](?=[ \n]|\Z)|\.(?=\n|\Z| (?!\.)))"
)
_ASSIMILATIONS = {"cannot", "gonna", "gotta", "lemme", "gimme", "wanna"}

# pycocoevalcap's PUNCTUATIONS, compared after lower-casing (so "-lrb-" etc. are kept, as there).
_PUNCTUATION = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)
# Characters the lexer treats as line ends; pycocoevalcap only replaces "\n" inside a caption, so these
# would shift its captions against their images.  We turn them into spaces instead.
_LINE_BREAKS = re.compile("[\r\n\u2028\u2029\u000b\u000c\u0085]")


def _lex(text: str) -> list[str]:
    """PTBLexer tokens of `text` (not lower-cased, punctuation kept, "\\n" tokens at line ends)."""
    tokens: list[str] = []
    pos, end = 0, len(text)
    while pos < end:
        short = _SHORTCUT.match(text, pos)
        if short and (short.lastgroup != "word" or short.group().lower() not in _ASSIMILATIONS):
            if short.lastgroup != "space":
                tokens.append(short.group())
            pos = short.end()
            continue
        best_len, best_token, best_action = 0, "", skip
        for regex, action in RULES:
            m = regex.match(text, pos)
            if m and m.end() - pos > best_len:
                best_len, best_token, best_action = m.end() - pos, m.group(1), action
        if not best_len:  # untokenizable character: PTBLexer drops it (with a warning)
            pos += 1
            continue
        out = best_action(best_token)
        consumed = len(best_token)
        if isinstance(out, tuple):
            out, consumed = out
        if out is not None:
            tokens.append(out)
        pos += consumed
    return tokens


def ptb_tokenize_lines(texts: Sequence[str]) -> list[list[str]]:
    """Tokenise many captions as pycocoevalcap's PTBTokenizer does: one stream, one caption per line.

    The Java lexer looks past the end of a line for a few decisions (is "I." before "The" an initial or
    a sentence end?), so tokenising captions in the same order as pycocoevalcap reproduces it exactly.
    """
    if not texts:
        return []
    text = "\n".join(_LINE_BREAKS.sub(" ", t) for t in texts)
    result: list[list[str]] = []
    current: list[str] = []
    for token in [*_lex(text), NEWLINE_TOKEN]:
        if token != NEWLINE_TOKEN:
            current.append(token.lower())
            continue
        # pycocoevalcap: line.rstrip().split(' '), then drop punctuation
        line = " ".join(current).rstrip()
        result.append([w for w in line.split(" ") if w not in _PUNCTUATION] if line else [])
        current = []
    return result


def ptb_tokenize(text: str) -> list[str]:
    """'A dog 's ball (red) .' -> ['a', 'dog', "'s", 'ball', '-lrb-', 'red', '-rrb-'], like pycocoevalcap."""
    return ptb_tokenize_lines([text])[0]
