"""Generated answers as safe HTML: Markdown's lists, emphasis, code and tables, nothing else.

A model's answer is untrusted text (the documents it read may carry injected instructions), so:
raw HTML is shown as text, images are not loaded, and a link is a link only when its URL appears
in the documents the answer came from; any other `[text](url)` stays literal text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

# URLs as documents write them; trailing punctuation belongs to the sentence, not the URL.
_URL = re.compile(r"https?://[^\s<>\"'`]+[^\s<>\"'`.,;:!?)\]}]")
_SAFE_SCHEMES = ("http://", "https://")


def urls_in(texts: Iterable[str]) -> set[str]:
    """The http(s) URLs written in `texts` (for example the answer's sources' text)."""
    return {match.group(0) for text in texts for match in _URL.finditer(text)}


# Private-use characters stand for the marks through rendering; text never keeps its own.
_OPEN, _CLOSE = "\ue000", "\ue001"
# What starts a Markdown block on a line: a mark placed before it would unmake the list item.
_BLOCK_START = re.compile(r"[ \t]*(?:(?:[-*+]|\d{1,9}[.)]|#{1,6}|>)[ \t]+)*")
UNSUPPORTED_MARK = '<span class="folio-unsupported" title="not supported by the sources">'


def safe_markdown(
    text: str,
    allowed_urls: Iterable[str] = (),
    marked: Iterable[tuple[int, int]] = (),
    mark: str = UNSUPPORTED_MARK,
) -> str:
    """`text` as HTML: Markdown formatting rendered, everything else escaped.

    Links (and <autolinks>) whose URL is not in `allowed_urls` are not links; allowed ones open
    in a new tab without a referrer. `marked` spans of `text` (start, end offsets, such as the
    sentences grounding could not support) are wrapped in `mark` ... `</span>`, line by line so
    a mark never swallows a list item's bullet.
    """
    text = _with_marks(text.replace(_OPEN, "").replace(_CLOSE, ""), marked)
    html = _render(text, allowed_urls)
    return html.replace(_OPEN, mark).replace(_CLOSE, "</span>")


def _with_marks(text: str, spans: Iterable[tuple[int, int]]) -> str:
    cuts: list[tuple[int, str]] = []
    for start, end in spans:
        while start < end:
            line_end = text.find("\n", start, end)
            stop = end if line_end == -1 else line_end
            at_line_start = start == 0 or text[start - 1] == "\n"
            if at_line_start:
                match = _BLOCK_START.match(text, start, stop)
                start = match.end() if match else start
            if start < stop:
                cuts += [(start, _OPEN), (stop, _CLOSE)]
            start = stop + 1
    # Closing marks go before opening ones at the same offset: spans that touch stay apart.
    for offset, char in sorted(cuts, key=lambda c: (c[0], c[1] == _OPEN), reverse=True):
        text = text[:offset] + char + text[offset:]
    return text


def _render(text: str, allowed_urls: Iterable[str]) -> str:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.disable(["image"])  # an image would make the browser fetch a URL the model chose
    # markdown-it checks the normalized URL (percent-encoded): compare like with like.
    allowed = {
        md.normalizeLink(url.strip())
        for url in allowed_urls
        if url.strip().lower().startswith(_SAFE_SCHEMES)
    }
    md.validateLink = lambda url: url in allowed  # type: ignore[method-assign]

    def link_open(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        tokens[idx].attrSet("target", "_blank")
        tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
        return str(renderer.renderToken(tokens, idx, options, env))

    md.add_render_rule("link_open", link_open)
    return str(md.render(text))
