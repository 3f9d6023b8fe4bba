"""The summary readers get without a model: sentences picked from the abstract.

One sentence for each of what the paper does, how, and what it gains, chosen by cue
phrases ("we propose", "by", "achieves", "3.1x", "40% fewer") and position. A
sentence is never a fragment: not an item torn from an enumeration ("(2) ..."), not a
lead-in ending with a colon, not a link to a project page. No sentence is used twice,
and the TL;DR is the "what" sentence shortened, not a copy of a bullet.
"""

from __future__ import annotations

import re

from bot.latex import readable
from bot.models import Paper, Summary, SummarySource
from bot.text import clip

BULLET_CHARS = 300
TLDR_CHARS = 140

_ABBREVIATION = re.compile(r"\b(e\.g|i\.e|et al|vs|etc|cf|Fig|Eq|approx|resp|w\.r\.t)\.\s", re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[\"'])")
_ENUMERATION = re.compile(
    r"^\s*(?:\(?\d{1,2}\)|\(?[ivx]{1,4}\)|\([a-z]\)|[a-z]\)|\d{1,2}\.\s|[-•*–]\s"
    r"|(?:first|second|third|fourth|finally|lastly)(?:ly)?,)",
    re.I,
)
_LINK = re.compile(
    r"https?://|www\.|github\.com|\b(?:project page|code (?:is|will be) (?:available|released))\b",
    re.I,
)
_WHAT = re.compile(  # a contribution: what the paper builds
    r"\bwe\b[^.;]{0,80}?\b(?:propos|introduc|present|develop|design|devis)\w*"
    r"|\bthis (?:paper|work) (?:proposes|introduces|presents|develops)\b",
    re.I,
)
_WHAT_STUDY = re.compile(  # or, failing that, what it examines
    r"\bwe (?:study|show|investigate|analy[sz]e|ask|examine|explore|find)\b", re.I
)
_HOW = re.compile(
    r"\b(?:by|via|using|through|based on|leverag\w*|consists? of|combin\w*|key idea|"
    r"specifically|relies on|we (?:design|train|use|apply|formulate|model))\b",
    re.I,
)
_GAIN_WORDS = re.compile(
    r"\b(?:outperform\w*|improv\w*|reduc\w*|speed\s?ups?|faster|achiev\w*|fewer|less|lower"
    r"|saves?|cuts?|boosts?|accelerat\w*|matches|retains?|preserv\w*)\b",
    re.I,
)
_FIGURE = re.compile(r"\d(?:\.\d+)?\s*(?:×|x\b|%|times\b)|\d+(?:\.\d+)?\s*(?:ms|GB|MB|tokens)\b")
_LEAD_IN = re.compile(
    r"^(?:(?:in|with) this (?:paper|work|study|article),?\s*|here,?\s*|to (?:address|tackle|"
    r"solve|overcome|bridge|fill) (?:this|these|that|those|the)[^,]{0,80},\s*|"
    r"(?:accordingly|therefore|thus|hence|motivated by[^,]{0,80}),\s*)",
    re.I,
)
_WE_VERB = re.compile(
    r"^we (?:propose|introduce|present|develop|design|devise|show that|find that"
    r"|demonstrate that)\s+(?:a |an |the )?",
    re.I,
)
_CLAUSE = re.compile(r",\s+(?:which|that|where|while|and|enabling|allowing)\b|;\s|\s[–—-]\s")


def sentences_of(abstract: str) -> list[str]:
    text = " ".join(readable(abstract).split())
    protected = _ABBREVIATION.sub(lambda m: m.group(0)[:-1] + "\u00a0", text)
    return [s.replace("\u00a0", " ").strip() for s in _SENTENCE_END.split(protected) if s.strip()]


def _usable(sentence: str, previous: str | None) -> bool:
    """A whole statement: not a list item, not a list's lead-in, not a link, not a scrap."""
    return (
        len(sentence.split()) >= 6
        and not _ENUMERATION.match(sentence)
        and not sentence.rstrip().endswith(":")
        and not (previous or "").rstrip().endswith(":")
        and not _LINK.search(sentence)
    )


def _gain_score(sentence: str) -> int:
    return 2 * len(_FIGURE.findall(sentence)) + len(_GAIN_WORDS.findall(sentence))


def shorten(sentence: str, limit: int = TLDR_CHARS) -> str:
    """The sentence's core: no "In this paper, we propose", cut at a clause boundary."""
    core = _LEAD_IN.sub("", sentence)
    core = _WE_VERB.sub("", core) or core
    clause = _CLAUSE.search(core, 60)  # a name alone is no summary: keep 60 characters
    if clause and clause.start() < limit:
        core = core[: clause.start()]
    core = core.rstrip(" .,;:")
    return clip(core[:1].upper() + core[1:], limit)


def _list_after(sentences: list[str], start: int) -> str | None:
    """An enumeration right after sentence `start` ("(1) ... (2) ..."), as one statement
    without its markers, so it is shown whole rather than torn apart."""
    items = []
    for sentence in sentences[start + 1 :]:
        if not _ENUMERATION.match(sentence):
            break
        items.append(_ENUMERATION.sub("", sentence).strip().rstrip("."))
    return "; ".join(items) + "." if len(items) >= 2 else None


def extractive_summary(paper: Paper) -> Summary:
    sentences = sentences_of(paper.abstract) or [" ".join(readable(paper.title).split())]
    usable = [
        i for i, s in enumerate(sentences) if _usable(s, sentences[i - 1] if i else None)
    ] or list(range(len(sentences)))
    what = next(
        (i for i in usable if _WHAT.search(sentences[i])),
        next((i for i in usable if _WHAT_STUDY.search(sentences[i])), usable[0]),
    )
    # How and gain come after what the paper does; background before it is neither.
    after = [i for i in usable if i > what]
    texts = {i: sentences[i] for i in usable}
    listed = _list_after(sentences, what)
    gains = sorted(after, key=lambda i: (_gain_score(sentences[i]), i), reverse=True)
    gain = gains[0] if gains and _gain_score(sentences[gains[0]]) else None
    how: int | None
    if listed:
        how, texts[-1] = -1, listed
    else:
        how = next(
            (i for i in after if i != gain and _HOW.search(sentences[i])),
            next((i for i in after if i != gain), None),
        )
    chosen = [i for i in (what, how, gain) if i is not None]
    # Too few cues: the following statements in order, then the ones just before what the
    # paper does (its motivation), never one twice.
    before = [i for i in reversed(usable) if i < what]
    for i in after + before:
        if len(chosen) == 3:
            break
        if i not in chosen:
            chosen.append(i)
    tldr = shorten(sentences[what])
    bullets = [clip(texts[i], BULLET_CHARS) for i in chosen]
    if tldr in bullets:  # the what-sentence was already as short as it gets
        bullets.remove(tldr)
    return Summary(tldr=tldr, bullets=tuple(bullets), source=SummarySource.EXTRACTIVE)


def display_summary(paper: Paper) -> Summary:
    """What a reader sees: the model's summary when there is one, else the fallback."""
    return paper.summary or extractive_summary(paper)
