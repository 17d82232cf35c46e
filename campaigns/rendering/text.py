"""A readable plain-text version of an HTML email."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = frozenset(
    {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "table", "tr", "ul", "ol", "blockquote"}
)
_SKIP = frozenset({"head", "style", "script", "title"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_tag: str | None = None  # inside <style>, <head>, a hidden preheader...
        self._skip_depth = 0
        self._links: list[tuple[str, int]] = []  # (href, index in parts where its text began)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip_tag:
            if tag == self._skip_tag:
                self._skip_depth += 1
            return
        style = (dict(attrs).get("style") or "").replace(" ", "").lower()
        if tag in _SKIP or (tag in {"span", "div"} and "display:none" in style):
            self._skip_tag, self._skip_depth = tag, 1
            return
        if tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCKS:
            self.parts.append("\n\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in {"td", "th"}:
            self.parts.append(" ")
        elif tag == "a":
            self._links.append((dict(attrs).get("href") or "", len(self.parts)))

    def handle_endtag(self, tag: str) -> None:
        if self._skip_tag:
            if tag == self._skip_tag:
                self._skip_depth -= 1
                if not self._skip_depth:
                    self._skip_tag = None
            return
        if tag in _BLOCKS:
            self.parts.append("\n\n")
        elif tag == "a" and self._links:
            href, begin = self._links.pop()
            text = "".join(self.parts[begin:]).strip()
            if href and not href.startswith("#") and href != text:
                self.parts.append(f" ({href})" if text else href)

    def handle_data(self, data: str) -> None:
        if not self._skip_tag:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """A readable plain-text version: links as "text (url)", paragraphs as blank lines."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    lines = [line.strip() for line in text.splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
