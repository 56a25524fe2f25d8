"""The control send (bare_send) and the *_vs_control figures built from it."""

from __future__ import annotations

import socket
import statistics
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_netcopy.bench.figures import control_figures
from pytest_netcopy.send.builtin import BareSend, builtin_registry
from pytest_netcopy.sink import wire as sink
from pytest_netcopy.transport.local import SinkProcess
from pytest_netcopy.transport.pool import RoundResult, SenderPool

SIZE = 4096


def sent_bytes(mode_name: str, size: int, first: int, count: int) -> bytes:
    """What a mode's sender puts on a real socket for messages first..first+count-1."""
    mode = BareSend() if mode_name == "bare_send" else builtin_registry().get(mode_name)
    a, b = socket.socketpair()
    got = bytearray()

    def drain() -> None:
        while chunk := b.recv(1 << 16):
            got.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        sender = mode.sender(a, 7, size)
        sender.send(first, count)
        sender.finish(5.0)
        sender.close()
        a.shutdown(socket.SHUT_WR)
        reader.join(10)
        assert not reader.is_alive()
    finally:
        a.close()
        b.close()
    return bytes(got)


@pytest.mark.parametrize("size", [64, 4096, 65536])
def test_the_control_sends_exactly_what_two_copy_sends(size: int) -> None:
    first = 2**32 - 3  # the stamp wraps inside the round
    bare = sent_bytes("bare_send", size, first, 6)
    assert bare == sent_bytes("two_copy", size, first, 6)
    verifier = sink.Verifier(7, size, capacity=6 * size)
    assert verifier.check(bytearray(bare), 6, first & 0xFFFFFFFF) is None


def test_the_control_is_not_a_mode_to_choose() -> None:
    assert "bare_send" not in builtin_registry()


def rnd(seconds: float) -> RoundResult:
    return RoundResult(seconds=seconds, messages=10, bytes=10 * SIZE, acks=[])


def gbps(seconds: float) -> float:
    return 10 * SIZE * 8 / seconds / 1e9


def test_each_round_is_divided_by_the_median_of_the_controls_nearby() -> None:
    # control i runs just before round i, control i+1 just after it
    rounds = [rnd(0.010), rnd(0.020), rnd(0.010), rnd(0.010)]
    controls = [rnd(0.005), rnd(0.010), rnd(0.020), rnd(0.008), rnd(0.004)]
    cpu = [2.0, 3.0, 4.0, 5.0]
    control_cpu = [1.0, 2.0, 4.0, 3.0, 9.0]
    out = control_figures(rounds, cpu, controls, control_cpu)
    c = [gbps(r.seconds) for r in controls]
    near = [  # controls i-1 .. i+2, as far as they exist
        statistics.median(c[0:3]),
        statistics.median(c[0:4]),
        statistics.median(c[1:5]),
        statistics.median(c[2:5]),
    ]
    own = [gbps(r.seconds) for r in rounds]
    tp = out["rounds"]["throughput_vs_control"]
    assert tp == pytest.approx([o / n for o, n in zip(own, near, strict=True)])
    assert out["rounds"]["cpu_vs_control"] == pytest.approx([2 / 2, 3 / 2.5, 4 / 3.5, 5 / 4])
    assert out["throughput_vs_control"] == pytest.approx(statistics.median(tp))
    assert out["cpu_vs_control"] == pytest.approx(statistics.median([1, 3 / 2.5, 4 / 3.5, 5 / 4]))
    control = out["control"]
    assert control["mode"] == "bare_send"
    assert control["throughput_gbps"] == pytest.approx(statistics.median(c))
    assert control["cpu_ns_per_byte"] == 3.0
    assert control["rounds"]["throughput_gbps"] == pytest.approx(c)


def test_control_rounds_of_another_length_count_their_own_bytes() -> None:
    rounds = [rnd(0.010)] * 2
    longer = [RoundResult(seconds=0.010, messages=30, bytes=30 * SIZE, acks=[])] * 3
    out = control_figures(rounds, None, longer, None)
    assert out["control"]["throughput_gbps"] == pytest.approx(3 * gbps(0.010))
    assert out["control"]["messages_per_round"] == 30
    assert out["throughput_vs_control"] == pytest.approx(1 / 3)


def test_one_disturbed_control_round_does_not_move_the_ratios() -> None:
    rounds = [rnd(0.012)] * 6
    steady = [rnd(0.010)] * 7
    disturbed = [*steady[:3], rnd(0.030), *steady[4:]]  # one control round 3x slower
    calm = control_figures(rounds, None, steady, None)
    hit = control_figures(rounds, None, disturbed, None)
    assert hit["rounds"]["throughput_vs_control"] == pytest.approx(
        calm["rounds"]["throughput_vs_control"]
    )


def test_a_round_without_cpu_on_either_side_has_no_cpu_ratio_not_a_zero() -> None:
    rounds = [rnd(0.01)] * 3
    controls = [rnd(0.01)] * 4
    out = control_figures(rounds, [2.0, None, 2.0], controls, [1.0, None, None, None])
    # round 2's nearby controls (1..3) are all uncounted: no ratio, not a zero
    assert out["rounds"]["cpu_vs_control"] == [2.0, None, None]
    assert out["cpu_vs_control"] == 2.0
    none = control_figures(rounds, None, controls, None)
    assert none["cpu_vs_control"] is None
    assert none["rounds"]["cpu_vs_control"] is None
    assert none["control"]["cpu_ns_per_byte"] is None


def test_the_controls_must_bracket_every_round() -> None:
    with pytest.raises(ValueError, match="3 control rounds for 3 rounds"):
        control_figures([rnd(0.01)] * 3, None, [rnd(0.01)] * 3, None)


@settings(max_examples=50, deadline=None)
@given(
    machine=st.lists(st.floats(0.3, 3.0), min_size=3, max_size=12),
    cost=st.floats(1.0, 4.0),
)
def test_a_machine_speed_shared_by_both_cancels_out(machine: list[float], cost: float) -> None:
    """If the machine's speed steps between spells, each spell four rounds long, and the
    measured mode always costs ``cost`` times the control, every round whose nearby
    control rounds share its spell gets exactly that ratio."""
    speeds = [s for s in machine for _ in range(4)]  # control i and round i share a spell
    n = len(speeds) - 1
    controls = [rnd(0.01 * s) for s in speeds]
    rounds = [rnd(0.01 * cost * speeds[i]) for i in range(n)]
    cpu = [cost * speeds[i] for i in range(n)]
    control_cpu = list(speeds)
    out = control_figures(rounds, cpu, controls, control_cpu)
    for i in range(n):
        if len({speeds[j] for j in range(max(0, i - 1), min(i + 3, n + 1))}) == 1:
            assert out["rounds"]["throughput_vs_control"][i] == pytest.approx(1 / cost)
            assert out["rounds"]["cpu_vs_control"][i] == pytest.approx(cost)


@pytest.mark.parametrize("mode", ["two_copy", "one_copy", "zero_copy"])
def test_control_rounds_share_the_connections_and_the_sequence(mode: str) -> None:
    """Measured and control rounds alternate on the same sockets; the sink checks every
    byte and that the stamps run on without a gap, to a clean end."""
    sink = SinkProcess(timeout=20)
    sink.ensure_running()
    try:
        with SenderPool(
            sink, builtin_registry().get(mode), SIZE, 2, timeout=20, control=BareSend()
        ) as pool:
            for control in (False, True, False, True, True):
                result = pool.run_round(50, control=control)
                assert result.verified_bytes == 2 * 50 * SIZE
                assert all(ack.ok for ack in result.acks)
            assert sink._next_conn == 2  # the control opened no connections of its own
            if mode == "zero_copy":  # the 3 control rounds did not go through zero_copy
                assert all(s.stats() == {**s.stats(), "sends": 100} for s in pool.senders)
            pool.finish_stream()  # raises unless both streams ended cleanly
    finally:
        sink.close()


def test_a_pool_without_a_control_refuses_a_control_round() -> None:
    sink = SinkProcess(timeout=20)
    sink.ensure_running()
    try:
        with SenderPool(sink, builtin_registry().get("two_copy"), SIZE, 1, timeout=20) as pool:
            with pytest.raises(ValueError, match="no control mode"):
                pool.run_round(10, control=True)
            pool.run_round(10)
            pool.finish_stream()
    finally:
        sink.close()
