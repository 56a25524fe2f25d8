"""The words that say how a count came to be (or why there is none), and a counted value.

One list for the perf counters (:mod:`.counters`) and the user-mode samplers
(:mod:`.usertime`): both write these words into the results, where readers
and the gate compare them as text.
"""

from __future__ import annotations

from typing import TypedDict

#: counted in full
OK = "ok"
#: counted part of the time (multiplexed) and scaled to the whole
SCALED = "scaled"
#: counted in user mode only: the kernel refused kernel-side counting (never task-clock,
#: which counts all CPU time whatever exclude_kernel says)
USER_ONLY = "user-only"
#: opened, but nothing counted (never ran, or failed on the way)
NOT_COUNTED = "not counted"
#: this kernel or machine has no such event
NOT_SUPPORTED = "not supported"
#: the kernel refused to open it
NOT_PERMITTED = "not permitted"
#: the kernel throttled a sampler: samples are missing
THROTTLED = "throttled"
#: a sampler's ring buffer dropped samples
LOST = "lost"

#: what a counter's status may be
STATUSES = (OK, SCALED, NOT_COUNTED, NOT_SUPPORTED, NOT_PERMITTED, USER_ONLY)


class CounterValue(TypedDict):
    value: float | None
    status: str
    running_fraction: float | None
