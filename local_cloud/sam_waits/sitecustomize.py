"""Started with every SAM CLI the local cloud runs (``sam_environment`` puts this folder on PYTHONPATH).

SAM's stack waiters sleep 30 s between DescribeStacks calls, hard-coded where ``SAM_CLI_POLL_DELAY`` does not reach
(``sam delete`` waits for the delete that way): on AWS a delete takes minutes, on the local cloud a few seconds, so
each delete would sit idle for most of 30 s. Here botocore's waiters sleep at most ``SAM_CLI_POLL_DELAY`` seconds
between their calls; SAM makes the same calls in the same order, only the pauses are shorter.

``sam deploy`` also writes the template it packaged as YAML and reads it back twice with ``yaml.safe_load``, PyYAML's
pure-Python parser: 0.4 s of CPU each for this application's template. Here ``yaml.safe_load`` parses with libyaml
(when PyYAML has it) and constructs with ``SafeLoader``'s own constructors and resolvers, those SAM adds to it
included: the same data, read in a seventh of the time.
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

try:
    import yaml
    from yaml._yaml import CParser
    from yaml.constructor import SafeConstructor
    from yaml.resolver import Resolver
except ImportError:  # no PyYAML, or one without libyaml: SAM reads as it always does
    pass
else:

    class _LibyamlSafeLoader(CParser, yaml.SafeLoader):
        """libyaml's parser; the rest (constructors, resolvers) looked up on ``SafeLoader``, as SAM changes it."""

        def __init__(self, stream):  # noqa: ANN001 - PyYAML's loader signature
            CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    def _safe_load(stream):  # noqa: ANN001, ANN202 - yaml.safe_load's signature
        return yaml.load(stream, _LibyamlSafeLoader)  # noqa: S506 - a safe loader, as yaml.safe_load's

    yaml.safe_load = _safe_load
