"""How many messages make a round last the target: probe rounds, then warm-up rounds."""

from __future__ import annotations

import math
from collections.abc import Callable

from pytest_netcopy.transport.errors import TransferError
from pytest_netcopy.transport.pool import SenderPool

#: bytes per connection in the first calibration round
CALIBRATION_START_BYTES = 256 * 1024
CALIBRATION_STEPS = 10
#: a calibration round at least this fraction of the target measures the rate well enough
CALIBRATION_PROBE = 0.25
#: aim this much above the target, so a round lasts at least about the target
CALIBRATION_MARGIN = 1.05


def calibrate(pool: SenderPool, target: float, size: int, *, control: bool = False) -> int:
    """Messages per connection so that one round lasts at least about ``target`` seconds.

    ``control=True`` calibrates the pool's control rounds instead.
    """
    start = max(8, math.ceil(CALIBRATION_START_BYTES / size))
    return messages_for(lambda n: pool.run_round(n, control=control).seconds, target, start)


def messages_for(run: Callable[[int], float], target: float, start: int) -> int:
    """The message count for rounds of ``target`` seconds, from as few probe rounds as will do.

    ``run(n)`` runs a round of ``n`` messages and returns its seconds. Rounds
    grow (at most 64x a step) until one lasts :data:`CALIBRATION_PROBE` of
    the target; its rate then sets the count (plus :data:`CALIBRATION_MARGIN`).
    The probes aim at half a round: :func:`warm_up` runs the first whole round
    at this count and lengthens it if it comes out short. Raises TransferError
    when no probe gets long enough (rounds that do not grow with the count).
    """
    n = last = start
    seconds = 0.0
    for _ in range(CALIBRATION_STEPS):
        last, seconds = n, max(run(n), 1e-6)
        if seconds >= CALIBRATION_PROBE * target:
            return max(1, math.ceil(n * CALIBRATION_MARGIN * target / seconds))
        # aim the next probe at twice the threshold: clear of it, still short of a round
        n = math.ceil(n * min(64.0, 2 * CALIBRATION_PROBE * target / seconds))
    raise TransferError(
        f"calibration: {CALIBRATION_STEPS} probe rounds, the last {last} messages per "
        f"connection in {seconds * 1e3:.3g} ms, never reached "
        f"{CALIBRATION_PROBE * target * 1e3:.3g} ms: rounds do not get longer with more "
        "messages (does the send function send them?)"
    )


def lengthen(count: int, seconds: float, target: float) -> int:
    """The count for a round of ``count`` messages that lasted ``seconds``: longer if short.

    Never shorter: one disturbed, slow round must not cut every round after it.
    At most 64x, as a calibration step.
    """
    if seconds >= target:
        return count
    return math.ceil(count * min(64.0, CALIBRATION_MARGIN * target / max(seconds, 1e-6)))


def warm_up(
    run: Callable[[int, bool], float],
    count: int,
    control_count: int | None,
    rounds: int,
    target: float,
) -> tuple[int, int | None]:
    """Warm-up rounds at the calibrated counts; each lengthens a count that came out short.

    ``run(n, control)`` runs a round and returns its seconds. At least one
    round runs even for ``rounds=0``: the probes stop short of a whole round,
    so the first whole round belongs to the calibration. A short probe
    underrates the rate where a round has a fixed cost (threads to wake, acks,
    the end-of-round push). The control count (None: no control) never drops
    below the mode's.
    """
    for _ in range(max(1, rounds)):
        count = lengthen(count, run(count, False), target)
        if control_count is not None:
            control_count = max(count, lengthen(control_count, run(control_count, True), target))
    return count, control_count
