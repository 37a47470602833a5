"""moto's CloudFormation and IAM backends read in one request thread while another request adds or removes.

moto's server answers each request on its own thread, and these backends walk their dicts in Python loops:
DescribeStacks and every CloudFormation call by stack name loop over ``stacks.values()``, IAM's ``get_role``
(by name or ARN: IAM enforcement asks it for every request a role makes) over ``roles.values()``, while a
DeleteStack or CreateRole/DeleteRole in another request adds or removes an entry (a ``sam delete`` polls
DescribeStacks while the onboarding's teardown deletes the role stack and its role). Such a loop raises
"dictionary changed size during iteration" (an OrderedDict: "OrderedDict mutated during iteration") into the
reading request. Each dict these backends hold is made to hand out its keys, values and items as views of a
copy, taken in one step (CPython copies in C, holding the GIL): a loop reads the dict as it was when the loop
began. Writes, look-ups by key and ``in`` are the dict's own; the order is kept.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from local_cloud.once import once


class SnapshotDict(dict):  # type: ignore[type-arg]
    """A dict whose ``keys()``, ``values()`` and ``items()`` are views of a copy."""

    def keys(self) -> Any:
        return dict.copy(self).keys()  # dict's own copy: no call back into these methods

    def values(self) -> Any:
        return dict.copy(self).values()

    def items(self) -> Any:
        return dict.copy(self).items()


class SnapshotOrderedDict(OrderedDict):  # type: ignore[type-arg]
    """An OrderedDict whose ``keys()``, ``values()`` and ``items()`` are views of a copy (in the same order)."""

    def _copy(self) -> dict[Any, Any]:
        return dict(OrderedDict.items(self))  # the items view is read in C: no other thread runs meanwhile

    def keys(self) -> Any:
        return self._copy().keys()

    def values(self) -> Any:
        return self._copy().values()

    def items(self) -> Any:
        return self._copy().items()


def snapshot_dicts(backend: Any) -> None:
    """Every dict ``backend`` holds, as its snapshot-reading kind."""
    for name, value in list(vars(backend).items()):
        if type(value) is dict:
            setattr(backend, name, SnapshotDict(value))
        elif type(value) is OrderedDict:
            setattr(backend, name, SnapshotOrderedDict(value))


@once
def install() -> None:
    from moto.cloudformation.models import CloudFormationBackend
    from moto.iam.models import IAMBackend

    for backend_class in (CloudFormationBackend, IAMBackend):
        original = backend_class.__init__

        def __init__(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> None:
            _original(self, *args, **kwargs)
            snapshot_dicts(self)

        backend_class.__init__ = __init__  # type: ignore[method-assign]
