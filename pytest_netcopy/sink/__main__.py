"""``python -m pytest_netcopy.sink``: the local sink process."""

import sys

from pytest_netcopy.sink.main import main

sys.exit(main())
