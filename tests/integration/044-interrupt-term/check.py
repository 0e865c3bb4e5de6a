"""The child that wrote child.pid must be gone once drrun exits."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checklib import assert_killed  # noqa: E402

assert_killed("child.pid", "the interrupt did not kill it")
