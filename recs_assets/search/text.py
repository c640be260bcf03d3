"""How text becomes search terms: one analyzer for the catalogue and for queries, so both agree.

Lower-case, split on anything that is not a letter or a digit, drop a few English function words,
and strip plurals ("dresses" -> "dress", "accessories" -> "accessory", "jeans" -> "jean"), because
shoppers type a category as a plural while titles name one item ("Atelier Nord dress, black").
A light plural stemmer rather than Porter's: it never merges unrelated words ("universal" and
"university" stay apart) and the catalogue's brands stay recognisable.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
STOPWORDS = frozenset({"a", "an", "and", "the", "of", "for", "in", "on", "with", "to", "by"})
# Words whose final s is not a plural (kept whole).
_SINGULAR_S = ("ss", "us", "is", "ous")


def stem(word: str) -> str:
    """Strip an English plural ending (a light S-stemmer); short words are left alone."""
    if len(word) <= 3 or not word.endswith("s") or word.endswith(_SINGULAR_S):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes", "zzes")):
        return word[:-2]
    return word[:-1]


def analyze(text: str | None) -> list[str]:
    """The search terms of a text, in order (repeats kept); None or blank gives []."""
    if not text:
        return []
    return [stem(token) for token in _TOKEN.findall(text.lower()) if token not in STOPWORDS]


def query_terms(query: str | None) -> list[str]:
    """A query's distinct terms, in the order typed."""
    return list(dict.fromkeys(analyze(query)))
