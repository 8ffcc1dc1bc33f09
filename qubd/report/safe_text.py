"""Names from a checkpoint are data from anywhere: shown on a terminal or in a spreadsheet, they must
not act as escapes or formulas."""

from __future__ import annotations

# A text cell starting with one of these is a formula to a spreadsheet (OWASP, "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def printable(text: str) -> str:
    """``text`` with control and other non-printing characters (terminal escapes, newlines, bidi
    overrides) written as ``\\x1b``-style escapes, so a tensor or file name cannot drive a terminal."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def spreadsheet_text(text: str) -> str:
    """A CSV text cell a spreadsheet shows as text: a leading formula character gets a ``'`` before
    it, as OWASP advises, and control characters are escaped as on the terminal (a bare carriage
    return would also break the CSV's rows). The JSON report keeps names unchanged."""
    text = f"'{text}" if text.startswith(FORMULA_STARTS) else text
    return printable(text)
