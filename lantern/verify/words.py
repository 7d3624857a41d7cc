"""Word-level detectors the verifier reads: content words (stemmed, stop words out), numbers,
names, negations.

Cheap and English-only: `stem` is a suffix stripper, `entities` takes capitalised words, and
`has_negation` a fixed word list; none of them knows what a sentence means.
"""

from __future__ import annotations

import re
import unicodedata

STOP_WORDS = set(
    "a an the and or but if then of to in on at by for with from as is are was were be been being it its this that these those "
    "which who whom whose what when where how why there here has have had do does did not no so than too very can could may might "
    "will would shall should must also into over under about after before between during while he she they them his her their our "
    "we you your i me my us one s".split()
)
NEGATIONS = {"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "cannot", "without", "n't", "false", "deny", "denied"}
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d[\d,.]*")
_POSSESSIVE = re.compile(r"'s\b|(?<=s)'(?=\s|$)")


def fold(text: str) -> str:
    """Accents off ("Zürich" -> "Zurich"), typographic apostrophes straight, possessives off
    ("Pittsburgh's" -> "Pittsburgh"): how a name is written must not decide whether it is found."""
    text = unicodedata.normalize("NFKD", text.replace("\u2019", "'"))
    return _POSSESSIVE.sub("", "".join(ch for ch in text if not unicodedata.combining(ch)))


NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")


def number_value(digits: str) -> str:
    """One key per written number: "1,200" -> "1200", "3.0" -> "3"."""
    value = digits.replace(",", "")
    return value[:-2] if value.endswith(".0") else value


def stem(word: str) -> str:
    """A light suffix stripper that maps a word's common forms to one key ("decide", "decides",
    "decided" -> "decid"; "stop", "stopped" -> "stop"); not a linguistic stem."""
    word = word.lower().strip("'-")
    for suffix in ("ingly", "edly", "ments", "ment", "ness", "ings", "ing", "ies", "ied", "ed", "es", "s", "ly"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":
                word = word[:-1]  # stopp(ed) -> stop
            break
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]  # decide -> decid, like decid(es)
    return word


def content_words(text: str) -> list[str]:
    return [stem(w) for w in _WORD.findall(fold(text)) if w.lower() not in STOP_WORDS and not w[0].isdigit()]


NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty".split())
    if value >= 2  # "one" is as often a pronoun ("one of them") as a count
} | {"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90", "hundred": "100"}
_TENS = "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
_NUMBER_WORD = re.compile(rf"\b(?:({_TENS})[- ](two|three|four|five|six|seven|eight|nine)|(" + "|".join(NUMBER_WORDS) + r"))\b", re.IGNORECASE)


def number_word_value(word: str) -> str | None:
    """'eight' -> '8', 'twenty-two' -> '22'; None for any other word."""
    found = _NUMBER_WORD.fullmatch(word)
    if not found:
        return None
    tens, unit, single = found.groups()
    return str(int(NUMBER_WORDS[tens.lower()]) + int(NUMBER_WORDS[unit.lower()])) if tens else NUMBER_WORDS[single.lower()]


def numbers(text: str) -> set[str]:
    """Numbers in digits, and the number words two to ninety-nine and hundred ("four" -> "4",
    "twenty-two" -> "22")."""
    out = {number_word_value(found.group()) for found in _NUMBER_WORD.finditer(text)}
    out.update(number_value(raw) for raw in NUMBER.findall(text))
    return out


def entities(text: str) -> set[str]:
    """Capitalised words not opening a sentence, and acronyms: a crude but cheap name detector."""
    found = set()
    for sentence in re.split(r"(?<=[.!?])\s+", fold(text)):
        words = _WORD.findall(sentence)
        for i, word in enumerate(words):
            if word[0].isupper() and (i > 0 or word.isupper()) and word.lower() not in STOP_WORDS:
                found.add(word.lower())
    return found


def has_negation(text: str) -> bool:
    lowered = text.lower().replace("n't", " n't")
    return any(token in NEGATIONS for token in re.findall(r"[a-z']+", lowered))
