"""Finding codes shown to a person without their label: the text a page shows (not its markup, attribute
values or `.mono` identifiers such as member ids and rule codes), word by word, against every code that
has a label (web/codes.py and the prefixed LABELS). In Chinese any such word is untranslated; in English a
lower-case code standing alone in a cell or tag (`<td>award</td>`) or a code with an underscore is."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from jifen.web.codes import CODES, PREFIXED
from jifen.web.i18n import LABELS

KNOWN = {code for codes in CODES.values() for code in codes} | {
    key[len(prefix):] for prefix in set(PREFIXED.values()) for key in LABELS if key.startswith(prefix)}
WORD = re.compile(r"[a-z][a-z0-9_]*")


class _Text(HTMLParser):
    """Text nodes outside script/style and outside elements of class mono (identifiers, shown as such)."""

    SKIP = {"script", "style", "textarea"}
    VOID = {"br", "img", "input", "meta", "link", "hr", "source", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack: list[bool] = []
        self.nodes: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        skip = tag in self.SKIP or "mono" in (dict(attrs).get("class") or "").split()
        self.stack.append(skip or bool(self.stack and self.stack[-1]))

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if not (self.stack and self.stack[-1]) and data.strip():
            self.nodes.append(data.strip())


def shown_text(html: str) -> list[str]:
    parser = _Text()
    parser.feed(html)
    return parser.nodes


def raw_codes(nodes: list[str], lang: str) -> set[str]:
    """The known codes among the words shown (in the way that counts as raw for the language)."""
    found = set()
    for node in nodes:
        words = WORD.findall(node)
        if lang == "en":
            found |= {w for w in words if w in KNOWN and ("_" in w or node == w)}
        else:
            found |= {w for w in words if w in KNOWN}
    return found
