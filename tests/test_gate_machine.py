"""results/machine.py: the machine facts of a saved run, read out of its machine_info."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_netcopy.results.machine import (
    COMPARED_FACTS,
    CPU_COUNT,
    CPU_MODEL,
    KERNEL_RELEASE,
    differing_facts,
    fact_text,
    netcopy_facts,
    recorded_fact,
)

PYTEST_BENCHMARK = {"release": "6.8.0", "cpu": {"brand_raw": "EPYC", "count": 4}}


def test_netcopy_facts_come_first_then_pytest_benchmark_facts() -> None:
    info = dict(PYTEST_BENCHMARK, netcopy={"cpu_model": "Xeon", "cpu_count": None})
    assert recorded_fact(info, CPU_MODEL) == "Xeon"
    assert recorded_fact(info, CPU_COUNT) == 4  # null in netcopy's: pytest-benchmark's
    assert recorded_fact(info, KERNEL_RELEASE) == "6.8.0"
    assert recorded_fact({}, KERNEL_RELEASE) is None
    keys = [f.key for f in COMPARED_FACTS]
    assert keys[:3] == ["kernel_release", "cpu_model", "cpu_count"]
    assert {"link.sender.mtu", "link.peer.interface", "link.peer.tso"} <= set(keys)  # issue 14


@pytest.mark.parametrize(
    ("netcopy", "expected"),
    [
        ({"cpu_count": 8}, "8"),
        ({"cpu_count": " 8 "}, "8"),
        ({"cpu_count": ""}, None),
        ({"cpu_count": {"n": 8}}, None),
        ({"cpu_count": [8]}, None),
    ],
)
def test_fact_text_is_stripped_text_or_none(netcopy: dict[str, Any], expected: str | None) -> None:
    assert fact_text({"netcopy": netcopy}, CPU_COUNT) == expected


def test_a_netcopy_section_that_is_not_an_object_is_ignored() -> None:
    assert netcopy_facts({"netcopy": "x"}) == {}
    assert recorded_fact(dict(PYTEST_BENCHMARK, netcopy="x"), CPU_MODEL) == "EPYC"
    assert recorded_fact({"cpu": "x"}, CPU_MODEL) is None


def test_differing_facts_need_both_sides() -> None:
    old = {"netcopy": {"kernel_release": "6.1.0", "cpu_model": "Xeon", "cpu_count": 8}}
    assert [(d.fact, d.baseline, d.current) for d in differing_facts(old, PYTEST_BENCHMARK)] == [
        ("kernel_release", "6.1.0", "6.8.0"),
        ("cpu_model", "Xeon", "EPYC"),
        ("cpu_count", "8", "4"),
    ]
    assert str(differing_facts(old, PYTEST_BENCHMARK)[1]) == (
        "cpu_model 'Xeon' (baseline) vs 'EPYC' (current)"
    )
    assert differing_facts(old, {}) == []
    assert differing_facts(old, old) == []
