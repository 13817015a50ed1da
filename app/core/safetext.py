"""Text from outside (statements, files, the ledger) made safe to show on a terminal or in a label.

`escape` replaces every character that could move the cursor, change colours, reorder the text or
start a new line (C0/C1 controls such as ESC, CR and LF; Unicode format characters such as the bidi
overrides U+202A-U+202E and U+2066-U+2069; line and paragraph separators; unassigned and private
code points) with a visible backslash escape, and shortens the text to a bounded length so that
padding cannot push text onto a line of its own. `quote` wraps the escaped text in quotes, so that
where it begins and ends is visible.
"""

from __future__ import annotations

import unicodedata

MAX_SHOWN = 160
# Unicode categories that must never reach a terminal as themselves: controls, format characters
# (bidi overrides, zero-width joiners), separators other than the plain space, surrogates, private
# use and unassigned code points.
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _escape_char(char: str) -> str:
    if char == "\\":
        return "\\\\"
    code = ord(char)
    if char == " ":
        return char
    if unicodedata.category(char) in UNSAFE_CATEGORIES or unicodedata.category(char) == "Zs":
        if code <= 0xFF:
            return f"\\x{code:02x}"
        if code <= 0xFFFF:
            return f"\\u{code:04x}"
        return f"\\U{code:08x}"
    return char


def escape(value: object, limit: int = MAX_SHOWN) -> str:
    """`value` as text with every unsafe character escaped and at most `limit` characters shown
    (the rest summarized as "…(+N more)"). Runs of spaces are kept but count against the limit."""
    text = value if isinstance(value, str) else str(value)
    shown = text[:limit]
    out = "".join(_escape_char(char) for char in shown)
    if len(text) > limit:
        out += f"…(+{len(text) - limit} more)"
    return out


def quote(value: object, limit: int = MAX_SHOWN) -> str:
    """The escaped text between double quotes (a quote inside is escaped too)."""
    return '"' + escape(value, limit).replace('"', '\\"') + '"'


def is_safe(text: str) -> bool:
    """True when `text` holds no character that escape() would replace."""
    return all(char == " " or (unicodedata.category(char) not in UNSAFE_CATEGORIES
                               and unicodedata.category(char) != "Zs") for char in text)
