"""Caption metrics that agree with the COCO caption evaluation code (pycocoevalcap), in plain Python.

pycocoevalcap needs Java for its tokenizer and is too slow for a per-batch SCST reward, so this module
re-implements what it computes:

- `ptb_tokenize`: Stanford CoreNLP 3.4.1's PTBTokenizer (the jar pycocoevalcap ships) with -lowerCase,
  then pycocoevalcap's punctuation filter.  Checked against the jar on all 40k Flickr8k captions and
  ~300k generated strings (no differences); its quirks are kept on purpose (e.g. "(" becomes "-lrb-"
  and survives the filter, which only lists the upper-case "-LRB-").
- `bleu` (corpus BLEU-1..4, "closest" reference length), `rouge_l` (mean of per-image LCS F-scores,
  beta 1.2) and `cider_d` / `CiderD` (pycocoevalcap's `Cider`, which is CIDEr-D: clipped counts, a
  Gaussian length penalty, x10, log document frequencies over the evaluated references).  These take
  already tokenised, space-separated strings, exactly like pycocoevalcap's scorers.
- METEOR still runs pycocoevalcap's Java jar; `evaluate` skips it (with a note) when Java is missing.

`evaluate` tokenises both sides and returns all the scores; `format_table` prints them.
"""

from __future__ import annotations

import io
import math
import re
import shutil
import threading
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence

import numpy as np

# ======================================================================================================
# PTB tokenizer.  The rules follow CoreNLP's PTBLexer.flex, adjusted wherever the 3.4.1 jar that
# pycocoevalcap ships behaves differently from the published versions of that file.  JFlex picks the
# longest match over all rules (trailing context included), ties going to the earlier rule; `_lex` does
# the same by trying every rule at each position.  A Python regex alternation stops at the first
# alternative that matches, so alternatives that can match different lengths are listed as separate
# rules.  JFlex's %caseless makes literals caseless but not character classes, hence the "(?i:...)"
# around literals and "(?-i:A)" where the flex file used a one-letter class like "[A]".
# ======================================================================================================


def _char_class(pred) -> str:
    """A regex class of the BMP characters satisfying `pred` (JFlex 1.4 only sees UTF-16 units)."""
    ranges: list[tuple[int, int]] = []
    start = None
    for cp in range(0x10000):
        ok = not 0xD800 <= cp <= 0xDFFF and pred(chr(cp))
        if ok and start is None:
            start = cp
        elif not ok and start is not None:
            ranges.append((start, cp - 1))
            start = None
    if start is not None:
        ranges.append((start, 0xFFFF))
    parts = (re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    return "[" + "".join(parts) + "]"


# Java's Character.isLetter / isLetterOrDigit; Python's \w would also take "_" and "½".
_LETTER = _char_class(str.isalpha)
_ALNUM = _char_class(lambda c: c.isalpha() or c.isdecimal())

_SPACE = r"[ \t\u00a0\u2000-\u200a\u3000]"
_NEWLINE = r"(?:\r\n|[\r\n\u2028\u2029\u000b\u000c\u0085])"
_SPACENL = rf"(?:{_SPACE}|{_NEWLINE})"
_APOS = r"(?:['\u0092\u2019]|&apos;)"
_APOSETC = rf"(?:{_APOS}|[`\u0091\u2018\u201b])"  # also seen inside words, rightly or wrongly
_SGML = (
    r"<(?:[!?][A-Za-z\-][^>\r\n]*|[A-Za-z][A-Za-z0-9_:.\-]*(?: +(?:[A-Za-z][A-Za-z0-9_:.\-]*"
    r"(?: *= *(?:'[^'\n]*'|\"[^\"\n]*\"))?))* */?|/[A-Za-z][A-Za-z0-9_:.\-]*) *>"
)
_SENTEND = rf"{_SPACENL}(?:{_SPACENL}|[A-Z]|{_SGML})"
_NUM = r"(?:\d*(?:[.:,\u00ad\u066b\u066c]\d+)+|\d+)"
_NUMBER = rf"[\-+]?{_NUM}"
_WORD = rf"{_LETTER}(?:{_LETTER}|\d)*(?:[.!?]{_LETTER}(?:{_LETTER}|\d)*)*"
_ACROS = [  # ACRO
    r"[A-Za-z](?:\.[A-Za-z])*",
    r"(?i:canada|sino|korean|eu|japan|non)-(?i:U\.S)",
    r"(?i:U\.S\.-(?:U\.K|U\.S\.S\.R))",
]
_ACRO2 = rf"(?:[A-Za-z](?:\.[A-Za-z])+|{_ACROS[1]}|{_ACROS[2]})"
_HYPHEN = r"[\-_\u058a\u2010\u2011]"
_THING = rf"(?:[dDoOlL]{_APOSETC}{_ALNUM})?{_ALNUM}+(?:{_HYPHEN}(?:[dDoOlL]{_APOSETC}{_ALNUM})?{_ALNUM}+)*"
_HTHING = rf"[A-Za-z0-9][A-Za-z0-9.,\u00ad]*(?:-(?:{_ACRO2}\.|[A-Za-z0-9\u00ad]+))+"
_THINGA = r"[A-Z]+(?:(?:[+&]|&amp;)[A-Z]+)+"
_THING3 = r"[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}"
_REDAUX = rf"{_APOS}(?:[msdMSD]|(?i:re|ve|ll))"
_SWORD = r"[A-Za-z\u00ad]*[A-MO-Za-mo-z]\u00ad*"
_SREDAUX = rf"(?i:n){_APOSETC}(?i:t)"
_APOWORDS = [
    rf"{_APOS}(?i:n){_APOS}?",
    rf"[lLdDjJ]{_APOS}",
    rf"(?i:dunkin|somethin|ol){_APOS}",
    rf"{_APOS}(?i:em)",
    rf"[A-HJ-XZn]{_APOSETC}{_LETTER}{{2}}{_LETTER}*",
    rf"{_APOS}[2-9]0(?i:s)",
    rf"{_APOS}(?i:till?)",
    rf"{_LETTER}+[aeiouyAEIOUY]{_APOSETC}[aeiouA-Z]{_LETTER}*",
    rf"{_APOS}(?i:cause)",
    r"(?i:cont'd\.?)",
    r"(?i:nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l)",
    rf"(?i:o){_APOSETC}(?i:o)",
]
_FULLURL = r"(?i:https?|ftp)://[^ \t\n\f\r\"<>|()]+[^ \t\n\f\r\"<>|.!?(){},\-]"
_LIKELYURL = (  # ",-_" is a range in the flex file (it excludes digits and capitals), kept as such
    r"(?:(?i:www)\.(?:[^ \t\n\f\r\"<>|.!?(){},]+\.)+[a-zA-Z]{2,4}"
    r"|(?:[^ \t\n\f\r\"`'<>|.!?(){},-_$]+\.)+(?i:com|net|org|edu))"
    r"(?:/[^ \t\n\f\r\"<>|()]+[^ \t\n\f\r\"<>|.!?(){},\-])?"
)
_EMAIL = (
    r"(?:&lt;|<)?[a-zA-Z0-9][^ \t\n\f\r\"<>|(){}\u00a0]*@(?:[^ \t\n\f\r\"<>|(){}.\u00a0]+\.)*"
    r"[^ \t\n\f\r\"<>|(){}.\u00a0]+(?:&gt;|>)?"
)
_TWITTER = rf"@[a-zA-Z_][a-zA-Z_0-9]*|#{_LETTER}+"
_FILENAME = (
    rf"{_ALNUM}+(?:\.{_ALNUM}+)*\.(?i:bat|bmp|c|class|cgi|cpp|dll|doc|docx|exe|gif|gz|h|htm|html|jar|java"
    r"|jpeg|jpg|mov|mp3|pdf|php|pl|png|ppt|ps|py|sql|tar|txt|wav|x|xml|zip)"
)
_DATE = r"\d{1,2}[\-/]\d{1,2}[\-/]\d{2,4}"
_FRAC = r"(?:\d{1,4}[\- \u00a0])?\d{1,4}(?:\\?/|\u2044)\d{1,4}"
_FRAC2 = r"[\u00bc\u00bd\u00be\u2153-\u215e]"
_DOLSIGN = r"(?:[A-Z]*\$|#)"
_DOLSIGN2 = r"[\u00a2\u00a3\u00a4\u00a5\u0080\u20a0\u20ac\u060b\u0e3f\u20a4\uffe0\uffe1\uffe5\uffe6]"
_PHONES = [
    r"(?:\(\d{2,3}\)[ \u00a0]?|(?:\+\+?)?(?:\d{2,4}[\- \u00a0])?\d{2,4}[\- \u00a0])"
    r"\d{3,4}[\- \u00a0]?\d{3,5}",
    r"(?:(?:\+\+?)?\d{2,4}\.)?\d{2,4}\.\d{3,4}\.\d{3,5}",
]
_INSENTP = r"[,;:]"
_QUOTES = (
    r"(?:''|[`\u2018\u2019\u201a\u201b\u201c\u201d\u0091\u0092\u0093\u0094\u201e\u201f"
    rf"\u2039\u203a\u00ab\u00bb]{{1,2}}|{_APOS})"
)
_DBLQUOT = r"(?:\"|&quot;)"
_TBSPEC = (
    r"(?:-(?i:RRB|LRB|RCB|LCB|RSB|LSB)-"
    rf"|(?i:C\.D\.s|pro-|anti-|S(?:&|&amp;)P-500|S(?:&|&amp;)Ls|Cap{_APOS}n|c{_APOS}est))"
)
_LDOTS = r"(?:\.{3,5}|(?:\.[ \u00a0]){2,4}\.|[\u0085\u2026])"
_SMILEY = r"[<>]?[:;=][\-o*']?[()DPdpO\\{@|\[\]]"
_ASIANSMILEY = r"[\-^x=~<>']_[\-^x=~<>']|\([\-^x=~<>'][_.]?[\-^x=~<>']\)|\([\^x=~<>']-[\^x=~<>'`]\)"
_ABSTATE = (
    r"Ala|Ariz|(?-i:A)z|(?-i:A)rk|Calif|Colo|Conn|Ct|Dak|(?-i:D)el|Fla|Ga|(?-i:I)ll|Ind|Kans?|Ky|(?-i:L)a"
    r"|(?-i:M)ass|Md|Mich|Minn|(?-i:M)iss|Mo|Mont|Neb|Nev|Okla|(?-i:O)re|(?-i:P)a|Penn|Tenn|(?-i:T)ex|Va|Vt"
    r"|(?-i:W)ash|Wisc?|Wyo"
)
# Usually followed by lower-case words; before a capital the period is also a sentence end.
_ABBREV1 = (
    r"(?i:(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|Mon|Tue|Tues|Wed|Thu|Thurs|Fri"
    rf"|{_ABSTATE}|Inc|Cos?|Corp|Pp?t[ye]s?|Ltd|Plc|Rt|Bancorp|Bhd|Assn|Univ|Intl|Sys|tel|est|ext|sq"
    r"|Jr|Sr|Bros|(?:Ed|Ph)\.D|Blvd|Rd|Esq|etc|al|seq|Bldg)\.)"
)
# Usually followed by a capitalised name (titles), so never taken as a sentence end.
_ABBREV4_WORDS = (
    r"(?i:Mr|Mrs|Ms|(?-i:M)iss|Drs?|Profs?|Sens?|Reps?|Attys?|Lt|Col|Gen|Messrs|Govs?|Adm|Rev|Maj|Sgt|Cpl"
    r"|Pvt|Capt|Ste?|Ave|Pres|Lieut|Rt|Hon|Brig|Co?mdr|Pfc|Spc|Supts?|Det|Mt|Ft|Adj|Adv|Asst|Assoc|Ens"
    r"|Insp|Mlle|Mme|Msgr|Sfc|Sr|vs|(?-i:v)|Alex|Wm|Jos|Cie|a\.k\.a|cf|TREAS|Ph|Invt|Elec|Natl|M[ft]g"
    r"|Dept|Blvd|Rd|Ave)"
)
_ABBREV3 = r"(?i:(?:ca|figs?|prop|nos?|art|bldg|pp|op)\.)"  # only before a number
_ACRONYM_FOLLOW = (  # words that start a sentence after an acronym's period (case-sensitive capitals)
    r"(?-i:A)bout|(?-i:A)ccording|(?-i:A)dditionally|(?-i:A)fter|(?-i:A)n|(?-i:A)|(?-i:A)s|(?-i:A)t|(?-i:B)ut"
    r"|(?-i:E)arlier|(?-i:H)e|(?-i:H)er|(?-i:H)ere|(?-i:H)owever|(?-i:I)f|(?-i:I)n|(?-i:I)t|(?-i:L)ast"
    r"|(?-i:M)any|(?-i:M)ore|(?-i:M)r\.|(?-i:M)s\.|(?-i:N)ow|(?-i:O)nce|(?-i:O)ne|(?-i:O)ther|(?-i:O)ur"
    r"|(?-i:S)he|(?-i:S)ince|(?-i:S)o|(?-i:S)ome|(?-i:S)uch|(?-i:T)hat|(?-i:T)he|(?-i:T)hen|(?-i:T)here"
    r"|(?-i:T)hese|(?-i:T)hey|(?-i:T)his|(?-i:W)e|(?-i:W)hen|(?-i:W)hile|(?-i:W)hat|(?-i:Y)et|(?-i:Y)ou"
)
_MISCSYMBOL = (
    r"[|\\\u00a6\u00a7\u00a8\u00a9\u00ac\u00ae\u00af\u00b0-\u00b3\u00b4-\u00ba\u00d7\u00f7\u0387\u05be\u05c0"
    r"\u05c3\u05c6\u05f3\u05f4\u0600-\u0603\u0606-\u060a\u060c\u0614\u061b\u061e\u066a\u066d\u0703-\u070d"
    r"\u07f6\u07f7\u07f8\u0964\u0965\u0e4f\u2020-\u2023\u2032-\u2038\u2044\u207a-\u207f\u208a-\u208e"
    r"\u2100-\u214f\u2190-\u21ff\u2200-\u22ff\u2300-\u23ff\u2600-\u26ff\u3012\u30fb\uff01-\uff0f"
    r"\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]"
)

# --- what a matched rule emits: a token (str), None (nothing), or (token, chars consumed) -------------

_NEWLINE_TOKEN = "\n"


def _keep(text: str) -> str:
    return text


def _skip(text: str) -> None:
    return None


def _no_soft_hyphens(text: str) -> str:
    return text.replace("\u00ad", "")


def _nbsp(text: str) -> str:
    # normalizeSpace: a token never contains a plain space
    return text.replace(" ", "\u00a0")


def _parens(text: str) -> str:
    return text.replace("(", "-LRB-").replace(")", "-RRB-")


def _phone(text: str) -> str:
    return _parens(_nbsp(text))


def _amp(text: str) -> str:
    return text.replace("&amp;", "&")


def _latex_quotes(text: str, left: bool) -> str:
    """Straight quotes become `` ` (opening) or '' ' (closing); curly ones by their direction."""
    if left:
        text = re.sub(r"&apos;|'", "`", text)
        text = re.sub(r"\"|&quot;", "``", text)
    else:
        text = re.sub(r"&apos;|'", "'", text)
        text = re.sub(r"\"|&quot;", "''", text)
    text = re.sub("[\u0091\u2018\u201b\u2039]", "`", text)
    text = re.sub("[\u0092\u2019\u203a]", "'", text)
    text = re.sub("[\u0093\u201c\u00ab]", "``", text)
    return re.sub("[\u0094\u201d\u00bb]", "''", text)


def _left_quote(text: str) -> str:
    return _latex_quotes(text, left=True)


def _right_quote(text: str) -> str:
    return _latex_quotes(text, left=False)


def _give_back(n: int):
    """Emit all but the last n characters, which are lexed again ("cannot" -> "can" "not")."""
    return lambda text: (text[:-n], len(text) - n)


def _period_twice(text: str) -> tuple[str, int]:
    # an abbreviation ending a sentence keeps its period and the period is lexed again as "."
    return text, len(text) - 1


def _acronym_then_sentence(text: str) -> tuple[str, int]:
    # "I." before "The": a one-letter acronym loses its period; longer ones keep it (and repeat it)
    return (text[:-1], 1) if len(text) == 2 else (text, len(text) - 1)


_FRACTIONS = {"\u00bc": "1/4", "\u00bd": "1/2", "\u00be": "3/4", "\u2153": "1/3"}
_CURRENCY = {"\u00a2": "cents", "\u00a3": "#", "\u0080": "$", "\u00a4": "$", "\u20a0": "$", "\u20ac": "$"}
_BRACKETS = {"(": "-LRB-", ")": "-RRB-", "[": "-LSB-", "]": "-RSB-", "{": "-LCB-", "}": "-RCB-"}
_ENTITIES = {"&lt;": "<", "&gt;": ">"}

# (token regex, trailing-context regex or None, action), in the flex file's order.
_RULE_TABLE = [
    (r"(?i:c\+\+|[cf]#)", None, _keep),
    (r"(?i:cannot|'twas)", None, _give_back(3)),
    (r"(?i:'tis|gonna|gotta|lemme|gimme|wanna)", None, _give_back(2)),
    (_SGML, None, _nbsp),
    (r"&(?:MD|mdash|ndash);|[\u0096\u0097\u2013\u2014\u2015]", None, lambda t: "--"),
    (r"&amp;", None, lambda t: "&"),
    (r"&(?:HT|TL|UR|LR|QC|QL|QR|odq|cdq|#[0-9]+);", None, _keep),
    (_WORD, _REDAUX, _no_soft_hyphens),
    (_SWORD, _SREDAUX, _no_soft_hyphens),
    (_WORD, None, _no_soft_hyphens),
    *[(apoword, None, _keep) for apoword in _APOWORDS],
    (rf"[yY]{_APOS}", _LETTER, _keep),
    (_FULLURL, None, _keep),
    (_LIKELYURL, None, _keep),
    (_EMAIL, None, _keep),
    (_TWITTER, None, _keep),
    (_REDAUX, r"[^A-Za-z]", _right_quote),
    (_SREDAUX, None, _right_quote),
    (_DATE, None, _keep),
    (_NUMBER, None, _no_soft_hyphens),
    (_FRAC, None, _nbsp),
    (_FRAC2, None, lambda t: _FRACTIONS.get(t, t)),
    (_TBSPEC, None, _amp),
    (_THING3, None, _keep),
    (_DOLSIGN, None, _keep),
    (_DOLSIGN2, None, lambda t: _CURRENCY.get(t, t)),
    *[
        (rf"{acro}\.", rf"{_SPACENL}+(?:{_ACRONYM_FOLLOW})(?:{_SPACENL}|[?!])", _acronym_then_sentence)
        for acro in _ACROS
    ],
    (_ABBREV3, rf"{_SPACENL}?\d", _keep),
    (_ABBREV1, _SENTEND, _period_twice),
    (_ABBREV1, r"[\s\S]{2}", _keep),
    (_ABBREV1, None, _period_twice),
    *[(rf"{abbrev}\.", None, _keep) for abbrev in (_ABBREV4_WORDS, *_ACROS)],
    *[(abbrev, _SPACE, _keep) for abbrev in (_ABBREV4_WORDS, *_ACROS)],
    *[(acro, _SPACENL, _keep) for acro in _ACROS],
    (_FILENAME, rf"{_SPACENL}|[.?!,]", _keep),
    (rf"{_APOS}\d\d", _SPACENL, _keep),
    (rf"{_WORD}\.", _INSENTP, _no_soft_hyphens),
    *[(phone, None, _phone) for phone in _PHONES],
    (_DBLQUOT, r"[A-Za-z0-9$]", _left_quote),
    (_DBLQUOT, None, _right_quote),
    (r"[+%&~^]", None, _keep),
    (r"<<|>>", None, _keep),
    (r"[<>]|&lt;|&gt;", None, lambda t: _ENTITIES.get(t, t)),
    (_SMILEY, r"[^A-Za-z0-9]", _parens),
    (_ASIANSMILEY, None, _parens),
    (r"[()\[\]{}]", None, lambda t: _BRACKETS[t]),
    (r"-+", None, lambda t: "--" if 3 <= len(t) <= 4 else t),
    (_LDOTS, None, lambda t: "..."),
    (r"@+|#+|_+", None, _keep),
    (r"\*+|(?:\\\*){1,3}", None, _keep),
    (_INSENTP, None, _keep),
    (r"[?!]+", None, _keep),
    (r"[.\u00a1\u00bf\u037e\u0589\u061f\u06d4\u0700-\u0702\u07fa]", None, _keep),
    (r"=", None, _keep),
    (r"/", None, _keep),
    (rf"{_HTHING}\.", _INSENTP, _no_soft_hyphens),
    (_HTHING, None, _no_soft_hyphens),
    (rf"{_THING}\.", _INSENTP, _keep),
    (_THING, None, _keep),
    (rf"{_THINGA}\.", _INSENTP, _amp),
    (_THINGA, None, _amp),
    (r"'", r"[A-Za-z][^ \t\n\r\u00a0]", _left_quote),
    (_REDAUX, None, _right_quote),
    (_QUOTES, None, _right_quote),
    (_MISCSYMBOL, None, _keep),
    (rf"{_SPACE}+|[\u0000\u200b\u200e\u200f\ufeff]", None, _skip),
    (_NEWLINE, None, lambda t: _NEWLINE_TOKEN),
]
# Group 1 is the token; the whole match (token + trailing context) is what competes for "longest".
_RULES = [
    (re.compile(f"({token})" if trail is None else f"({token})(?:{trail})"), action)
    for token, trail, action in _RULE_TABLE
]
# Shortcuts for the common cases, each checked to be what the full rule set would do there: a run of
# spaces from a plain space (one from U+00A0 may start a "likely URL"); a plain word before a space (the
# rules that reach past a space need a period, digit or quote first; only the assimilations below split
# a plain word); lone punctuation (". . ." is an ellipsis, ",5" a number).
_SHORTCUT = re.compile(
    rf"(?P<space>[ \t]{_SPACE}*)|(?P<newline>\n)|(?P<word>[A-Za-z]+)(?=[ \n]|\Z)"
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
        best_len, best_token, best_action = 0, "", _skip
        for regex, action in _RULES:
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
    for token in [*_lex(text), _NEWLINE_TOKEN]:
        if token != _NEWLINE_TOKEN:
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


# ======================================================================================================
# BLEU, ROUGE-L, CIDEr-D.  Inputs are tokenised captions joined by single spaces, as pycocoevalcap's
# scorers take them; each metric splits them the way its pycocoevalcap counterpart does.
# ======================================================================================================

_BLEU_TINY = 1e-15  # pycocoevalcap's constants: a zero count gives a near-zero score, not a 0/0
_BLEU_SMALL = 1e-9


def _order_counts(words: Sequence[str], n: int) -> list[Counter]:
    """Counts of the k-grams (as tuples) of `words`, one Counter per k = 1..n."""
    # zip of shifted copies stops at the shortest: exactly the len - k + 1 windows
    return [Counter(zip(*(words[i:] for i in range(k)), strict=False)) for k in range(1, n + 1)]


def _ngram_counts(words: Sequence[str], n: int) -> Counter:
    """Counts of all 1..n-grams of `words` in one Counter (k-grams are k-tuples, so they cannot clash)."""
    counts: Counter = Counter()
    for order in _order_counts(words, n):
        counts.update(order)
    return counts


def bleu(candidates: Sequence[str], references: Sequence[Sequence[str]], n: int = 4) -> list[float]:
    """Corpus BLEU-1..n, as pycocoevalcap's Bleu: clipped n-gram counts and lengths summed over the
    corpus, the reference length per image being the one closest to the candidate's (ties: shorter)."""
    guess, correct = [0] * n, [0] * n
    cand_total = ref_total = 0
    for cand, refs in zip(candidates, references, strict=True):
        words = cand.split()
        max_ref: dict[tuple, int] = {}
        ref_lens = []
        for ref in refs:
            ref_words = ref.split()
            ref_lens.append(len(ref_words))
            for gram, count in _ngram_counts(ref_words, n).items():
                max_ref[gram] = max(max_ref.get(gram, 0), count)
        cand_total += len(words)
        ref_total += min(ref_lens, key=lambda length: (abs(length - len(words)), length))
        for k in range(n):
            guess[k] += max(0, len(words) - k)
        for gram, count in _ngram_counts(words, n).items():
            correct[len(gram) - 1] += min(count, max_ref.get(gram, 0))
    scores, product = [], 1.0
    for k in range(n):
        product *= (correct[k] + _BLEU_TINY) / (guess[k] + _BLEU_SMALL)
        scores.append(product ** (1.0 / (k + 1)))
    ratio = (cand_total + _BLEU_TINY) / (ref_total + _BLEU_SMALL)
    if ratio < 1:  # brevity penalty
        scores = [s * math.exp(1 - 1 / ratio) for s in scores]
    return scores


def lcs_length(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Length of the longest common subsequence, bit-parallel (Hyyrö 2004): one big-int step per a[i]."""
    masks: dict[Hashable, int] = {}
    for i, token in enumerate(b):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(b)) - 1
    v = full
    for token in a:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return len(b) - v.bit_count()


def rouge_l_scores(candidates: Sequence[str], references: Sequence[Sequence[str]], beta: float = 1.2) -> list[float]:
    """Per-image ROUGE-L as pycocoevalcap's Rouge: the best precision and the best recall over the
    references (taken separately), combined into an F-score weighting recall by beta."""
    scores = []
    for cand, refs in zip(candidates, references, strict=True):
        cand_words = cand.split(" ")  # split(" "), as there: an empty caption is one empty token
        precision = recall = 0.0
        for ref in refs:
            ref_words = ref.split(" ")
            lcs = lcs_length(ref_words, cand_words)
            precision = max(precision, lcs / len(cand_words))
            recall = max(recall, lcs / len(ref_words))
        if precision and recall:
            scores.append((1 + beta**2) * precision * recall / (recall + beta**2 * precision))
        else:
            scores.append(0.0)
    return scores


def rouge_l(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus ROUGE-L: the mean of the per-image scores."""
    return float(np.mean(rouge_l_scores(candidates, references)))


class CiderD:
    """CIDEr-D with document frequencies precomputed once from a reference corpus.

    `CiderD(refs_corpus).score_keys(candidates, keys)` scores each candidate against the references
    stored under its key, which is what an SCST reward needs: the reference vectors are built once.
    Built from the very references being evaluated it gives pycocoevalcap's per-image CIDEr scores.

    Formula (pycocoevalcap's CiderScorer, which is CIDEr-D): n-gram vectors weighted by tf * (log N -
    log df), N = number of images (keys) and df = images whose references contain the n-gram; for each
    n, the candidate's weights are clipped by the reference's, the cosine is multiplied by
    exp(-delta^2 / (2 sigma^2)); the mean over n and over references, times 10.  Delta is the
    difference in bigram counts (pycocoevalcap's "length"), the same as in words for non-empty captions.

    With `tokenize` (the default) references and string candidates go through `ptb_tokenize`, as in
    `evaluate`; with tokenize=False they must be tokenised, space-separated strings.  A candidate can
    also be given as a list of tokens, used as is.
    """

    def __init__(
        self,
        refs_corpus: Mapping[Hashable, Sequence[str]],
        *,
        n: int = 4,
        sigma: float = 6.0,
        tokenize: bool = True,
    ) -> None:
        if not refs_corpus:
            raise ValueError("CiderD needs at least one image's references")
        empty = [key for key, refs in refs_corpus.items() if not refs][:5]
        if empty:
            raise ValueError(f"no references for {empty}")
        self.n, self.sigma, self.tokenize = n, sigma, tokenize
        keys = list(refs_corpus)
        texts = [ref for key in keys for ref in refs_corpus[key]]
        if tokenize:
            texts = [" ".join(words) for words in ptb_tokenize_lines(texts)]
        split = [t.split() for t in texts]  # str.split, as pycocoevalcap (it also splits at U+00A0)
        counts_by_key: dict[Hashable, list[list[Counter]]] = {}
        at = 0
        for key in keys:
            size = len(refs_corpus[key])
            counts_by_key[key] = [_order_counts(words, n) for words in split[at : at + size]]
            at += size
        doc_freq: Counter = Counter()
        for ref_counts in counts_by_key.values():
            doc_freq.update({gram for counts in ref_counts for order in counts for gram in order})
        self._log_n = math.log(len(keys))
        # idf per n-gram seen in the corpus; an unseen one counts as df = 1, i.e. idf = log N
        self._idf = {gram: self._log_n - math.log(max(1.0, df)) for gram, df in doc_freq.items()}
        self._refs = {key: [self._vector(c) for c in ref_counts] for key, ref_counts in counts_by_key.items()}

    def _vector(self, counts: list[Counter]) -> tuple[list[dict[tuple, float]], list[float], int]:
        """-> (tf-idf weight per n-gram, one dict per order; norm per order; bigram count)."""
        idf, log_n = self._idf, self._log_n
        weights = [{gram: tf * idf.get(gram, log_n) for gram, tf in order.items()} for order in counts]
        norms = [math.sqrt(sum(w * w for w in order.values())) for order in weights]
        bigrams = sum(counts[1].values()) if self.n > 1 else 0  # pycocoevalcap's caption "length"
        return weights, norms, bigrams

    def _candidate_vector(self, candidate: str | Sequence[str]):
        if isinstance(candidate, str):
            words = (" ".join(ptb_tokenize(candidate)) if self.tokenize else candidate).split()
        else:
            words = candidate
        return self._vector(_order_counts(words, self.n))

    def _score(self, vector, refs: list) -> float:
        weights, norms, length = vector
        total = 0.0
        for ref_weights, ref_norms, ref_length in refs:
            penalty = math.exp(-((length - ref_length) ** 2) / (2 * self.sigma**2))
            for cand_k, ref_k, norm, ref_norm in zip(weights, ref_weights, norms, ref_norms, strict=True):
                sim = 0.0
                for gram, w in cand_k.items():
                    ref_w = ref_k.get(gram)
                    if ref_w is not None:
                        # clipping: no credit for repeating an n-gram more often than the reference
                        sim += (w if w < ref_w else ref_w) * ref_w
                if norm and ref_norm:
                    sim /= norm * ref_norm
                total += sim * penalty
        return 10.0 * total / self.n / len(refs)

    def score_keys(self, candidates: Sequence[str | Sequence[str]], keys: Sequence[Hashable]) -> np.ndarray:
        """CIDEr-D of each candidate against the references stored under its key."""
        if len(candidates) != len(keys):
            raise ValueError(f"{len(candidates)} candidates but {len(keys)} keys")
        vectors: dict = {}  # sampled captions repeat; tokenise and weight each distinct one once
        out = np.empty(len(candidates), dtype=np.float64)
        for i, (cand, key) in enumerate(zip(candidates, keys, strict=True)):
            cache_key = cand if isinstance(cand, str) else tuple(cand)
            if cache_key not in vectors:
                vectors[cache_key] = self._candidate_vector(cand)
            out[i] = self._score(vectors[cache_key], self._refs[key])
        return out

    def score(self, candidates: Sequence[str | Sequence[str]], refs: Sequence[Sequence[str]]) -> np.ndarray:
        """CIDEr-D of each candidate against the given references (document frequencies still from
        the construction corpus)."""
        if len(candidates) != len(refs):
            raise ValueError(f"{len(candidates)} candidates but {len(refs)} reference lists")
        out = np.empty(len(candidates), dtype=np.float64)
        for i, (cand, ref_texts) in enumerate(zip(candidates, refs, strict=True)):
            ref_vectors = [self._candidate_vector(ref) for ref in ref_texts]
            out[i] = self._score(self._candidate_vector(cand), ref_vectors)
        return out


def cider_d_scores(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """Per-image CIDEr-D with document frequencies from `references`, as pycocoevalcap's Cider."""
    scorer = CiderD(dict(enumerate(references)), tokenize=False)
    return scorer.score_keys(candidates, range(len(references)))


def cider_d(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus CIDEr-D: the mean of the per-image scores."""
    return float(np.mean(cider_d_scores(candidates, references)))


# ======================================================================================================
# METEOR: pycocoevalcap's jar, fed exactly as its compute_score does, and always shut down afterwards.
# ======================================================================================================


def java_available() -> bool:
    return shutil.which("java") is not None


def _close_meteor(scorer, worker: threading.Thread) -> None:
    """End the jar now rather than in Meteor.__del__ (at some later garbage collection), which blocks
    forever on the scorer's lock if compute_score died half-way: it only releases it on success."""
    proc = getattr(scorer, "meteor_p", None)
    if proc is not None:
        proc.kill()  # first: a pipe cannot be closed while the worker is blocked on it
        proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            try:
                pipe.close()
            except OSError:  # unflushed input to a dead process
                pass
    worker.join(5)
    lock = getattr(scorer, "lock", None)
    if lock is not None and lock.locked():
        lock.release()


def meteor_score(candidates: Sequence[str], references: Sequence[Sequence[str]], *, timeout: float = 600.0) -> float:
    """Corpus METEOR 1.5 from pycocoevalcap's jar (needs `java`).  Raises TimeoutError if the jar has not
    answered within `timeout` seconds; the subprocess is ended in every case."""
    from pycocoevalcap.meteor.meteor import Meteor

    gts = {i: list(refs) for i, refs in enumerate(references)}
    res = {i: [cand] for i, cand in enumerate(candidates)}
    scorer = Meteor()
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["score"] = scorer.compute_score(gts, res)[0]
        except BaseException as exc:  # reported to the caller below
            outcome["error"] = exc

    # compute_score blocks on the jar's stdout; a watchdog thread lets us give up and kill the jar.
    worker = threading.Thread(target=run, name="meteor", daemon=True)
    try:
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            raise TimeoutError(f"METEOR gave no answer within {timeout:.0f} s")
    finally:
        _close_meteor(scorer, worker)
    if "error" in outcome:
        raise RuntimeError(f"METEOR failed: {outcome['error']!r}") from outcome["error"]
    return float(outcome["score"])


# ======================================================================================================
# Everything together.
# ======================================================================================================


def evaluate(
    candidates: Mapping[Hashable, str],
    references: Mapping[Hashable, Sequence[str]],
    *,
    meteor: bool = True,
) -> dict:
    """BLEU-1..4, ROUGE-L, CIDEr-D and METEOR of one caption per image against its references, with PTB
    tokenisation on both sides: the numbers pycocoevalcap's COCOEvalCap reports, without SPICE.

    -> {"BLEU-1": float, ..., "BLEU-4", "ROUGE-L", "CIDEr-D", "METEOR": float | None, "notes": [str]}.
    A plain dict (JSON, checkpoints); METEOR is None when not asked for or when Java is missing, and
    "notes" says which.
    """
    keys = list(references)
    if not keys:
        raise ValueError("no images to evaluate")
    if set(candidates) != set(keys):
        missing = [k for k in keys if k not in candidates][:5]
        extra = [k for k in candidates if k not in references][:5]
        raise ValueError(f"candidates and references differ: no candidate for {missing}, no references for {extra}")
    empty = [k for k in keys if not references[k]][:5]
    if empty:
        raise ValueError(f"images without references: {empty}")

    # Tokenise each side as one stream in its own order, as pycocoevalcap does.
    flat_refs = ptb_tokenize_lines([ref for k in keys for ref in references[k]])
    cand_keys = list(candidates)
    cand_words = ptb_tokenize_lines([candidates[k] for k in cand_keys])
    cand_text = {k: " ".join(words) for k, words in zip(cand_keys, cand_words, strict=True)}
    cands, refs, at = [], [], 0
    for k in keys:
        size = len(references[k])
        refs.append([" ".join(words) for words in flat_refs[at : at + size]])
        cands.append(cand_text[k])
        at += size

    scores: dict = {f"BLEU-{n}": value for n, value in enumerate(bleu(cands, refs), 1)}
    scores["ROUGE-L"] = rouge_l(cands, refs)
    scores["CIDEr-D"] = cider_d(cands, refs)
    scores["METEOR"] = None
    notes: list[str] = []
    if not meteor:
        notes.append("METEOR skipped: not requested")
    elif not java_available():
        notes.append("METEOR skipped: Java not found")
    else:
        try:
            scores["METEOR"] = meteor_score(cands, refs)
        except (RuntimeError, TimeoutError, OSError) as exc:
            notes.append(f"METEOR skipped: {exc}")
    scores["notes"] = notes
    return scores


def format_table(metrics: Mapping[str, object], title: str = "Caption metrics") -> str:
    """`metrics` (as from `evaluate`, perhaps with context such as the split added) as a table, scores
    to 4 decimals, then its notes."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        if name == "notes":
            continue
        if value is None:
            table.add_row(name, "skipped")
        elif isinstance(value, float):
            table.add_row(name, f"{value:.4f}")
        elif isinstance(value, str | int):
            table.add_row(name, str(value))
    console = Console(file=io.StringIO(), width=72, color_system=None)
    console.print(table)
    for note in metrics.get("notes") or []:
        console.print(note)
    return console.file.getvalue()
