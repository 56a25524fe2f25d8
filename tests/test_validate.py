"""Result files with values of the wrong type or range: one line naming the file, the
benchmark, the key and what was expected (``RunFileError``), never a traceback.

The property tests feed the loader arbitrary JSON and arbitrary mutations of a real run:
each either loads as valid results or raises ``RunFileError``, nothing else.
"""

from __future__ import annotations

import copy
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_netcopy import cli
from pytest_netcopy.report.csvout import write_csv
from pytest_netcopy.report.document import render_report
from pytest_netcopy.results.runs import RunFileError, load_run

DATA = Path(__file__).parent / "data"
REAL = DATA / "runs" / "real_run.json"
REAL_DATA: dict[str, Any] = json.loads(REAL.read_text(encoding="utf-8"))
FIRST = "test_send_path[two_copy-256B-1t]"


def _mutated(key: str, value: Any, index: int = 0) -> dict[str, Any]:
    data = copy.deepcopy(REAL_DATA)
    data["benchmarks"][index]["extra_info"][key] = value
    return data


# (what the file holds, what the one line must say after the file name)
EXAMPLES = [
    pytest.param(
        _mutated("size", math.nan),
        "size=nan: expected an integer >= 64, a multiple of 8",
        id="size-nan",
    ),
    pytest.param(
        _mutated("size", [256]),
        "size=[256]: expected an integer >= 64, a multiple of 8",
        id="size-list",
    ),
    pytest.param(
        _mutated("size", "256"),
        "size='256': expected an integer >= 64, a multiple of 8",
        id="size-string",
    ),
    pytest.param(_mutated("threads", "x"), "threads='x': expected an integer >= 1", id="threads-x"),
    pytest.param(
        _mutated("throughput_gbps", "fast"),
        "throughput_gbps='fast': expected a finite number >= 0",
        id="throughput-fast",
    ),
    pytest.param(
        _mutated("throughput_gbps", math.inf),
        "throughput_gbps=inf: expected a finite number >= 0",
        id="throughput-inf",
    ),
    pytest.param(
        _mutated("counters", [1, 2]),
        "counters=[1, 2]: expected an object",
        id="counters-list",
    ),
]


@pytest.mark.parametrize("command", ["report", "csv", "plot"])
@pytest.mark.parametrize(("data", "expected"), EXAMPLES)
def test_wrong_values_give_one_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    command: str,
    data: dict[str, Any],
    expected: str,
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    argv = [command, str(path)] + (["-o", str(tmp_path / "plots")] if command == "plot" else [])
    status = cli.main(argv)
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert err == f"netcopy {command}: error: {path}: benchmark {FIRST}: {expected}\n"
    assert not (tmp_path / "plots").exists()


def test_two_benchmarks_with_the_same_key_name_both(tmp_path: Path) -> None:
    data = copy.deepcopy(REAL_DATA)
    first, second = data["benchmarks"][0], data["benchmarks"][1]
    key = ("mode", "size", "threads")
    assert [first["extra_info"][k] for k in key] != [second["extra_info"][k] for k in key]
    for k in key:
        second["extra_info"][k] = first["extra_info"][k]
    path = tmp_path / "dup.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(RunFileError) as info:
        load_run(path)
    message = str(info.value)
    assert message == (
        f"{path}: benchmark {second['name']}: (mode, size, threads)=('two_copy', 256, 1): "
        f"expected one benchmark per (mode, size, threads), also in benchmark {first['name']}"
    )


INTEGRITY = "an object with a bool 'ok' (or, transmit only, a null 'ok' and a 'note')"
ZEROCOPY = "an object whose copied_fraction is null or a number in 0..1"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("netcopy_schema", True, "an integer >= 1"),
        ("mode", "", "a non-empty string"),
        ("size", True, "an integer >= 64, a multiple of 8"),
        ("size", 260, "an integer >= 64, a multiple of 8"),
        ("size", 32, "an integer >= 64, a multiple of 8"),
        ("threads", 0, "an integer >= 1"),
        ("messages_per_round", -1, "an integer >= 0"),
        ("bytes_per_round", 1.5, "an integer >= 0"),
        ("throughput_gbps_per_connection", None, "a finite number >= 0"),
        ("ns_per_message", -3.0, "a finite number >= 0"),
        ("rounds", [], "an object of lists of finite numbers or null"),
        ("integrity", {"verified_bytes": 1}, INTEGRITY),
        ("integrity", {"ok": None, "verified_bytes": 0}, INTEGRITY),
        ("sink_counters", "none", "an object"),
        ("zerocopy", 3, ZEROCOPY),
        ("zerocopy", {"completions": 2, "copied": 3, "copied_fraction": 1.5}, ZEROCOPY),
        ("zerocopy_effective", None, "true or false"),
        ("target", "nowhere", "'sink' or 'blackhole'"),
        ("tcp_nodelay", [], "true or false"),
        (
            "placement",
            {"pinned": True, "sender_cpus": [[0]], "sink_cpus": [1]},
            "an object with lists of CPU numbers sender_cpus, sink_cpus and a bool pinned",
        ),
    ],
)
def test_each_checked_key(tmp_path: Path, key: str, value: Any, expected: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_mutated(key, value)), encoding="utf-8")
    with pytest.raises(RunFileError) as info:
        load_run(path)
    assert str(info.value) == f"{path}: benchmark {FIRST}: {key}={value!r}: expected {expected}"


def test_a_round_value_that_is_not_a_number(tmp_path: Path) -> None:
    data = copy.deepcopy(REAL_DATA)
    data["benchmarks"][0]["extra_info"]["rounds"]["seconds"][1] = "slow"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(RunFileError, match=r"benchmark .*: rounds\.seconds="):
        load_run(path)


@pytest.mark.parametrize(
    "path",
    [
        *sorted((DATA / "runs").glob("*.json")),
        *(DATA / "gate" / name for name in ("baseline.json", "rerun.json", "slower.json")),
        DATA / "gate" / "other_machine.json",
    ],
    ids=lambda p: p.name,
)
def test_files_written_by_pytest_netcopy_still_load(path: Path) -> None:
    run = load_run(path)
    # one benchmark per (mode, size, threads) and variant (a stream and an rr may share a key)
    assert len({(r.key, r.variant) for r in run.results}) == len(run.results)


# ---------------------------------------------------------------------------
# properties

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _loads_or_one_line(tmp_path: Path, data: Any) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    try:
        run = load_run(path)
    except RunFileError as exc:
        message = str(exc)
        assert message.startswith(f"{path}: ")
        assert "\n" not in message and "\r" not in message
        return
    keys = run.by_key()
    assert len(keys) == len(run.results)
    for result in run.results:
        assert isinstance(result.mode, str) and result.mode
        assert result.size >= 64 and result.threads >= 1
    # what loads, netcopy report and csv can show
    render_report([run], fmt="github", counters="all")
    write_csv([r.extra for r in run.results], io.StringIO())


@PROPERTY
@given(data=json_values)
def test_arbitrary_json(tmp_path: Path, data: Any) -> None:
    _loads_or_one_line(tmp_path, data)


@PROPERTY
@given(data=st.dictionaries(st.sampled_from(["benchmarks", "machine_info"]), json_values))
def test_arbitrary_json_objects(tmp_path: Path, data: Any) -> None:
    _loads_or_one_line(tmp_path, data)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place inside a JSON value (dict keys and list indices), depth first."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


FIRST_TWO = {"benchmarks": copy.deepcopy(REAL_DATA["benchmarks"][:2])}
PLACES = [p for p in _paths(FIRST_TWO) if p]


@PROPERTY
@given(
    places=st.lists(st.sampled_from(PLACES), min_size=1, max_size=3),
    values=st.lists(json_values, min_size=3, max_size=3),
    delete=st.lists(st.booleans(), min_size=3, max_size=3),
)
def test_arbitrary_mutations_of_a_real_run(
    tmp_path: Path, places: list[tuple[Any, ...]], values: list[Any], delete: list[bool]
) -> None:
    data = copy.deepcopy(REAL_DATA)
    for place, value, remove in zip(places, values, delete, strict=False):
        parent: Any = data
        try:
            for step in place[:-1]:
                parent = parent[step]
            if remove and isinstance(parent, dict):
                parent.pop(place[-1], None)
            else:
                parent[place[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced the way there
    _loads_or_one_line(tmp_path, data)


def test_an_integer_too_long_to_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    path.write_text('{"benchmarks": [' + "9" * 5000 + "]}", encoding="utf-8")
    with pytest.raises(RunFileError, match=r"is not usable JSON") as info:
        load_run(path)
    assert "\n" not in str(info.value)


def test_a_name_that_is_not_one_line(tmp_path: Path) -> None:
    data = _mutated("threads", "x")
    data["benchmarks"][0]["name"] = "two\nlines"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(RunFileError) as info:
        load_run(path)
    assert str(info.value) == (
        f"{path}: benchmark benchmarks[0] (name 'two\\nlines'): threads='x': "
        "expected an integer >= 1"
    )
