"""What moto's server works out again for every request, worked out once per process (same answers).

A profile of ``local serve`` during a deploy found two such costs on every request:

* Dispatch: moto's ``DomainDispatcherApplication`` asks whether the host names one of its modules by listing
  its package directory and ``isdir``-ing each of its ~150 entries, then matches the host against every
  service's URL patterns (about 6-8 % of the server's CPU, under the dispatcher's lock). The modules are
  files that do not change while the process runs, and a host always matches the same backend: both are
  remembered (a host that matches nothing is not, and is reported each time as moto does).
* Errors: for every error answer moto makes a botocore session to list the services on disk (an ``isfile`` per
  service) to name the service of the exception's package, and builds the service's table of error codes
  afresh (its cache lives in a factory made per error). Both follow from the service: remembered.
* Serialization: for every member of every object in a response, moto's ``AttributePicker`` builds six alias
  providers to list the attribute names the member may have (``DBInstanceIdentifier``, ``Identifier``, ...).
  Those names depend only on the picker, the object's class, the member's name and its shape (and the
  shape's parent), so they are remembered per such key; objects whose attributes are dynamic (an instance
  ``Meta``, a ``__getattr__``) are asked every time, as before.
  A structure serialized from a plain dict visits only the members whose names the dict holds (a Step
  Functions history event holds 4 to 6 of its shape's 60): the others would be picked to find nothing.
* Actions: to find the method of a request's action, moto lists every function of the response class
  (``inspect.getmembers``) for every request. The names are remembered per class; an action not among them is
  looked up as moto does (a method added later is found).
* State machines: Step Functions parses a definition (moto's ANTLR parser, about a quarter of a second of CPU
  for the onboarding's) to validate it when a state machine is created or updated, and again for every
  execution (and redrive). The program a parse makes is kept pickled, before anything ran it, and each
  execution gets a copy of its own unpickled from it (a millisecond or two): a copy shares no object with
  any other, so no execution sees what another one did (Retry counts, Map and Parallel runs, results), just
  as with a parse of its own. The key is the definition's text: an updated state machine's executions run
  its new definition. A definition that parsed before is valid again without a parse.
  ANTLR learns its grammar's decisions from the first definitions it reads: a sample parsed at warm-up makes
  a process's first parse (otherwise about twice as slow as the later ones) as fast as the later ones.
"""

from __future__ import annotations

import pickle  # noqa: S403 - copies of programs this process parsed, never data from outside
import threading
from collections.abc import Iterable
from typing import Any

from local_cloud.once import once

_modules: frozenset[str] | None = None
_backend_of_host: dict[str, str] = {}
_possible_keys: dict[tuple[Any, ...], tuple[str, ...]] = {}
# moto's own methods, as they were (the tests compare the cached answers with theirs).
_plain_classes: dict[type, bool] = {}
_transform_paths: dict[tuple[tuple[str, ...], str], str | None] = {}
_valid_names: set[tuple[str, str]] = set()
moto_pick: Any = None
moto_serialize_structure: Any = None
# (picker class, its alias providers, structure shape) -> each member's possible keys in a dict
_member_names: dict[tuple[Any, ...], dict[str, tuple[str, ...]]] = {}
moto_backend_for_host: Any = None
moto_service_name: Any = None
_service_names: dict[str, str] = {}
_error_lookups: dict[str, Any] = {}
_method_names: dict[type, frozenset[str]] = {}
moto_method_names: Any = None
moto_parse: Any = None
moto_validate: Any = None
moto_entrypoint: Any = None
# Programs parsed from definitions, pickled before any execution ran them; least recently used first.
_programs: dict[str, bytes] = {}
_programs_lock = threading.Lock()
PROGRAMS_KEPT = 32  # state machine definitions kept (about 50 KB for the onboarding's)


@once
def install() -> None:
    """Install both caches in this process (idempotent)."""
    _cache_dispatch()
    _cache_attribute_names()
    _cache_xml_names()
    _cache_error_lookups()
    _cache_method_names()
    _reuse_parsed_programs()


def moto_modules() -> frozenset[str]:
    """moto's ``list_of_moto_modules()``, read once."""
    global _modules
    if _modules is None:
        from moto import backends

        _modules = frozenset(backends.list_of_moto_modules())
    return _modules


def _cache_dispatch() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    global moto_backend_for_host
    find = moto_backend_for_host = DomainDispatcherApplication.get_backend_for_host

    def get_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
        if host is None or host == "moto_api" or host in moto_modules():
            return host
        backend = _backend_of_host.get(host)
        if backend is None:
            backend = find(self, host)
            if backend:
                _backend_of_host[host] = backend
        return backend

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


def _cacheable(obj: Any) -> bool:
    """Whether an object's attribute names follow from its class alone (no per-instance ``Meta``, no
    ``__getattr__`` that could answer ``hasattr(obj, "Meta")`` otherwise)."""
    cls = type(obj)
    plain = _plain_classes.get(cls)
    if plain is None:
        plain = _plain_classes[cls] = not hasattr(cls, "__getattr__")
    return plain and "Meta" not in getattr(obj, "__dict__", ())


def _transform_path(transformers: dict[str, Any], key_path: str) -> str | None:
    """The first of ``transformers``' paths that ``key_path`` ends with (moto's rule), remembered."""
    key = (tuple(transformers), key_path)
    if key not in _transform_paths:
        _transform_paths[key] = next((path for path in transformers if key_path.endswith(path)), None)
    return _transform_paths[key]


def _cache_attribute_names() -> None:
    from moto.core.serialize import MISSING, AttributePicker, AttributePickerContext
    from moto.core.utils import get_value

    def possible_keys(picker: AttributePicker, context: AttributePickerContext) -> Iterable[str]:
        if not _cacheable(context.obj):
            return picker.get_possible_keys(context)
        shape = context.shape
        key = (type(picker), tuple(picker.alias_providers), type(context.obj), context.key, shape,
               getattr(shape, "parent", None))
        found = _possible_keys.get(key)
        if found is None:
            try:
                found = tuple(picker.get_possible_keys(context))
            except Exception:  # a provider moto would not have reached: ask lazily, as moto does
                return picker.get_possible_keys(context)
            _possible_keys[key] = found
        return found

    def pick(self: AttributePicker, context: AttributePickerContext) -> Any:
        # moto's AttributePicker.__call__, with the names from possible_keys.
        obj = context.obj
        for possible_key in possible_keys(self, context):
            value = get_value(obj, possible_key, MISSING)
            if value is not MISSING:
                break
        else:
            value = None
        if self.response_transformers:
            path = _transform_path(self.response_transformers, f"{context.key_path}.{context.key}")
            if path is not None:
                value = self.response_transformers[path](value)
        return value

    global moto_pick
    moto_pick = AttributePicker.__call__
    AttributePicker.__call__ = pick  # type: ignore[method-assign]
    _skip_absent_members(possible_keys)


def _skip_absent_members(possible_keys: Any) -> None:
    """A structure serialized from a plain dict (Step Functions' history events, most JSON services' answers)
    visits only the members the dict can hold: moto asks for every member of the shape (a history event's
    shape has 60, each event holds 4 to 6) and builds a context and a pick for each, to find nothing."""
    from moto.core.serialize import AttributePicker, AttributePickerContext, ResponseSerializer

    global moto_serialize_structure
    serialize = moto_serialize_structure = ResponseSerializer._serialize_type_structure
    plain_member, plain_get_value = ResponseSerializer._serialize_structure_member, ResponseSerializer.get_value

    def member_names(self: ResponseSerializer, value: dict[str, Any], shape: Any) -> dict[str, tuple[str, ...]]:
        """Each member's possible keys (as the picker's pick tries them), for a dict; worked out once."""
        picker = self._value_picker
        key = (type(picker), tuple(picker.alias_providers), shape)
        names = _member_names.get(key)
        if names is None:
            names = {}
            for member_key, member_shape in shape.members.items():
                member_shape.parent = shape
                context = AttributePickerContext(
                    obj=value, key=member_key, shape=member_shape, operation_model=self.operation_model,
                    service_model=self.operation_model.service_model, key_path="")
                names[member_key] = tuple(possible_keys(picker, context))
            _member_names[key] = names
        return names

    def serialize_structure(self: ResponseSerializer, serialized: Any, value: Any, shape: Any, key: str) -> None:
        picker = getattr(self, "_value_picker", None)
        cls = type(self)
        if (type(value) is not dict or cls._serialize_structure_member is not plain_member
                or cls.get_value is not plain_get_value or not isinstance(picker, AttributePicker)
                or type(picker).__call__ is not AttributePicker.__call__ or picker.response_transformers):
            serialize(self, serialized, value, shape, key)  # moto's, as it was
            return
        wrapper: Any = self.MAP_TYPE() if key else serialized
        names = member_names(self, value, shape)
        for member_key, member_shape in shape.members.items():
            member_shape.parent = shape
            # A name with a dot is a path into the value: moto's pick follows it.
            if any("." in name or name in value for name in names[member_key]):
                self._serialize_structure_member(wrapper, value, member_shape, member_key)
        if key:
            self._default_serialize(serialized, wrapper, shape, key)

    ResponseSerializer._serialize_type_structure = serialize_structure  # type: ignore[method-assign]



def _cache_xml_names() -> None:
    """xmltodict checks every element name of every XML response character by character; the names are the
    services' member names, so each one found valid is not checked again (an invalid one still raises)."""
    import xmltodict

    validate = xmltodict._validate_name

    def validate_name(value: Any, kind: str) -> None:
        if isinstance(value, str) and (value, kind) in _valid_names:
            return
        validate(value, kind)
        if isinstance(value, str):
            _valid_names.add((value, kind))

    xmltodict._validate_name = validate_name


def _cache_error_lookups() -> None:
    from moto.core import errors, utils

    global moto_service_name
    name_of = moto_service_name = utils.service_name_from_moto_package_name

    def service_name_from_moto_package_name(package: str) -> str:
        if package not in _service_names:
            _service_names[package] = name_of(package)
        return _service_names[package]

    utils.service_name_from_moto_package_name = service_name_from_moto_package_name  # type: ignore[assignment]

    def for_service(self: errors.ErrorLookupFactory, service_model: Any) -> errors.ErrorLookup:
        service_id = service_model.metadata.get("serviceId")
        if service_id is None:  # moto does not keep these either
            return self._create_error_lut(service_model)
        if service_id not in _error_lookups:
            _error_lookups[service_id] = self._create_error_lut(service_model)
        return _error_lookups[service_id]  # type: ignore[no-any-return]

    errors.ErrorLookupFactory.for_service = for_service  # type: ignore[method-assign]


def _cache_method_names() -> None:
    from moto.core import responses, utils

    global moto_method_names
    names_of = moto_method_names = utils.method_names_from_class

    class Names(frozenset):  # type: ignore[type-arg]
        """A class's function names as moto lists them; a name not among them is looked for again."""

        clazz: type

        def __contains__(self, name: object) -> bool:
            if frozenset.__contains__(self, name):
                return True
            return frozenset.__contains__(method_names(self.clazz, fresh=True), name)

    def method_names(clazz: type, fresh: bool = False) -> frozenset[str]:
        known = _method_names.get(clazz)
        if known is None or fresh:
            known = Names(names_of(clazz))
            known.clazz = clazz
            _method_names[clazz] = known
        return known

    responses.method_names_from_class = method_names  # type: ignore[assignment]


def _reuse_parsed_programs() -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    global moto_parse, moto_validate, moto_entrypoint
    moto_parse = AmazonStateLanguageParser.parse
    validate = moto_validate = StepFunctionsParserBackend._validate_definition
    moto_entrypoint = ExecutionWorker._get_evaluation_entrypoint

    def parse(definition: str) -> tuple[Any, Any]:
        parsed = moto_parse(definition)
        _remember(definition, parsed[0])
        return parsed

    def validate_definition(definition: str) -> None:
        with _programs_lock:
            parsed_before = definition in _programs
        if not parsed_before:  # a definition that parsed once parses again: valid
            validate(definition)

    def get_evaluation_entrypoint(self: ExecutionWorker) -> Any:
        program = _program_copy(self._evaluation_details.state_machine_details.definition)
        return program if program is not None else moto_entrypoint(self)

    AmazonStateLanguageParser.parse = staticmethod(parse)  # type: ignore[method-assign]
    StepFunctionsParserBackend._validate_definition = staticmethod(validate_definition)  # type: ignore[method-assign]
    ExecutionWorker._get_evaluation_entrypoint = get_evaluation_entrypoint  # type: ignore[method-assign]


# A definition with each kind of state and the fields most definitions use: ANTLR's lexer and parser learn
# their decisions (a cache of the generated grammar's, shared by every later parse) on the first definitions
# they read, which makes a process's first parse about twice as slow as the next ones.
_SAMPLE_DEFINITION = {
    "Comment": "c", "StartAt": "Choose", "TimeoutSeconds": 60,
    "States": {
        "Choose": {"Type": "Choice", "Comment": "c", "Default": "Prepare", "Choices": [
            {"Not": {"Variable": "$.m", "IsPresent": True}, "Next": "Prepare"},
            {"And": [{"Variable": "$.m", "StringEquals": "a"}, {"Variable": "$.n", "NumericGreaterThan": 1}],
             "Next": "Prepare"},
            {"Or": [{"Variable": "$.b", "BooleanEquals": True}, {"Variable": "$.s", "StringMatches": "a*"}],
             "Next": "Wait"}]},
        "Wait": {"Type": "Wait", "Seconds": 1, "Next": "Prepare"},
        "Prepare": {"Type": "Pass", "Parameters": {"a.$": "$.x", "b": "text", "c.$": "States.Format('{}', $.y)"},
                    "ResultPath": "$.p", "Next": "Work"},
        "Work": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "TimeoutSeconds": 30,
                 "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:f", "Payload.$": "$"},
                 "ResultSelector": {"r.$": "$.Payload"}, "ResultPath": "$.w", "OutputPath": "$",
                 "Retry": [{"ErrorEquals": ["Lambda.TooManyRequestsException", "States.TaskFailed"],
                            "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2.0}],
                 "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "Failed"}], "Next": "Both"},
        "Both": {"Type": "Parallel", "ResultPath": None, "Next": "Each", "Branches": [
            {"StartAt": "L", "States": {"L": {"Type": "Task", "End": True,
                                              "Resource": "arn:aws:lambda:us-east-1:123456789012:function:g"}}},
            {"StartAt": "R", "States": {"R": {"Type": "Succeed"}}}]},
        "Each": {"Type": "Map", "ItemsPath": "$.i", "MaxConcurrency": 2, "Next": "Done",
                 "Iterator": {"StartAt": "One", "States": {"One": {"Type": "Pass", "End": True}}}},
        "Done": {"Type": "Succeed"},
        "Failed": {"Type": "Fail", "Error": "Failed", "Cause": "c"},
    },
}


def warm_parser() -> None:
    """Parse a sample definition (not kept), so that the first state machine a process creates or runs parses
    as fast as the later ones: a parent that forks local clouds does it once for all of them."""
    import json

    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    (moto_parse or AmazonStateLanguageParser.parse)(json.dumps(_SAMPLE_DEFINITION, indent=2))


def _remember(definition: str, program: Any) -> None:
    """Keep a copy of a program no execution has run (pickled: a copy shares no object with it)."""
    try:
        copy = pickle.dumps(program, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # a program pickle cannot copy: each execution parses its own, as in moto
        return
    with _programs_lock:
        _programs.pop(definition, None)
        _programs[definition] = copy
        while len(_programs) > PROGRAMS_KEPT:
            del _programs[next(iter(_programs))]


def _program_copy(definition: str) -> Any:
    """A program of ``definition`` of its own, as a parse would give it; None when none is kept."""
    with _programs_lock:
        copy = _programs.pop(definition, None)
        if copy is not None:
            _programs[definition] = copy  # the most recently used now
    return None if copy is None else pickle.loads(copy)  # noqa: S301 - our own pickle of our own parse
