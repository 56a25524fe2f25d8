import sys

from pytest_netcopy.cli import main

sys.exit(main())
