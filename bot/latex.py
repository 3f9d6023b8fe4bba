"""LaTeX in titles and abstracts as text people can read: `40$\\times$` as 40×, `D$^3$` as
D³, `\\textbf{I}mportance` as Importance, `95.18\\%` as 95.18%.

Stored text stays exactly as arXiv sent it; this runs wherever a paper is shown.
pylatexenc does the conversion. Around it: super- and subscripts become Unicode where
every character has a form, and malformed input (a lone `$`, an unbalanced brace) keeps
those characters as they are instead of losing them.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

from pylatexenc.latex2text import LatexNodes2Text

log = logging.getLogger(__name__)

_LATEX = re.compile(r"[\\$^_{}]")
_SUPERSCRIPTS = dict(zip("0123456789+-=()nix*", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱˣ*", strict=True))
_SUBSCRIPTS = dict(zip("0123456789+-=()aeioxn", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑᵢₒₓₙ", strict=True))
_SCRIPT = re.compile(r"([\^_])(?:\{([^{}$]{1,12})\}|([A-Za-z0-9*+\-]))")
_STAR = re.compile(r"\\(?:star|ast)\b")
_DEGREE = re.compile(r"\^\{?\\circ\}?")
_MATH = re.compile(r"(?<!\\)\$(?:[^$\\]|\\.)+?(?<!\\)\$")
_CONVERTER = LatexNodes2Text(math_mode="text", strict_latex_spaces=False)


def _scripts(math: str) -> str:
    """`D^3`, `x_{1}`, `T^\\star` inside math: Unicode when every character has a form."""
    math = _STAR.sub("*", math)
    math = _DEGREE.sub("°", math)

    def replace(match: re.Match[str]) -> str:
        table = _SUPERSCRIPTS if match.group(1) == "^" else _SUBSCRIPTS
        body = match.group(2) if match.group(2) is not None else match.group(3)
        if body and all(ch in table for ch in body):
            return "".join(table[ch] for ch in body)
        return match.group(0)

    return _SCRIPT.sub(replace, math)


_LITERAL = re.compile(r"(?<!\\)([%&#])")


def _keep_stray_characters(text: str) -> str:
    """Escape what LaTeX would swallow: `%` (a comment to the end of the line in LaTeX,
    but "11.85% fewer" in an abstract), `&` and `#`, a `$` without a partner, a brace
    without one."""
    text = _LITERAL.sub(r"\\\1", text)
    dollars = [m.start() for m in re.finditer(r"(?<!\\)\$", text)]
    if len(dollars) % 2:
        last = dollars[-1]
        text = text[:last] + "\\$" + text[last + 1 :]
    depth, unmatched = 0, []
    for index, char in enumerate(text):
        if char in "{}" and index and text[index - 1] == "\\":
            continue
        if char == "{":
            depth += 1
            unmatched.append(index)
        elif char == "}":
            if depth:
                depth -= 1
                unmatched.pop()
            else:
                unmatched.append(index)
    for index in reversed(unmatched):
        text = text[:index] + "\\" + text[index:]
    return text


@lru_cache(maxsize=4096)
def readable(text: str) -> str:
    """The text with its LaTeX rendered; unchanged when it holds none."""
    if not _LATEX.search(text):
        return text
    prepared = _MATH.sub(lambda m: _scripts(m.group(0)), _keep_stray_characters(text))
    try:
        rendered = _CONVERTER.latex_to_text(prepared)
    except Exception:  # pylatexenc on input it cannot parse: show it as it came
        log.debug("latex left as written text=%r", text[:80])
        return text
    return " ".join(rendered.split())


def readable_outside_math(text: str) -> str:
    """For Markdown that GitHub renders: `$...$` math kept as written, the rest rendered."""
    parts, last = [], 0
    for match in _MATH.finditer(text):
        parts += [_readable_keeping_edges(text[last : match.start()]), match.group(0)]
        last = match.end()
    parts.append(_readable_keeping_edges(text[last:]))
    return "".join(parts)


def _readable_keeping_edges(text: str) -> str:
    core = text.strip()
    if not core:
        return text
    start = text.index(core[0])
    return text[:start] + readable(core) + text[start + len(core) :]
