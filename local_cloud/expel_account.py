"""Expel's side of the data path: Expel's AWS account and the principal it assumes customer roles as.

The onboarding's Expel role trusts ``arn:aws:iam::012205512454:user/ExpelCloudService`` (Expel's published
service identity) with the Workbench GUID as ``sts:ExternalId``. The local cloud holds that account and user
in its IAM, so a test (or a person) can act as Expel against a deployed stack: ``principal()`` creates, once,
the user with an identity policy that lets it call ``sts:AssumeRole`` (what Expel's own account grants it) and
one access key, and returns the key. Requests signed with it act as that user in account 012205512454 (the
local cloud tells accounts apart by the key), and CloudTrail records them as that IAM user.

Served by the Workbench emulator (Expel's side of the local cloud): ``GET /_emulator/expel-principal``.
"""

from __future__ import annotations

import json
import threading
from typing import Any

EXPEL_ACCOUNT = "012205512454"
EXPEL_USER = "ExpelCloudService"
EXPEL_PRINCIPAL_ARN = f"arn:aws:iam::{EXPEL_ACCOUNT}:user/{EXPEL_USER}"
ASSUME_CUSTOMER_ROLES = {"Version": "2012-10-17", "Statement": [
    {"Sid": "AssumeCustomerRoles", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "arn:aws:iam::*:role/*"}]}
_lock = threading.Lock()
_key: dict[str, str] = {}


def principal() -> dict[str, str]:
    """``{"Arn", "AccessKeyId", "SecretAccessKey"}`` of Expel's service user (made on first use)."""
    from moto.iam.models import iam_backends

    with _lock:
        backend = iam_backends[EXPEL_ACCOUNT]["aws"]
        if _key and _key["AccessKeyId"] in backend.access_keys:
            return dict(_key)
        if EXPEL_USER not in backend.users:
            backend.create_user("us-east-1", EXPEL_USER)
            backend.put_user_policy(EXPEL_USER, "assume-customer-roles", json.dumps(ASSUME_CUSTOMER_ROLES))
        key: Any = backend.create_access_key(EXPEL_USER)
        _key.update(Arn=EXPEL_PRINCIPAL_ARN, AccessKeyId=key.access_key_id, SecretAccessKey=key.secret_access_key)
        return dict(_key)
