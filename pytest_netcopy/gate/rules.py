"""The gate's rule grammar: what counts as a regression of one metric.

``METRIC:-N%`` (a drop of more than N percent of the baseline is bad),
``METRIC:+N%`` (a rise), ``METRIC:-N`` / ``METRIC:+N`` (in the metric's own
units), optionally scoped to some modes with ``@MODE/MODE`` or to all modes
but some with ``@-MODE/MODE``. docs/gate.md explains the rules.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["NUMBER_RE", "Rule", "format_rules", "parse_rules"]

_METRIC_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*")
#: a plain non-negative number, as a threshold or a percentage is written
NUMBER_RE = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_MODE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EXPECTED = (
    "expected METRIC:-N% / METRIC:+N% (a drop / a rise of more than N percent of the "
    "baseline is bad) or METRIC:-N / METRIC:+N (in the metric's own units), optionally "
    "followed by @MODE/MODE (only those modes) or @-MODE/MODE (all modes but those), "
    "e.g. 'throughput_gbps:-10%', 'syscalls_per_message:+0' or "
    "'user_cpu_ns_per_byte:+25%@-zero_copy'"
)


@dataclass(frozen=True)
class Rule:
    """What counts as a regression of one metric.

    ``direction`` is +1 when a rise is bad (costs: ``cpu_ns_per_byte``) and -1
    when a drop is bad (``throughput_gbps``). ``threshold`` (>= 0) is in
    percent of the baseline when ``percent``, else in the metric's units; a
    change must be *more* than it to count, so ``+0`` means any rise.
    """

    metric: str
    direction: int
    threshold: float
    percent: bool
    #: the modes the rule applies to (empty: every mode), or with ``except_modes``
    #: the modes it does not apply to
    modes: tuple[str, ...] = ()
    except_modes: bool = False

    def __post_init__(self) -> None:
        if self.direction not in (1, -1):
            raise ValueError(f"Rule.direction must be +1 or -1, not {self.direction!r}")
        if not _METRIC_RE.fullmatch(self.metric):
            raise ValueError(f"Rule.metric {self.metric!r} is not a metric name")
        if not math.isfinite(self.threshold) or self.threshold < 0:
            raise ValueError(f"Rule.threshold must be a finite number >= 0, not {self.threshold}")
        object.__setattr__(self, "threshold", float(self.threshold) + 0.0)  # no -0.0
        if isinstance(self.modes, str):
            raise ValueError(f"Rule.modes {self.modes!r}: expected a tuple of mode names")
        modes = tuple(self.modes)
        if any(not isinstance(m, str) or not _MODE_RE.fullmatch(m) for m in modes):
            raise ValueError(f"Rule.modes {self.modes!r}: expected mode names")
        if len(set(modes)) != len(modes):
            raise ValueError(f"Rule.modes {self.modes!r}: a mode is named twice")
        object.__setattr__(self, "modes", modes)
        if self.except_modes and not self.modes:
            raise ValueError("Rule.except_modes needs the modes to leave out")

    def __str__(self) -> str:
        sign = "+" if self.direction > 0 else "-"
        scope = ""
        if self.modes:
            scope = "@" + ("-" if self.except_modes else "") + "/".join(self.modes)
        return f"{self.metric}:{sign}{self._threshold_text}{scope}"

    def applies_to(self, mode: str) -> bool:
        """Whether the rule judges benchmarks of ``mode``."""
        if not self.modes:
            return True
        return (mode in self.modes) != self.except_modes

    @property
    def limit(self) -> float:
        """The threshold as a fraction of the baseline (percent rules) or in units."""
        return self.threshold / 100.0 if self.percent else self.threshold

    @property
    def figure(self) -> str:
        """The top-level extra_info key the metric is read from (``control`` of ``control.x``)."""
        return self.metric.split(".")[0]

    @property
    def bad_way(self) -> str:
        """``'rise'`` or ``'drop'``: the way the metric must not go."""
        return "rise" if self.direction > 0 else "drop"

    @property
    def _threshold_text(self) -> str:
        return f"{_format_float(self.threshold)}{'%' if self.percent else ''}"

    def describe(self) -> str:
        scope = ""
        if self.modes:
            scope = f" ({'not for' if self.except_modes else 'only for'} {', '.join(self.modes)})"
        if self.threshold == 0:
            return f"any {self.bad_way} of {self.metric} is bad{scope}"
        return (
            f"a {self.bad_way} of {self.metric} by more than {self._threshold_text} is bad{scope}"
        )


def _format_float(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _parse_scope(scope: str, bad: Callable[[str], ValueError]) -> tuple[tuple[str, ...], bool]:
    """``two_copy/one_copy`` -> (modes, False); ``-zero_copy`` -> (modes, True)."""
    except_modes = scope.startswith("-")
    names = scope[1:] if except_modes else scope
    modes = tuple(names.split("/")) if names else ()
    if not modes or any(not _MODE_RE.fullmatch(m) for m in modes):
        raise bad(f"{scope!r} after '@' is not a list of modes such as two_copy/one_copy")
    if len(set(modes)) != len(modes):
        raise bad(f"{scope!r} after '@' names a mode twice")
    return modes, except_modes


def _parse_rule(token: str) -> Rule:
    def bad(why: str) -> ValueError:
        return ValueError(f"bad gate rule {token!r}: {why}; {_EXPECTED}")

    metric, colon, spec = token.partition(":")
    spec, at, scope = spec.partition("@")
    modes, except_modes = _parse_scope(scope, bad) if at else ((), False)
    if not colon:
        raise bad("no ':' between the metric and its threshold")
    if not _METRIC_RE.fullmatch(metric):
        raise bad(f"{metric!r} is not a metric name (letters, digits, '_', '.')")
    if not spec or spec[0] not in "+-":
        raise bad("the threshold needs a sign: '-' (a drop is bad) or '+' (a rise is bad)")
    percent = spec.endswith("%")
    number = spec[1:-1] if percent else spec[1:]
    if not NUMBER_RE.fullmatch(number):
        raise bad(f"{number!r} is not a plain non-negative number")
    value = float(number)
    if not math.isfinite(value):
        raise bad(f"{number!r} is too large")
    return Rule(metric, 1 if spec[0] == "+" else -1, value, percent, modes, except_modes)


def parse_rules(text: str) -> list[Rule]:
    """Parse rules separated by spaces, commas or newlines (an ini value works as is).

    Raises ValueError naming the bad token and the expected form. Empty text
    gives an empty list (the caller decides whether that means the defaults).
    """
    rules: list[Rule] = []
    for token in re.split(r"[\s,]+", text.strip()):
        if not token:
            continue
        rule = _parse_rule(token)
        for other in rules:
            if (other.metric, other.direction) == (rule.metric, rule.direction) and (
                _scopes_overlap(other, rule)
            ):
                where = "" if not (rule.modes or other.modes) else " for the same modes"
                raise ValueError(
                    f"bad gate rule {token!r}: a rule for a {rule.bad_way} of {rule.metric} is "
                    f"given twice{where} ({other})"
                )
        rules.append(rule)
    return rules


def _scopes_overlap(a: Rule, b: Rule) -> bool:
    """Whether some mode would be judged by both rules."""
    if not a.modes or not b.modes:
        return True
    if a.except_modes and b.except_modes:
        return True  # every mode neither list names
    if not a.except_modes and not b.except_modes:
        return bool(set(a.modes) & set(b.modes))
    only, but = (a, b) if not a.except_modes else (b, a)
    return not set(only.modes) <= set(but.modes)


def format_rules(rules: Sequence[Rule]) -> str:
    """The rules as ``parse_rules`` reads them: ``parse_rules(format_rules(r)) == r``."""
    return " ".join(str(rule) for rule in rules)
