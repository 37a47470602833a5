"""Wildcard matching as IAM does it: actions, resource ARNs, principals.

Action names match case-insensitively (``kms:Get*``); ARNs match case-sensitively, segment by
segment (a ``*`` in the region segment never spans into the account segment), with ``*`` and ``?``
allowed in every segment and spanning ``/`` and ``:`` inside the resource part.
"""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=8192)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def glob_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """``*`` = any run of characters, ``?`` = one character, everything else literal."""
    if pattern == "*":
        return True
    if "*" not in pattern and "?" not in pattern:
        return pattern.lower() == value.lower() if ignore_case else pattern == value
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def action_matches(pattern: str, action: str) -> bool:
    """``s3:Get*`` against ``s3:GetObject``: case-insensitive, as IAM compares action names."""
    return glob_match(pattern, action, ignore_case=True)


def arn_matches(pattern: str, arn: str) -> bool:
    """IAM's ARN comparison (Resource element, ArnLike/ArnEquals): six colon-separated parts matched
    one by one; a value that is not an ARN is compared as a whole."""
    if pattern == "*":
        return True
    if not (pattern.startswith("arn:") and arn.startswith("arn:")):
        return glob_match(pattern, arn)
    wanted, actual = pattern.split(":", 5), arn.split(":", 5)
    if len(wanted) != 6 or len(actual) != 6:
        return glob_match(pattern, arn)
    return all(glob_match(w, a) for w, a in zip(wanted, actual, strict=True))


def split_arn(arn: str) -> tuple[str, str, str, str, str]:
    """(partition, service, region, account, resource) of an ARN; ValueError when it is not one."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise ValueError(f"not an ARN: {arn}")
    return parts[1], parts[2], parts[3], parts[4], parts[5]
