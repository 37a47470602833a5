"""The local cloud reads moto's backends in one request thread while another request changes them: each read
of a backend's dict goes over a snapshot, so it never raises "dictionary changed size during iteration" (or
"OrderedDict mutated during iteration") into a request.

Each test has a thread add and remove entries without a pause while the read runs many times, with the
interpreter switching threads as often as it can; each raised before its read took a snapshot.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from local_cloud.enforcement import identity
from local_cloud.enforcement.lookup import MotoLookup

ACCOUNT = "000000000042"  # an account no other test uses: these tests write into moto's backends directly


@pytest.fixture
def often_switching() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def read_while_changing(entries: MutableMapping[str, Any], make: Callable[[int], Any], read: Callable[[], None],
                        reads: int = 3000) -> None:
    stop = threading.Event()

    def change() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            entries[f"added-{n % 200}"] = make(n)
            if n % 200 == 0:
                for k in range(200):
                    entries.pop(f"added-{k}", None)

    writer = threading.Thread(target=change)
    writer.start()
    try:
        for _ in range(reads):
            read()
    finally:
        stop.set()
        writer.join()


@dataclass
class _Stack:
    name: str
    stack_id: str
    status: str = "CREATE_COMPLETE"


def test_a_stack_named_in_a_request_is_found_while_other_stacks_come_and_go(often_switching: None) -> None:
    from moto.cloudformation.models import cloudformation_backends

    stacks = cloudformation_backends[ACCOUNT]["us-east-1"].stacks
    stacks.clear()
    for n in range(300):
        stacks[f"arn-static-{n}"] = _Stack(f"static-{n}", f"arn-static-{n}")
    stacks["arn-of-wanted"] = _Stack("wanted", "arn-of-wanted")
    lookup = MotoLookup(ACCOUNT)
    try:
        read_while_changing(stacks, lambda n: _Stack(f"other-{n}", f"arn-{n}"),
                            lambda: lookup.stack_id("missing", "us-east-1"))
        assert lookup.stack_id("wanted", "us-east-1") == "arn-of-wanted"
    finally:
        stacks.clear()


@dataclass
class _Holder:
    policies: dict[str, Any] = field(default_factory=dict)
    managed_policies: dict[str, Any] = field(default_factory=dict)


def test_a_callers_policies_are_read_while_policies_are_put_on_it(often_switching: None) -> None:
    holder = _Holder(policies={"kept": {"Version": "2012-10-17", "Statement": []}})
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}
    read_while_changing(holder.policies, lambda n: document, lambda: identity._policies_of("role/r", holder),
                        reads=1500)


def test_moto_finds_a_stack_by_name_while_other_stacks_are_created_and_deleted(often_switching: None) -> None:
    from moto.cloudformation.exceptions import ValidationError
    from moto.cloudformation.models import CloudFormationBackend

    from local_cloud import backend_snapshots

    backend_snapshots.install()
    backend = CloudFormationBackend("us-east-1", ACCOUNT)
    for n in range(300):
        backend.stacks[f"arn-static-{n}"] = _Stack(f"static-{n}", f"arn-static-{n}")
    backend.deleted_stacks["arn-gone"] = _Stack("gone", "arn-gone")

    def describe_missing() -> None:
        with pytest.raises(ValidationError):
            backend.describe_stacks("missing")

    read_while_changing(backend.stacks, lambda n: _Stack(f"other-{n}", f"arn-{n}"), describe_missing)
    assert backend.describe_stacks("static-7")[0].stack_id == "arn-static-7"
    assert [s.name for s in backend.stacks.values()][:2] == ["static-0", "static-1"]  # in creation order
    assert backend.describe_stacks("arn-gone")[0].name == "gone"


def test_moto_finds_a_role_by_name_while_other_roles_are_created_and_deleted(often_switching: None) -> None:
    from moto.iam.models import IAMBackend

    from local_cloud import backend_snapshots

    backend_snapshots.install()
    backend = IAMBackend("global", ACCOUNT)
    for n in range(300):
        backend.roles[f"AROASTATIC{n}"] = SimpleNamespace(name=f"static-{n}", arn=f"arn:aws:iam::{ACCOUNT}:role/s{n}")

    def get_missing() -> None:
        with pytest.raises(Exception, match="Role missing not found"):
            backend.get_role("missing")

    read_while_changing(backend.roles, lambda n: SimpleNamespace(name=f"other-{n}", arn=f"arn-{n}"), get_missing)
    assert backend.get_role("static-7").arn == f"arn:aws:iam::{ACCOUNT}:role/s7"
    assert type(backend.managed_policies) is backend_snapshots.SnapshotDict
    assert backend.managed_policies.keys() == dict(backend.managed_policies).keys()  # a view: set operations too
