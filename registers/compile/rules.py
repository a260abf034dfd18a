"""The rule book: every rule the compilers enforce, numbered, and the problem collector.

Each rule is declared next to the check that enforces it (``R03 = rule("R03", ...)`` in the
compiler module), so a rule and its check cannot drift apart; this module only keeps the
numbered index (``RULES``) that ``gx-gateway check``, the docs and the tests read.
Messages read ``file:line: Rnn message``; line numbers are physical CSV lines (header = 1).
"""

from __future__ import annotations

from dataclasses import dataclass

RULES: dict[str, str] = {}


def rule(code: str, text: str) -> str:
    """Declare a rule; returns its code for ``problems.add``."""
    if code in RULES and RULES[code] != text:
        raise ValueError(f"rule {code} declared twice")
    RULES[code] = text
    return code


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
    """Collects every problem; the compilers never stop at the first one."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, file: str, line: int, code: str, message: str) -> None:
        assert code in RULES, code
        self.items.append(Problem(file, line, code, message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def sorted(self) -> list[Problem]:
        return sorted(self.items)


class MappingError(Exception):
    """The mappings do not compile; ``problems`` lists every one, sorted by file and line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
