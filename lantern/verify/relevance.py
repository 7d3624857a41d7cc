"""Does an answer answer the question? What a question asks for, how much of it a claim gives,
what is missing, and where sources disagree.

- `asked(question)` reads what the question wants: its focus words (stemmed content words, the
  question's scaffolding removed) and the expected answer type: a quantity ("how deep", "how
  many", "what percentage"), a date ("when", "what year"), a person ("who"), a place ("where",
  "which city"), or anything; and the attribute asked for ("depth", "height", "number of ...")
  so a missing part can be named.
- `relevance(asked, claim)` in [0, 1]: the share of the focus (weighted by rarity when weights
  are given) the claim and its section headings carry, or the share its sentence-embedding
  similarity to the question says it carries (by at most `SEMANTIC_LIFT` more), whichever is
  more; halved when the claim lacks a
  value of the expected type that the question does not already contain.
- `judge(asked, claims)`: which claims answer (relevance at least `ANSWERS`), which are only
  related, whether together they cover what was asked (`answered`), part of it (`partial`, with
  one sentence saying what is missing) or nothing (`not_in_kb`).
- `conflicts(asked, claims)`: claims from different sources about the same thing (most of their
  focus in common) giving different values of the same kind (numbers with the same unit or
  dimension, years), each with its source.

Word-level and English-only, like `lantern.verify.words`: answer types come from question words
and surface patterns (capitalised names, numbers, years), not from a parser or a trained model.
It knows nothing about retrieval or verification: it gets the question and claim texts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Literal

from lantern.records import Claim, Conflict, ConflictValue
from lantern.verify.words import STOP_WORDS, content_words, fold, number_value, number_word_value, stem

AnswerType = Literal["quantity", "date", "person", "place", "any"]

ANSWERS = 0.4
"""Relevance from which a supported claim counts as answering the question; below it, the claim
is listed as related ("also in the documents"). Chosen on the SQuAD 2.0 dev questions
(bench/answerability.py): the sentences holding the gold answer have a median relevance of 0.57
and a quarter of them score below 0.37 (SQuAD questions paraphrase their paragraph), so 0.5 kept
7 points less answer hit rate for 8 more points of abstention than 0.4."""
SIMILAR_LOW, SIMILAR_HIGH = 0.3, 0.7
"""MiniLM cosine similarities between a question and a sentence read as none and all of it covered."""
SEMANTIC_LIFT = 0.25
"""How far embedding similarity may raise the word share: it catches paraphrase, but a sentence on
the same subject is similar to a question it does not answer ("Who discovered Lake Tahoe?")."""
COVERED = 0.6
"""Share of the question's focus the answering claims must carry together for `answered`."""

# Question words that say what kind of answer is wanted, and the attribute they ask for.
_DIMENSIONS = {
    "deep": "depth", "depth": "depth", "tall": "height", "high": "height", "height": "height", "long": "length",
    "length": "length", "wide": "width", "width": "width", "far": "distance", "distance": "distance", "old": "age",
    "age": "age", "heavy": "weight", "weigh": "weight", "weight": "weight", "big": "size", "large": "size", "size": "size",
    "fast": "speed", "speed": "speed", "often": "frequency", "hot": "temperature", "cold": "temperature",
    "temperature": "temperature", "much": "amount", "cost": "cost", "price": "price", "population": "population",
    "percentage": "percentage", "percent": "percentage", "proportion": "proportion", "area": "area", "number": "number",
    "amount": "amount", "many": "number",
}
_DIMENSION_NOUNS = {"depth", "height", "length", "width", "distance", "age", "weight", "speed", "temperature", "population", "area"}
_QUANTITY = re.compile(r"\bhow (many|much|deep|long|tall|high|far|wide|big|large|old|heavy|fast|often|hot|cold)\b|"
                       r"\b(?:what|which)(?: is| was| are| were)?(?: the)? (percentage|percent|proportion|number|amount|size|"
                       r"population|length|height|depth|width|distance|speed|temperature|cost|price|area|weight|age)\b", re.I)
_DATE = re.compile(r"\bwhen (?:did|was|were|had|will|would)\b|^when\b(?! (?:does|do|is|are|can|should|must|may|might)\b)|\b(?:what|which|in what|in which) (year|years|date|day|month|century|decade|era|period|time)\b|"
                   r"\bhow long ago\b", re.I)
_PERSON = re.compile(r"\bwho(?:m|se)?\b|\b(?:what|which) (person|people|man|woman|king|queen|president|author|writer|"
                     r"scientist|leader|player|artist|composer|emperor|founder|inventor|poet|painter|actor|singer)\b", re.I)
_PLACE = re.compile(r"\bwhere\b|\b(?:what|which|in what|in which) (city|cities|country|countries|state|region|place|"
                    r"continent|town|village|location|area|island|river|province|county|capital|nation)\b", re.I)
_SCAFFOLD = {stem(w) for w in ("what which who whom whose when where why how name called many much long deep tall high "
                               "wide far old kind type year date country city person place number amount give term "
                               "refer known").split()}

_GENERIC_VERBS = set("happen happens happened do does did done make makes made cause caused causes give gives given take took "
                     "taken get got use used uses find found call called say said state stated become became".split())
_QUESTION_WORDS = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how"}
_UNIT = (r"%|percent|per ?cent|km|kilomet(?:er|re)s?|m|met(?:er|re)s?|cm|mm|mi|miles?|ft|feet|foot|inch(?:es)?|yards?|"
         r"kg|kilograms?|g|grams?|tonnes?|tons?|pounds?|lbs?|l|litres?|liters?|°[CF]?|degrees?|hours?|minutes?|seconds?|"
         r"days?|weeks?|months?|years?|decades?|centuries|people|persons|inhabitants|residents|members|students|"
         r"\$|dollars?|euros?|pounds sterling|million|billion|thousand|hundred|trillion|acres|hectares|square|sq")
_QUANTITY_VALUE = re.compile(rf"(?:\$|£|€)?\s?(?:\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?)(?:\s?(?:{_UNIT})\b)*", re.I)
_YEAR = re.compile(r"\b(?:1[0-9]{3}|20[0-9]{2})s?\b|\b\d{1,2}(?:st|nd|rd|th) century\b|\b(?:January|February|March|April|May|"
                   r"June|July|August|September|October|November|December)\b(?: \d{1,2})?", re.I)
_NAME = re.compile(r"\b[A-Z][a-zà-ÿ'\-]+(?:\s+(?:de|van|von|der|la|le|of|da|di|bin|al)?\s*[A-Z][a-zà-ÿ'\-]+)*")
_PLACE_NAME = re.compile(r"\b(?:in|at|from|near|of|to|into|across)\s+(?:the\s+)?([A-Z][a-zà-ÿ'\-]+(?:\s+[A-Z][a-zà-ÿ'\-]+)*)")


@dataclass
class Asked:
    """What a question asks for."""

    text: str
    focus: list[str]
    """Stemmed content words that say what the question is about (question words removed)."""
    answer_type: AnswerType
    attribute: str
    """The property asked for, in words ("depth", "number", "date", "person", "place"; "" for any)."""
    subject: str = ""
    """A short phrase naming what the question is about, for the missing-part sentence."""
    words: set[str] = field(default_factory=set)
    """Every folded, lower-cased word of the question, to tell a new value from one the question repeats."""


def asked(question: str) -> Asked:
    text = " ".join(question.split())
    answer_type: AnswerType = "any"
    attribute = ""
    if found := _QUANTITY.search(text):
        answer_type = "quantity"
        word = (found.group(1) or found.group(2)).lower()
        attribute = _DIMENSIONS.get(word, word)
        if word in ("many", "much", "number", "amount"):
            counted = re.search(rf"\b{word}\s+(?:of\s+)?(?:the\s+)?([a-z]+)", text, re.I)
            if counted and counted.group(1).lower() not in STOP_WORDS:
                attribute = f"number of {counted.group(1).lower()}" if word in ("many", "number") else f"amount of {counted.group(1).lower()}"
    elif found := _DATE.search(text):
        answer_type, attribute = "date", (found.group(1) or "date").lower() if found.lastindex else "date"
    elif _PERSON.search(text):
        answer_type, attribute = "person", "person"
    elif found := _PLACE.search(text):
        answer_type, attribute = "place", (found.group(1) or "place").lower() if found.lastindex else "place"
    focus = []
    for word in content_words(text):
        if word not in _SCAFFOLD and word not in focus:
            focus.append(word)
    subject = subject_of(text)
    if " of " in attribute:  # "number of layers": the counted noun is what is asked, not what it is asked about
        subject = " ".join(w for w in subject.split() if stem(w) != stem(attribute.split(" of ")[1])) or subject
    return Asked(text=text, focus=focus, answer_type=answer_type, attribute=attribute, subject=subject,
                 words={w.lower() for w in re.findall(r"[\w'\-]+", fold(text))})


def subject_of(question: str) -> str:
    """What the question is about, in its own words: the question with its wh-phrase, auxiliaries
    and question words removed ("How many layers does Ouro-1.4B have?" -> "Ouro-1.4B")."""
    rest = question
    for pattern in (_QUANTITY, _DATE, _PERSON, _PLACE):
        rest = pattern.sub(" ", rest)
    words = [w.strip(".,;:?!\"'()") for w in fold(rest).split()]
    kept = [w for w in words if w and w.lower() not in STOP_WORDS and w.lower() not in _QUESTION_WORDS
            and w.lower() not in {"do", "does", "did", "has", "have", "had", "is", "are", "was", "were"}]
    return " ".join(kept[:6])


def values(text: str, answer_type: AnswerType, exclude: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Values of `answer_type` written in `text` that the question (`exclude`: its words) does not already contain."""
    text = fold(text)
    found: list[str] = []
    if answer_type == "quantity":
        for match in _QUANTITY_VALUE.finditer(text):
            raw = match.group().strip()
            digits = re.search(r"\d[\d,.]*", raw)
            if digits and number_value(digits.group().rstrip(".,")) not in exclude and digits.group().rstrip(".,") not in exclude:
                found.append(raw)
        for word in re.findall(r"[A-Za-z]+(?:-[A-Za-z]+)?", text):
            if number_word_value(word) and word.lower() not in exclude:
                found.append(word)
    elif answer_type == "date":
        found = [m.group() for m in _YEAR.finditer(text) if m.group().lower() not in exclude]
    elif answer_type == "person":
        places = {m.start(1) for m in _PLACE_NAME.finditer(text)}
        for match in _NAME.finditer(text):
            name = match.group()
            parts = [p for p in name.split() if p[0].isupper()]
            if match.start() == 0 and len(parts) < 2:
                continue  # one capitalised word opening the sentence is no name
            if match.start() in places:
                continue  # "in the Sierra Nevada", "from Paris": a place, not a person
            if any(p.lower() not in exclude for p in parts) and not all(p.lower() in STOP_WORDS for p in parts):
                found.append(name)
    elif answer_type == "place":
        found = [m.group(1) for m in _PLACE_NAME.finditer(text) if any(p.lower() not in exclude for p in m.group(1).split())]
    return found


def dimension_near(text: str, value: str) -> str:
    """The dimension a number is given for: an adjective right after it ("280 m long" -> "length"),
    else a dimension noun shortly before it ("a depth of 501 m" -> "depth")."""
    at = text.find(value)
    if at < 0:
        return ""
    after = re.findall(r"[a-z]+", text[at + len(value): at + len(value) + 25].lower())[:3]
    for word in after:
        if word in _DIMENSIONS and _DIMENSIONS[word] not in ("number", "amount", "size"):
            return _DIMENSIONS[word]
    before = re.findall(r"[a-z]+", text[max(0, at - 40): at].lower())
    for word in reversed(before):
        if word in _DIMENSION_NOUNS:
            return _DIMENSIONS[word]
    return ""


def focus_share(asked: Asked, text: str, weight: Callable[[str], float] | None = None) -> float:
    """Weighted share of the question's focus words found in `text` (1.0 when the focus is empty);
    an acronym of the question counts as found when the text spells it out ("KB", "knowledge base")."""
    if not asked.focus:
        return 1.0
    weigh = weight or (lambda _w: 1.0)
    present = set(content_words(text)) | spelled_out_acronyms(asked, text)
    total = sum(weigh(w) for w in asked.focus)
    return sum(weigh(w) for w in asked.focus if w in present) / total if total else 1.0


def spelled_out_acronyms(asked: Asked, text: str) -> set[str]:
    """The question's acronyms (2-5 capitals) whose words appear in order in `text`, as focus keys."""
    found = set()
    words = re.findall(r"[A-Za-z][A-Za-z'\-]*", fold(text))
    initials = "".join(w[0].lower() for w in words)
    for acronym in re.findall(r"\b[A-Z]{2,5}s?\b", asked.text):
        letters = acronym.rstrip("s").lower()
        if letters in initials and stem(acronym) in asked.focus:
            found.add(stem(acronym))
    return found


def semantic_share(similarity: float | None) -> float:
    """A question-claim cosine similarity (MiniLM) read as a share of the question covered: below
    `SIMILAR_LOW` nothing, from `SIMILAR_HIGH` all; paraphrase the words miss is caught here."""
    if similarity is None:
        return 0.0
    return min(1.0, max(0.0, (similarity - SIMILAR_LOW) / (SIMILAR_HIGH - SIMILAR_LOW)))


def has_value(asked: Asked, text: str) -> bool:
    """Whether `text` gives a value of the expected type (any text does when any answer will do)."""
    if asked.answer_type == "any":
        return True
    found = values(text, asked.answer_type, asked.words)
    if not found:
        return False
    if asked.answer_type == "quantity" and asked.attribute in {"depth", "height", "length", "width", "distance", "age", "weight",
                                                                "speed", "temperature"}:
        # a number given for another dimension ("1,280 m long" when the height is asked) is not the answer
        dims = {dimension_near(fold(text), v) for v in found}
        return asked.attribute in dims or dims == {""}
    return True


def relevance(asked: Asked, text: str, heading: str = "", weight: Callable[[str], float] | None = None,
              similarity: float | None = None) -> float:
    """How much of the question `text` answers, in [0, 1] (see the module docstring); `similarity`
    is the question's cosine similarity to the text, when an embedder is at hand."""
    lexical = focus_share(asked, f"{heading} {text}", weight)
    share = max(lexical, min(semantic_share(similarity), lexical + SEMANTIC_LIFT))
    return round(share if has_value(asked, text) else 0.5 * share, 4)


@dataclass
class Judgement:
    status: Literal["answered", "partial", "not_in_kb"]
    answering: list[Claim]
    related: list[Claim]
    missing: str = ""
    """One sentence naming what the documents do not give (for `partial`), else ""."""


def judge(asked: Asked, kept: list[Claim]) -> Judgement:
    """Split supported claims into those that answer and those only related, and say how much of the question they cover."""
    answering = [c for c in kept if c.relevance >= ANSWERS]
    related = [c for c in kept if c.relevance < ANSWERS]
    if not answering:
        return Judgement("not_in_kb", [], related)
    valued = [c for c in answering if has_value(asked, c.claim)]
    if not valued:  # about the subject, without what was asked: part of an answer, and what is missing
        return Judgement("partial", answering, related, missing_sentence(asked, " ".join(c.claim for c in answering)))
    if len(valued) < len(answering):  # the claims that give the asked value answer; the rest are related
        related = [c for c in kept if c not in valued]
        answering = valued
    together = " ".join(c.claim for c in answering)
    if max(c.relevance for c in answering) < COVERED and \
            focus_share(asked, together + " " + " ".join(c.evidence for c in answering)) < COVERED:
        return Judgement("partial", answering, related, missing_sentence(asked, together))
    return Judgement("answered", answering, related)


def missing_sentence(asked: Asked, given: str) -> str:
    """'The documents give the length of the Golden Gate Bridge, not its height.' or '... do not give ...'."""
    subject = asked.subject or "this"
    wanted = asked.attribute or "what was asked"
    if asked.answer_type == "quantity":
        gave = sorted({d for v in values(given, "quantity", asked.words) if (d := dimension_near(fold(given), v)) and d != wanted})
        if gave:
            return f"The documents give the {' and '.join(gave)} for {subject}, not the {wanted}."
    absent = [w for w in asked.focus if w not in set(content_words(given))]
    if absent and asked.answer_type == "any":
        words = list(dict.fromkeys(w for w in re.findall(r"[A-Za-z][A-Za-z'\-]*", fold(asked.text))
                                   if stem(w) in absent and w.lower() not in _GENERIC_VERBS))[:3]
        if words:
            quoted = [f'"{w}"' for w in words]
            listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f" or {quoted[-1]}"
            return f"The passages found do not mention {listed} from the question."
        return "The passages found do not cover all of the question."
    return f"The documents mention {subject} but do not give the {wanted} asked for."


def conflicts(asked: Asked, claims: list[Claim]) -> list[Conflict]:
    """Claims from different sources about the same thing that give different values of one kind."""
    kinds: list[AnswerType] = [asked.answer_type] if asked.answer_type in ("quantity", "date") else ["quantity", "date"]
    found: list[Conflict] = []
    for kind in kinds:
        given: list[tuple[Claim, str, str]] = []  # (claim, canonical value, dimension/unit)
        for claim in claims:
            for raw in values(claim.claim, kind, asked.words):
                given.append((claim, canonical(raw), unit_of(raw, claim.claim, kind)))
        by_unit: dict[str, list[tuple[Claim, str, str]]] = {}
        for item in given:
            by_unit.setdefault(item[2], []).append(item)
        for unit, items in by_unit.items():
            sources = {claim.source for claim, _, _ in items}
            distinct = {value for _, value, _ in items}
            if len(sources) < 2 or len(distinct) < 2:
                continue
            if not _same_topic([claim for claim, _, _ in items], asked):
                continue
            # keep one value per source, and only when some two sources really differ
            per_source: dict[str, tuple[Claim, str]] = {}
            for claim, value, _ in items:
                per_source.setdefault(claim.source, (claim, value))
            if len({value for _, value in per_source.values()}) < 2:
                continue
            found.append(Conflict(
                about=asked.attribute if asked.attribute and asked.answer_type == kind else (unit or kind),
                values=[ConflictValue(value=value, claim=claim.claim, source=claim.source, start_line=claim.start_line,
                                      end_line=claim.end_line) for claim, value in per_source.values()]))
        if found:
            break
    return found


def _same_topic(claims: list[Claim], asked: Asked) -> bool:
    """Whether claims speak of the same thing: each carries most of the question's focus, or they
    share most of their own content words (numbers aside)."""
    if asked.focus and all(focus_share(asked, c.claim) >= ANSWERS for c in claims):
        return True
    words = [set(content_words(c.claim)) for c in claims]
    common = set.intersection(*words) if words else set()
    smallest = min((len(w) for w in words), default=0)
    return smallest > 0 and len(common) / smallest >= 0.6


def canonical(raw: str) -> str:
    """A value written two ways compares equal: '1,280 m' -> '1280 m', '1990s' stays, 'eight' -> '8'."""
    digits = re.search(r"\d[\d,.]*", raw)
    if not digits:
        return number_word_value(raw) or raw.lower()
    rest = raw[digits.end():].strip().lower()
    return f"{number_value(digits.group().rstrip('.,'))} {rest}".strip()


def unit_of(raw: str, text: str, kind: AnswerType) -> str:
    """What a value measures, so only like values are compared: its dimension word, else its unit."""
    if kind == "date":
        return "century" if "century" in raw.lower() else "year" if re.search(r"\d{4}", raw) else "date"
    dimension = dimension_near(fold(text), raw)
    unit = re.sub(r"[\d,.\s$£€]+", " ", raw).strip().lower()
    return dimension or unit
