"""How the plugin is used wrongly, and what it says (issue 13): refused at the start, once.

xdist, congestion control names, empty and malformed option values; and what the
terminal summary says about a failed benchmark and a congestion control auto could
not get.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _support import FAST, SWEEP

from pytest_netcopy.plugin.parsers import parse_modes, parse_sizes, parse_threads
from pytest_netcopy.plugin.summary import auto_congestion_note


def wide(text: str) -> str:
    """``text`` with full-width digits ('4096' -> U+FF14 U+FF10 U+FF19 U+FF16)."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in text)


AVAILABLE = Path("/proc/sys/net/ipv4/tcp_available_congestion_control")
XDIST_REFUSAL = "*pytest-netcopy benchmarks cannot run under pytest-xdist*"

# ---------------------------------------------------------------------------
# xdist: one refusal, at the start, exit status 4


def test_benchmarks_under_xdist_are_refused_once_at_the_start(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP, test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--netcopy-sizes=256,1K", "--netcopy-threads=1,2"
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    result.stderr.fnmatch_lines([XDIST_REFUSAL])
    assert output.count("cannot run under pytest-xdist") == 1
    assert "-n0" in output
    for bad in ("INTERNALERROR", "Traceback", "ResourceWarning", "passed", "error"):
        assert bad not in output, bad


def test_a_session_under_xdist_without_netcopy_benchmarks_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="def test_a():\n    pass\n\ndef test_b(benchmark):\n    benchmark(sum, [1])\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK


def test_netcopy_benchmarks_run_with_n0(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess(
        *FAST, "-n", "0", "--netcopy-sizes=256", "--netcopy-threads=1", "--netcopy-modes=two_copy"
    )  # fmt: skip
    result.assert_outcomes(passed=1)


# ---------------------------------------------------------------------------
# congestion control


def available_congestion() -> list[str]:
    return AVAILABLE.read_text().split()


@pytest.mark.skipif(not AVAILABLE.exists(), reason="no /proc congestion control list")
def test_an_unknown_congestion_control_is_a_usage_error_at_the_start(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess("--collect-only", "--netcopy-congestion=nosuch")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    names = " ".join(available_congestion())
    result.stderr.fnmatch_lines(
        ["*--netcopy-congestion='nosuch': not a congestion control this kernel has*auto, system*"]
    )
    assert names in result.stderr.str()
    assert "Traceback" not in result.stderr.str()


@pytest.mark.parametrize("value", ["auto", "system"])
def test_auto_and_system_are_always_accepted(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess("--collect-only", "-q", f"--netcopy-congestion={value}")
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()


#: an inner conftest: the sender sockets get what a non-root account gets
AUTO_GETS_BBR = """
import pytest_netcopy.transport.pool as pool

real = pool.set_congestion

def as_non_root(sock, choice):
    return real(sock, "system" if choice == "auto" else choice)

pool.set_congestion = as_non_root
"""


def test_the_summary_says_when_auto_could_not_get_cubic(pytester: pytest.Pytester) -> None:
    system = Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text().strip()
    if system == "cubic":
        pytest.skip("the system default is cubic: auto cannot miss it")
    pytester.makeconftest(AUTO_GETS_BBR)
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess(
        *FAST, "--netcopy-sizes=1024", "--netcopy-threads=1", "--netcopy-modes=two_copy"
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [f"*netcopy: --netcopy-congestion=auto could not get cubic*{system}*"]
    )


def test_the_auto_note_says_why() -> None:
    assert auto_congestion_note("system", {"bbr"}, "reno bbr", "reno bbr cubic") is None
    assert auto_congestion_note("auto", {"cubic"}, "reno bbr", "reno bbr cubic") is None
    not_allowed = auto_congestion_note("auto", {"bbr"}, "reno bbr", "reno bbr cubic")
    assert not_allowed is not None
    assert "could not get cubic" in not_allowed and "the sender sockets used bbr" in not_allowed
    assert "net.ipv4.tcp_allowed_congestion_control" in not_allowed and "'reno bbr'" in not_allowed
    missing = auto_congestion_note("auto", {"bbr"}, "reno bbr", "reno bbr")
    assert missing is not None
    assert "not available" in missing and "tcp_available_congestion_control" in missing


#: a congestion control the kernel has but refuses this account (as for a non-root one)
REFUSING = """
import pytest_netcopy.transport.pool as pool
from pytest_netcopy.transport.errors import CongestionRefused

real = pool.set_congestion
REFUSE = []

def refusing(sock, choice):
    if REFUSE or choice not in ("auto", "system"):
        raise CongestionRefused(choice, "Operation not permitted")
    return real(sock, choice)

pool.set_congestion = refusing
"""


@pytest.mark.skipif(not AVAILABLE.exists(), reason="no /proc congestion control list")
def test_an_available_but_refused_congestion_control_fails_the_benchmark_naming_the_option(
    pytester: pytest.Pytester,
) -> None:
    name = available_congestion()[0]
    pytester.makeconftest(REFUSING)
    pytester.makepyfile(
        "def test_one(netcopy):\n    netcopy.run('two_copy', size=4096, threads=1)\n"
    )
    result = pytester.runpytest_subprocess(*FAST, f"--netcopy-congestion={name}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [f"*netcopy two_copy 4096 B x 1: --netcopy-congestion={name}: the kernel refused it*"]
    )


# ---------------------------------------------------------------------------
# a failed benchmark in the terminal table

FAILING_SECOND = """
from conftest import REFUSE

def test_ok(netcopy):
    netcopy.run('two_copy', size=4096, threads=1)

def test_refused(netcopy):
    REFUSE.append(True)
    netcopy.run('one_copy', size=4096, threads=1)
"""


def test_a_failed_benchmark_reads_failed_in_the_terminal_table(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(REFUSING)
    pytester.makepyfile(test_two=FAILING_SECOND)
    result = pytester.runpytest_subprocess(*FAST)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*4096 B*1*Gbps*failed*"])
    assert "not run" not in result.stdout.str()


def test_a_single_mode_run_has_no_fastest_mode_legend(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess(
        *FAST, "--netcopy-sizes=1024", "--netcopy-threads=1", "--netcopy-modes=two_copy"
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    assert "ns per message" in result.stdout.str()
    assert "fastest mode" not in result.stdout.str()


# ---------------------------------------------------------------------------
# option values


@pytest.mark.parametrize(
    ("ini", "message"),
    [
        ("netcopy_sizes =", "*ini option netcopy_sizes in *='': expected a non-empty*"),
        ("netcopy_threads = ", "*ini option netcopy_threads in *='': expected a non-empty*"),
        ("netcopy_rounds =", "*ini option netcopy_rounds in *='': expected a whole number*"),
        ("netcopy_pin =", "*ini option netcopy_pin in *='': expected one of auto, off*"),
    ],
)
def test_an_empty_ini_value_is_the_error_an_empty_cli_value_is(
    pytester: pytest.Pytester, ini: str, message: str
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest_subprocess("--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_an_empty_ini_value_an_empty_cli_value_accepts_still_counts_as_unset(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    pytester.makeini("[pytest]\nnetcopy_baseline =\nnetcopy_gate =\n")
    result = pytester.runpytest_subprocess("--collect-only", "-q", "--netcopy-sizes=256")
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()


def test_a_size_over_the_limit_names_the_limit() -> None:
    with pytest.raises(ValueError, match=r"'1G' is not a size.*up to 64 MiB"):
        parse_sizes("1G")


@pytest.mark.parametrize("parse", [parse_sizes, parse_threads, parse_modes])
@pytest.mark.parametrize("text", ["4096,,1024", "4096,", ",4096", "1024, ,2048"])
def test_an_empty_item_in_a_list_is_refused(parse: object, text: str) -> None:
    with pytest.raises(ValueError, match=r"empty item"):
        parse(text)  # type: ignore[operator]


@pytest.mark.parametrize("text", [wide("4096"), "4K," + wide("4096")])
def test_full_width_digits_are_not_a_size(text: str) -> None:
    with pytest.raises(ValueError, match=f"'{wide('4096')}' is not a size.*ASCII digits"):
        parse_sizes(text)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--netcopy-threads", wide("2")),
        ("--netcopy-rounds", wide("10")),
        ("--netcopy-round-time", wide("0.5")),
        ("--netcopy-timeout", wide("60")),
        ("--netcopy-recv-buffer", wide("64K")),
    ],
)
def test_full_width_digits_are_refused_by_every_number_option(
    pytester: pytest.Pytester, option: str, value: str
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess("--collect-only", f"{option}={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{option}='{value}': *ASCII digits*"])


def test_lists_still_take_spaces_and_commas() -> None:
    assert parse_sizes("256, 4K 1024") == [256, 4096, 1024]
    assert parse_threads(" 1 ,2 ") == [1, 2]


def test_a_test_s_own_netcopy_fixture_is_no_benchmark_under_xdist(
    pytester: pytest.Pytester,
) -> None:
    """As in this repository's tests: a fixture, or a parameter, of the same name."""
    pytester.makepyfile(
        test_own="""
        import pytest

        @pytest.fixture
        def netcopy():
            return "the test's own"

        def test_fixture(netcopy):
            assert netcopy == "the test's own"

        @pytest.mark.parametrize("netcopy", [1, 2])
        def test_parameter(netcopy):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=3)
