"""The rules of Stanford CoreNLP 3.4.1's PTBLexer (the jar pycocoevalcap ships), as Python regexes.

`RULES` lists (compiled regex, action) in the flex file's order: group 1 of a match is the token, the
whole match (token + trailing context) is what competes for the longest match; the action turns the
token into what the lexer emits: a token (str), None (nothing), or (token, chars consumed).
training/ptb_tokenizer.py runs them.
"""

from __future__ import annotations

import re

# The rules follow CoreNLP's PTBLexer.flex, adjusted wherever the 3.4.1 jar that pycocoevalcap ships
# behaves differently from the published versions of that file.  JFlex picks the longest match over all
# rules (trailing context included), ties going to the earlier rule; the tokenizer does the same by
# trying every rule at each position.  A Python regex alternation stops at the first alternative that
# matches, so alternatives that can match different lengths are listed as separate rules.  JFlex's
# %caseless makes literals caseless but not character classes, hence the "(?i:...)" around literals and
# "(?-i:A)" where the flex file used a one-letter class like "[A]".


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

SPACE = r"[ \t\u00a0\u2000-\u200a\u3000]"
_NEWLINE = r"(?:\r\n|[\r\n\u2028\u2029\u000b\u000c\u0085])"
_SPACENL = rf"(?:{SPACE}|{_NEWLINE})"
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

NEWLINE_TOKEN = "\n"


def _keep(text: str) -> str:
    return text


def skip(text: str) -> None:
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
    *[(abbrev, SPACE, _keep) for abbrev in (_ABBREV4_WORDS, *_ACROS)],
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
    (rf"{SPACE}+|[\u0000\u200b\u200e\u200f\ufeff]", None, skip),
    (_NEWLINE, None, lambda t: NEWLINE_TOKEN),
]
# Group 1 is the token; the whole match (token + trailing context) is what competes for "longest".
RULES = [
    (re.compile(f"({token})" if trail is None else f"({token})(?:{trail})"), action)
    for token, trail, action in _RULE_TABLE
]
