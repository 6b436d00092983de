"""pytest plugin: the id of the test that is running, in the file $BABYFAST_TEST_CURRENT names.

`tests/crash_report.sh` sets the variable and, when a native crash kills pytest, says which test it was.
"""
import os

_CURRENT = os.environ.get("BABYFAST_TEST_CURRENT")


def pytest_runtest_logstart(nodeid, location):
    if _CURRENT:
        with open(_CURRENT, "w") as f:
            f.write(nodeid)
