"""Started with every SAM CLI the local cloud runs (``sam_environment`` puts this folder on PYTHONPATH).

SAM's stack waiters sleep 30 s between DescribeStacks calls, hard-coded where ``SAM_CLI_POLL_DELAY`` does not reach
(``sam delete`` waits for the delete that way): on AWS a delete takes minutes, on the local cloud a few seconds, so
each delete would sit idle for most of 30 s. Here botocore's waiters sleep at most ``SAM_CLI_POLL_DELAY`` seconds
between their calls; SAM makes the same calls in the same order, only the pauses are shorter.

SAM follows a deploy by reading the stack's events every ``SAM_CLI_POLL_DELAY``; botocore reads each event's
timestamp with dateutil. Here its responses' timestamps are read by the local cloud's ``read_timestamp``
(``local_cloud/timestamps.py``): the same datetimes, a few ms less per call.

``sam deploy`` also writes the template it packaged as YAML and reads it back twice with ``yaml.safe_load``, PyYAML's
pure-Python parser: 0.4 s of CPU each for this application's template. Here ``yaml.safe_load`` parses with libyaml
(when PyYAML has it) and constructs with ``SafeLoader``'s own constructors and resolvers, those SAM adds to it
included: the same data, read in a seventh of the time. Its providers read the same template five times in one
``sam deploy``: each text is parsed once per process, and every read gets a copy of its own (a pickle's: SAM changes
what it reads). It writes the packaged template with PyYAML's pure-Python emitter (0.1 s of CPU): here with libyaml's,
through SAM's own dumper class (its representers and settings): text that reads back to the same template (libyaml
may break a long quoted line at another place).

SAM's translator checks its own policy templates file against its schema each time it expands the template (four
times in one deploy): here the processor the local cloud reads once (``cloudformation_templates``) serves them all.
"""

import os
import time
import types

try:
    import botocore.waiter
except ImportError:  # not a Python with botocore: nothing to shorten
    pass
else:
    botocore.waiter.time = types.SimpleNamespace(  # the variable read when SAM waits, as SAM reads its own
        sleep=lambda seconds: time.sleep(min(seconds, float(os.environ.get("SAM_CLI_POLL_DELAY", "0.5")))))

try:
    import botocore.parsers

    from local_cloud.timestamps import read_timestamp
except ImportError:  # not the local cloud's Python: botocore reads them as it always does
    pass
else:
    botocore.parsers.DEFAULT_TIMESTAMP_PARSER = read_timestamp

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

    import pickle

    _parsed: dict[str, bytes] = {}  # a text -> the pickle of what it parsed to

    def _safe_load(stream):  # noqa: ANN001, ANN202 - yaml.safe_load's signature
        kept = _parsed.get(stream) if isinstance(stream, str) else None
        if kept is not None:
            return pickle.loads(kept)  # noqa: S301 - pickled in this process, just below
        data = yaml.load(stream, _LibyamlSafeLoader)  # noqa: S506 - a safe loader, as yaml.safe_load's
        if isinstance(stream, str):
            if len(_parsed) >= 16:  # a SAM command reads a handful of texts
                _parsed.clear()
            _parsed[stream] = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
        return data

    yaml.safe_load = _safe_load

try:
    from samcli import yamlhelper
    from yaml._yaml import CEmitter
    from yaml.representer import SafeRepresenter
    from yaml.resolver import Resolver
except ImportError:  # no libyaml, or not the SAM CLI's Python: SAM writes as it always does
    pass
else:

    class _LibyamlCfnDumper(CEmitter, yamlhelper.CfnDumper):
        """libyaml's emitter, with SAM's ``CfnDumper``'s ways (no aliases); SAM's ``yaml_dump`` adds its representers
        to this class as it added them to its own."""

        def __init__(self, stream, default_style=None, default_flow_style=False, sort_keys=True,  # noqa: ANN001
                     **emitter) -> None:  # noqa: ANN003 - PyYAML's dumper signature
            CEmitter.__init__(self, stream, **emitter)
            SafeRepresenter.__init__(self, default_style=default_style, default_flow_style=default_flow_style,
                                     sort_keys=sort_keys)
            Resolver.__init__(self)

    # SAM's yaml_dump adds its representers to, and dumps with, the class this name holds when it runs.
    yamlhelper.CfnDumper = _LibyamlCfnDumper

try:
    from local_cloud.cloudformation_templates import share_policy_templates
except ImportError:  # not the local cloud's Python: SAM's translator reads them as it always does
    pass
else:
    share_policy_templates()

# ``sam deploy`` zips every function's and layer's build folder again on each run (this application's 17 folders,
# a third of a second of CPU), then uploads the zip only when the bucket lacks an object of the folder's checksum.
# Here a zip made once is kept and handed out again for a folder of the same checksum, file modes and zip settings:
# the same bytes SAM would make (its zips carry no dates), without compressing them again.
try:
    import contextlib
    import functools
    import hashlib
    import platform
    import shutil
    import tempfile
    from pathlib import Path

    from samcli.lib.package import utils as _package_utils
    from samcli.lib.utils.hash import dir_checksum as _dir_checksum
except ImportError:  # not a Python with the SAM CLI: nothing to keep
    pass
else:
    _ZIPS_KEPT = 48
    _zip_folder = _package_utils.zip_folder

    def _zip_key(folder_path, zip_method):  # noqa: ANN001, ANN202 - SAM's signature
        """What decides the zip's bytes, hashed; None for a zip method other than SAM's own."""
        sams_own = isinstance(zip_method, functools.partial) and not zip_method.args
        if not (sams_own and zip_method.func is _package_utils.make_zip_with_permissions
                and set(zip_method.keywords) <= {"permission_mappers"}):
            return None
        mappers = zip_method.keywords.get("permission_mappers") or []
        key = hashlib.sha256(repr([(type(m).__name__, sorted(vars(m).items())) for m in mappers]).encode())
        key.update(platform.system().encode())
        for root, _, files in os.walk(folder_path, followlinks=True):  # SAM's order, and each file's mode
            for name in files:
                path = os.path.join(root, name)
                key.update(f"{os.path.relpath(path, folder_path)}\0{os.stat(path).st_mode}\0".encode())
        md5hash = _dir_checksum(folder_path, followlinks=True)
        key.update(md5hash.encode())
        return md5hash, key.hexdigest()

    @contextlib.contextmanager
    def _kept_zip_folder(folder_path, zip_method):  # noqa: ANN001, ANN202 - SAM's signature
        key = _zip_key(folder_path, zip_method)
        if key is None:
            with _zip_folder(folder_path, zip_method) as made:
                yield made
            return
        md5hash, digest = key
        kept = Path(tempfile.gettempdir()) / "local-cloud-sam-zips" / f"{digest}.zip"
        directory = tempfile.mkdtemp()
        zipfile_name = os.path.join(directory, f"data-{md5hash}.zip")
        try:
            if kept.exists():
                shutil.copyfile(kept, zipfile_name)
                os.utime(kept)
            else:
                made = zip_method(os.path.join(directory, f"data-{md5hash}"), folder_path)
                kept.parent.mkdir(parents=True, exist_ok=True)
                partial = kept.with_name(f"{kept.name}.{os.getpid()}")
                shutil.copyfile(made, partial)
                os.replace(partial, kept)  # whole or not at all, for a SAM running beside this one
                for old in sorted(kept.parent.glob("*.zip"), key=lambda p: p.stat().st_mtime)[:-_ZIPS_KEPT]:
                    with contextlib.suppress(OSError):
                        old.unlink()
            yield zipfile_name, md5hash
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    _package_utils.zip_folder = _kept_zip_folder
