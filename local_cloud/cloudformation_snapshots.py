"""moto's CloudFormation backend read in one request thread while another request adds or removes a stack.

moto's server answers each request on its own thread, and its CloudFormation backend walks its dicts in Python
loops: DescribeStacks and every call by stack name loop over ``stacks.values()`` while a DeleteStack in another
request pops a stack from it (a ``sam delete`` polls DescribeStacks while the onboarding's teardown deletes the
role stack), which raises "OrderedDict mutated during iteration" (a plain dict: "dictionary changed size during
iteration") into the reading request. The backend's dicts (stacks, deleted stacks, StackSets, exports, change
sets) are made to hand out their keys, values and items as views of a copy, taken in one step (CPython copies
in C, holding the GIL): a loop reads the dict as it was when the loop began. Writes and look-ups by key are
the dict's own.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from local_cloud.once import once

_DICTS = ("stacks", "deleted_stacks", "stacksets", "exports", "change_sets")


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


@once
def install() -> None:
    from moto.cloudformation.models import CloudFormationBackend

    original = CloudFormationBackend.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        for name in _DICTS:
            setattr(self, name, SnapshotOrderedDict(getattr(self, name)))

    CloudFormationBackend.__init__ = __init__  # type: ignore[method-assign]
