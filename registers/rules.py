"""Every rule the compiler enforces, numbered. Messages read ``file:line: Rnn message``.

Line numbers are physical lines of the CSV file; the header row is line 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

RULES: Final[dict[str, str]] = {
    "R01": "a mapping file must be readable UTF-8 CSV",
    "R02": "the header names only known columns and has every required one",
    "R03": "the type is one of uint16, int16, uint32, int32, uint64, string[N], reserved[N]",
    "R04": "register width fits the type: string[N]/reserved[N] take 1..125 registers, fixed types take no [N]",
    "R05": "the register address is an integer and the block ends at or before 65536",
    "R06": "registers of one service type do not overlap",
    "R07": "an address belongs to one service type only",
    "R08": "scale is a non-zero number",
    "R09": "access is R or W",
    "R10": "a lookup (enum) file has value,label rows with integer values or ranges, no repeats",
    "R11": "a row names an existing lookup",
    "R12": "a path looks like /Dc/0/Voltage; reserved blocks and only they use RESERVED",
    "R13": "min/max are numbers, min <= max, only on numeric writable rows, within the type range",
    "R14": "a derive expression calls a known function with paths; derived rows are read-only",
    "R15": "unit_ids.csv: unit ids 0..255 and instances >= 0, each unit id once",
    "R16": "the mappings folder has modbus/*.csv service files and modbus/unit_ids.csv",
    "R17": "service file names are lower-case service types (battery.csv, vebus.csv)",
}


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    file: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.rule} {self.message}"


class Problems:
    """Collects every problem; the compiler never stops at the first one."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, file: str, line: int, rule: str, message: str) -> None:
        assert rule in RULES, rule
        self.items.append(Problem(file, line, rule, message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def sorted(self) -> list[Problem]:
        return sorted(self.items)
