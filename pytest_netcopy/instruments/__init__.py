"""Instruments: perf_event_open, counters, the user-time sampler, steal, machine facts."""
