"""Zero-copy completion accounting: coalesced, wrapping, out-of-order ranges."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_netcopy.send.zerocopy import (
    IP_RECVERR,
    SO_EE_ORIGIN_ZEROCOPY,
    SOL_IP,
    CompletionTracker,
    Notification,
    ZeroCopyError,
    parse_errqueue_cmsgs,
)

MASK = 0xFFFFFFFF


def split_ranges(draw: st.DrawFn, start: int, total: int) -> list[tuple[int, int]]:
    """Cut ids start..start+total-1 into consecutive coalesced ranges."""
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, total - 1)), max_size=12))))
    bounds = [0, *[c for c in cuts if c < total], total]
    return [(start + a, start + b - 1) for a, b in itertools.pairwise(bounds) if b > a]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[int, int, list[tuple[int, int, bool]]]:
    # pretend `prior` sends already happened, so ids wrap past 2**32
    prior = draw(st.one_of(st.just(0), st.integers(2**32 - 50, 2**32 + 50)))
    total = draw(st.integers(1, 300))
    ranges = split_ranges(draw, prior, total)
    order = draw(st.permutations(ranges))
    notes = [(lo, hi, draw(st.booleans())) for lo, hi in order]
    return prior, total, notes


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_every_send_is_counted_once(scenario: tuple[int, int, list[tuple[int, int, bool]]]) -> None:
    prior, total, notes = scenario
    tracker = CompletionTracker()
    tracker.issued = tracker.done_below = prior
    tracker.completions = prior
    for _ in range(total):
        tracker.issue()
    copied = 0
    for lo, hi, was_copied in notes:
        assert not tracker.all_complete()
        tracker.add(Notification(lo & MASK, hi & MASK, was_copied))
        copied += (hi - lo + 1) if was_copied else 0
    assert tracker.all_complete()
    assert tracker.completions - prior == total
    assert tracker.copied == copied
    assert tracker.notifications == len(notes)
    assert tracker.done_below == prior + total


def test_low_water_mark_waits_for_the_gap() -> None:
    t = CompletionTracker()
    for _ in range(10):
        t.issue()
    t.add(Notification(5, 9, False))
    assert t.done_below == 0  # 0..4 still out: their buffers may not be rewritten
    t.add(Notification(0, 4, True))
    assert t.done_below == 10 and t.copied == 5


def test_a_range_that_wraps_past_2_32() -> None:
    t = CompletionTracker()
    t.issued = t.done_below = t.completions = 2**32 - 2
    for _ in range(4):
        t.issue()
    assert t.add(Notification(MASK - 1, 1, False)) == 4  # ids ...fffe, ffff, 0, 1
    assert t.all_complete()


def test_impossible_notifications_are_errors() -> None:
    t = CompletionTracker()
    t.issue()
    with pytest.raises(ZeroCopyError, match="only 1 sends issued"):
        t.add(Notification(0, 1, False))
    t.add(Notification(0, 0, False))
    with pytest.raises(ZeroCopyError, match="completed twice"):
        t.add(Notification(0, 0, False))


def test_parse_errqueue_cmsgs() -> None:
    ok = struct.pack("=IBBBBII", 0, SO_EE_ORIGIN_ZEROCOPY, 0, 1, 0, 3, 9) + bytes(16)
    assert parse_errqueue_cmsgs([(SOL_IP, IP_RECVERR, ok)]) == [Notification(3, 9, True)]
    bad = struct.pack("=IBBBBII", 111, 2, 0, 0, 0, 0, 0)
    with pytest.raises(ZeroCopyError, match="errno 111"):
        parse_errqueue_cmsgs([(SOL_IP, IP_RECVERR, bad)])
