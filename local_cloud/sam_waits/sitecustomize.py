"""Started with every SAM CLI the local cloud runs (``sam_environment`` puts this folder on PYTHONPATH).

SAM's stack waiters sleep 30 s between DescribeStacks calls, hard-coded where ``SAM_CLI_POLL_DELAY`` does not reach
(``sam delete`` waits for the delete that way): on AWS a delete takes minutes, on the local cloud a few seconds, so
each delete would sit idle for most of 30 s. Here botocore's waiters sleep at most ``SAM_CLI_POLL_DELAY`` seconds
between their calls; SAM makes the same calls in the same order, only the pauses are shorter.
"""

import os
import time
import types

try:
    import botocore.waiter
except ImportError:  # not a Python with botocore: nothing to shorten
    pass
else:
    _longest = float(os.environ.get("SAM_CLI_POLL_DELAY", "0.5"))
    botocore.waiter.time = types.SimpleNamespace(
        sleep=lambda seconds: time.sleep(min(seconds, _longest)))
