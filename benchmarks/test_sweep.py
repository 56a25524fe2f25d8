"""The sweep: every message size x thread count x send mode, on loopback.

Run with ``pytest benchmarks/``; narrow it with --netcopy-sizes,
--netcopy-threads and --netcopy-modes (see ``pytest --help``).
"""


def test_send_path(netcopy, netcopy_mode, netcopy_size, netcopy_threads):
    result = netcopy.run(netcopy_mode, size=netcopy_size, threads=netcopy_threads)
    assert result.intact
