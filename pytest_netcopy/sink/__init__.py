"""The receiver: ``python -m pytest_netcopy.sink``. Standard library only, importing nothing
from the rest of the package (Python 3.8+); the package imports the wire format from
:mod:`pytest_netcopy.sink.wire`. The protocol, the records, the defences against strangers:
docs/wire-protocol.md.

A peer gets the sink as one source: :data:`PARTS` in this order, with the imports between
them dropped (transport/pipe.py), so a part may use any name an earlier part defines.
"""

#: the sink's modules in the order they are shipped (each may use the names of those before)
PARTS = ("wire", "tcp", "udp", "rr", "main")
