"""botocore's data read once per process (local_cloud/botocore_data.py) gives botocore's own answers, and a
service added to a data directory is found."""

from __future__ import annotations

import json
from pathlib import Path

from botocore.loaders import Loader
from moto.core.loaders import create_loader

from local_cloud import botocore_data


def _service(root: Path, name: str) -> None:
    version = root / name / "2020-01-01"
    version.mkdir(parents=True)
    (version / "service-2.json").write_text(json.dumps({"metadata": {"endpointPrefix": name}}))


def test_each_loader_lists_the_services_botocore_scans() -> None:
    botocore_data.share()
    for loader in (Loader(), create_loader(), Loader(include_default_search_paths=False)):
        for type_name in ("service-2", "paginators-1", "waiters-2", "endpoint-rule-set-1", "no-such-type"):
            scanned = botocore_data.botocore_scan(_fresh(loader), type_name)
            for _ in range(2):  # scanned, then read back
                assert loader.list_available_services(type_name) == scanned


def _fresh(loader: Loader) -> Loader:
    """A loader with the same search paths that has listed nothing yet."""
    return Loader(extra_search_paths=loader.search_paths, include_default_search_paths=False)


def test_a_service_added_to_a_data_directory_is_listed_by_every_loader(tmp_path: Path) -> None:
    botocore_data.share()
    _service(tmp_path, "first")
    before = Loader(extra_search_paths=[str(tmp_path)])
    assert "first" in before.list_available_services("service-2")
    assert "second" not in Loader(extra_search_paths=[str(tmp_path)]).list_available_services("service-2")

    _service(tmp_path, "second")
    assert {"first", "second"} <= set(Loader(extra_search_paths=[str(tmp_path)]).list_available_services("service-2"))
    assert "second" in before.list_available_services("service-2")  # the loader that listed before, too
    assert before.load_service_model("second", "service-2")["metadata"]["endpointPrefix"] == "second"
