"""Search terms from what a person typed, for substring search that needs no word segmentation
(Chinese has no spaces): the words of a search box (all must match), the terms of free text that
suggestions match any of, and LIKE patterns."""

from __future__ import annotations

import re
import unicodedata

MAX_TERMS = 8
MAX_TERM_CHARS = 64
MAX_QUERY_CHARS = 200
TRIGRAM = 3
"""FTS5's trigram tokenizer and pg_trgm index three characters: shorter terms need a LIKE scan."""

# Whitespace and the punctuation people put between words, ASCII and full-width.
_SPLIT = re.compile(r"[\s,.;:!?，。；：！？、()（）\[\]【】{}\"'“”‘’<>《》/\\|*=+~`^$#@&%-]+")


def _is_cjk(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in "WF" and ch.isalnum()


def normalize(text: str) -> str:
    """What both the stored search text and the query go through: NFKC (full-width letters and
    digits become ASCII) and case folding."""
    return unicodedata.normalize("NFKC", text).casefold()


def search_terms(query: str, *, max_terms: int = MAX_TERMS) -> list[str]:
    """The words of a search query, normalised, duplicates dropped, at most `max_terms`."""
    words = _SPLIT.split(normalize(query[:MAX_QUERY_CHARS]))
    out = dict.fromkeys(w[:MAX_TERM_CHARS] for w in words if w)
    return list(out)[:max_terms]


def free_text_terms(text: str, *, max_terms: int = 24) -> list[str]:
    """Terms of free text (an incident summary) for an any-of match: words as they are, and runs
    of Chinese cut into overlapping three- then two-character pieces, so 打印机经常卡纸 still finds
    an article about 打印机 and 卡纸. Single Latin letters are dropped."""
    grams: dict[str, None] = {}
    pairs: dict[str, None] = {}
    for word in search_terms(text):
        if len(word) > TRIGRAM and all(_is_cjk(ch) for ch in word):
            for i in range(len(word) - TRIGRAM + 1):
                grams.setdefault(word[i : i + TRIGRAM])
            for i in range(len(word) - 1):
                pairs.setdefault(word[i : i + 2])
        elif len(word) >= 2 or _is_cjk(word):
            grams.setdefault(word)
    return [*grams, *(p for p in pairs if p not in grams)][:max_terms]


def like_pattern(term: str) -> str:
    """`%term%` with LIKE's wildcards escaped (use with ESCAPE '\\')."""
    return "%" + re.sub(r"([\\%_])", r"\\\1", term) + "%"


def fts_phrase(term: str) -> str:
    """`term` as an FTS5 string (a phrase), so its characters are never read as query syntax."""
    return '"' + term.replace('"', '""') + '"'
