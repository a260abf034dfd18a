"""Who a sender is, from its NAME (ISO 11783 address claim): our own virtual devices, the
manufacturer and device function fields, and the ``[n2k] input_senders`` filter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nmea2000 import backend


def manufacturer_of(name: int) -> int:
    return (name >> 21) & 0x7FF


def function_of(name: int) -> int:
    return (name >> 40) & 0xFF


def own_names(base: Callable[[], int], manufacturer: int = 2046) -> Callable[[int], bool]:
    """Whether a NAME is one of our virtual devices': our manufacturer code and unique-number
    block (N2K out's, ``[n2k] unique_number_base`` or derived from the serial)."""

    def own(name: int) -> bool:
        first = base()
        return manufacturer_of(name) == manufacturer and first <= name & 0x1FFFFF < first + 256

    return own


@dataclass(frozen=True, slots=True)
class SenderFilter:
    """The senders to read: by NAME or by manufacturer code; both empty: every sender."""

    names: frozenset[int] = frozenset()
    makers: frozenset[int] = frozenset()

    def allows(self, name: int | None) -> bool:
        if not self.names and not self.makers:
            return True
        if name is None:
            return False  # not claimed (yet): the filter cannot tell who it is
        return name in self.names or manufacturer_of(name) in self.makers


def sender_filter(entries: tuple[str, ...]) -> SenderFilter:
    """``[n2k] input_senders``: 16 hex digits are a NAME, digits a manufacturer code, any other
    text a manufacturer's canboat name (case-insensitive); ValueError names a bad entry."""
    names: set[int] = set()
    makers: set[int] = set()
    labels = {label.lower(): code for code, label in backend.DATABASE.lookup("MANUFACTURER_CODE")}
    for entry in entries:
        text = entry.strip()
        if len(text) == 16 and all(c in "0123456789abcdefABCDEF" for c in text):
            names.add(int(text, 16))
        elif text.isdigit():
            makers.add(int(text))
        elif text.lower() in labels:
            makers.add(labels[text.lower()])
        else:
            raise ValueError(f"n2k.input_senders: {entry!r} is not a NAME (16 hex digits) or a manufacturer")
    return SenderFilter(frozenset(names), frozenset(makers))
