"""botocore's endpoint data parsed once per process, for every session.

A botocore session caches what its loader parsed for itself only, and moto makes sessions freely: one for
each service backend's regions (every partition's), three while importing its EC2 backend. Each parses
``endpoints.json`` (over a megabyte) again, and listing a service's regions parses the service's whole model
for its endpoint prefix (EC2's is megabytes): a second or two of the local cloud's start-up and first calls.

Here the endpoint data (read-only for botocore) is parsed once, and a service's endpoint prefix is read from
its model once. Service models themselves stay per session: clients change theirs (the S3 client strips
``/{Bucket}`` from request URIs), which the request naming must not see (``api_calls``).

The list of services on disk is scanned once per state of the data directories: every loader lists them before
its first model (a ``listdir`` of each data directory, of each of its ~450 services and a file check in each,
about 15 ms), and moto makes a new loader for every model it loads. A service added to a data directory (to
``~/.aws/models``) changes the directory's modification time, and the next list scans again.

The local cloud's process and the tests' processes use it; Lambda functions, which run in their own runtime,
do not.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from local_cloud.once import once

# Data files botocore only reads (its endpoint resolver and partitions), by name without extension.
SHARED_FILES = frozenset({"endpoints", "partitions", "sdk-default-configuration"})

_parsed: dict[str, Any] = {}
_endpoint_prefixes: dict[str, str] = {}
# (search paths, file loader class, type name) -> (the paths' modification times, the services found)
_service_lists: dict[tuple[Any, ...], tuple[tuple[int | None, ...], tuple[str, ...]]] = {}
_service_lists_lock = threading.Lock()
botocore_scan: Any = None  # botocore's own list_available_services (the tests compare)


@once
def share() -> None:
    """Install the sharing in this process (idempotent)."""
    _share_endpoint_files()
    _share_endpoint_prefixes()
    _share_service_lists()


def _share_endpoint_files() -> None:
    from botocore.loaders import JSONFileLoader

    parse = JSONFileLoader.load_file

    def load_file(self: JSONFileLoader, file_path: str) -> Any:
        if os.path.basename(file_path) not in SHARED_FILES:
            return parse(self, file_path)
        if file_path not in _parsed:
            data = parse(self, file_path)
            if data is None:  # not there: looked for again next time, as botocore does
                return None
            _parsed[file_path] = data
        return _parsed[file_path]

    JSONFileLoader.load_file = load_file  # type: ignore[method-assign]


def _share_endpoint_prefixes() -> None:
    from botocore.exceptions import UnknownServiceError
    from botocore.session import Session

    def get_available_regions(self: Session, service_name: str, partition_name: str = "aws",
                              allow_non_regional: bool = False) -> list[str]:
        """botocore's, with the service's endpoint prefix remembered instead of its model parsed each time."""
        prefix = _endpoint_prefixes.get(service_name)
        if prefix is None:
            try:
                prefix = str(self.get_service_data(service_name)["metadata"].get("endpointPrefix", service_name))
            except UnknownServiceError:
                return []
            _endpoint_prefixes[service_name] = prefix
        resolver = self._get_internal_component("endpoint_resolver")
        return list(resolver.get_available_endpoints(prefix, partition_name, allow_non_regional))

    Session.get_available_regions = get_available_regions  # type: ignore[method-assign]


def _modified(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _share_service_lists() -> None:
    from botocore.loaders import Loader

    global botocore_scan
    scan = botocore_scan = Loader.list_available_services

    def list_available_services(self: Loader, type_name: str) -> list[str]:
        """botocore's list, scanned once per state of the loader's data directories for every loader."""
        paths = tuple(self.search_paths)
        key = (paths, type(self.file_loader), type_name)
        stamp = tuple(_modified(path) for path in paths)
        with _service_lists_lock:
            known = _service_lists.get(key)
        if known is None or known[0] != stamp:
            self._cache.pop(("list_available_services", type_name), None)  # scan, not the loader's memory
            known = (stamp, tuple(scan(self, type_name)))
            with _service_lists_lock:
                _service_lists[key] = known
        return list(known[1])

    Loader.list_available_services = list_available_services  # type: ignore[method-assign]
