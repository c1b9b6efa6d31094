"""The structure of a prompt as a model reads it: the tags that carry the message's nonce, and what lies between.

Written apart from gitteam.fences, so the tests do not take the code under test at its word: the nonce is the
one on the message's first tag, tags with it must nest properly, and the skeleton is the message with the
content of every innermost fence left out and the nonce replaced, which is what must not change when the
fenced texts turn hostile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TAG = re.compile(r'<(/?)([A-Za-z_]+)((?: [a-z_]+="[^"<>]*")*) nonce="([0-9a-f]{12})">')
VERBATIM = frozenset({"title", "instructions", "files", "request"})  # delivered exactly, by contract


@dataclass
class Fence:
    name: str
    start: int  # of the opening tag
    inner: int  # where the content starts
    end: int = -1  # of the closing tag (its first character)
    children: list[Fence] = field(default_factory=list)

    def content(self, text: str) -> str:
        return text[self.inner:self.end]


def parse(text: str) -> tuple[str | None, list[Fence]]:
    """The message's nonce and its top-level fences; AssertionError when its tags do not nest."""
    first = TAG.search(text)
    if first is None:
        return None, []
    nonce = first[4]
    top: list[Fence] = []
    stack: list[Fence] = []
    for match in TAG.finditer(text):
        closing, name, _, found = match.groups()
        if found != nonce:
            continue
        if not closing:
            fence = Fence(name, match.start(), match.end())
            (stack[-1].children if stack else top).append(fence)
            stack.append(fence)
            continue
        assert stack and stack[-1].name == name, f"</{name}> closes {stack[-1].name if stack else 'nothing'}"
        stack.pop().end = match.start()
    assert not stack, f"unclosed: {[f.name for f in stack]}"
    return nonce, top


def leaves(fences: list[Fence]) -> list[Fence]:
    found = []
    for fence in fences:
        found.extend(leaves(fence.children) if fence.children else [fence])
    return found


def skeleton(text: str) -> str:
    """The message with each innermost fence's content replaced by "...", and the nonce by NONCE."""
    nonce, top = parse(text)
    out, at = [], 0
    for leaf in sorted(leaves(top), key=lambda f: f.inner):
        out += [text[at:leaf.inner], "..."]
        at = leaf.end
    out.append(text[at:])
    joined = "".join(out)
    return joined.replace(f'nonce="{nonce}"', 'nonce="NONCE"') if nonce else joined


def outline(text: str) -> list[str]:
    """The top-level fences, in order (and their children in brackets): for assertion messages."""
    def name(fence: Fence) -> str:
        return fence.name + (f"[{', '.join(map(name, fence.children))}]" if fence.children else "")
    return [name(fence) for fence in parse(text)[1]]


def enclosing_leaf(text: str, position: int) -> Fence | None:
    return next((leaf for leaf in leaves(parse(text)[1]) if leaf.inner <= position < leaf.end), None)
