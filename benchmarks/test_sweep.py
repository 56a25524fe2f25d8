"""The sweep: every message size x thread count x send mode, on loopback; streams, then
request/response (at the --netcopy-rr-threads counts, at each --netcopy-rr-rate if given).

Run with ``pytest benchmarks/``; narrow it with --netcopy-sizes, --netcopy-threads,
--netcopy-modes, --netcopy-patterns and --netcopy-rr-threads (see ``pytest --help``).
netcopy.run() takes the pattern and rate from the parametrization, as it takes the rest.
"""


def test_send_path(
    netcopy, netcopy_pattern, netcopy_mode, netcopy_size, netcopy_threads, netcopy_rr_rate
):
    result = netcopy.run(netcopy_mode, size=netcopy_size, threads=netcopy_threads)
    assert result.intact
