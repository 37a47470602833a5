"""The Service Authorization Reference read one service at a time (local_cloud/iam/sar.py) gives the entries a read
of the whole reference gives."""

from __future__ import annotations

import json

from local_cloud.iam import sar
from local_cloud.iam.sar import Action


def test_every_action_and_service_is_read_as_the_whole_reference_reads_it() -> None:
    services = json.loads(sar._definition_path().read_text(encoding="utf-8"))
    whole = sar._built_index(services)
    assert len(whole) > 10000

    for name, entry in whole.items():
        assert sar.action(name) == entry == sar.action(name.upper()), name
    by_service: dict[str, list[Action]] = {}  # the whole read's entries of each service, in its order
    for name, entry in whole.items():
        by_service.setdefault(name.split(":", 1)[0], []).append(entry)
    for prefix in {service["prefix"] for service in services}:
        assert sar.service_actions(prefix) == tuple(by_service.get(prefix.lower(), ())), prefix
    assert sar.action("kms:NoSuchAction") is None and sar.action("nosuchservice:Get") is None
    assert sar.action("no-colon") is None
    assert sar.resource_arn_format("kms", "key") == "arn:${Partition}:kms:${Region}:${Account}:key/${KeyId}"
