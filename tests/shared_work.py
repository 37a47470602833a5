"""What boto3 and in-process moto work out again for every client, mock and request of a test, worked out once
per test process (same answers). tests/conftest.py applies it for the whole session.

* Client classes: botocore builds a client's class (a method and a docstring per operation) for every client; the
  class depends only on the service model and the handlers that add to it (``creating-client-class``), so one
  per such key is made.
* Endpoint rules: every client parses its service's endpoint rule set into a tree and resolves its endpoint in a
  cache of its own; the rule sets come from the one shared loader, so one provider per rule set answers all.
* Event handlers: every client copies its session's handler trie (two hundred nodes), then adds a few handlers of
  its own. Here the copy shares the nodes, and either trie copies a shared node (and those above it) before it
  changes it: each still holds what botocore's full copy would, and the copy costs nothing.
* ``mock_aws()``: each test's mock builds its 1,300 ``responses`` routes (every backend's URL patterns, for each
  HTTP method) as it starts; the routes are the same each time, so after the first start a mock starts with a
  copy of the first one's route lists instead of adding them one at a time (a millisecond and a half per test).
* TLS: every client's HTTP session makes an SSL context (a quarter of a millisecond in OpenSSL), which urllib3
  uses only to open an HTTPS connection: the tests' clients open none (moto answers in the process, the local cloud
  over HTTP). Clients without a proxy share one context, made as botocore makes each; an HTTPS connection would
  set its verification on the context as it does on a context of its own.
* User-Agent: botocore builds each request's User-Agent header from its client's fixed settings and the features the
  request uses (a few dozen string sanitizations); one string per client and set of features.
* S3's routes: moto reloads ``moto.s3.urls`` for every S3 request, in case ``MOTO_S3_CUSTOM_ENDPOINTS`` changed;
  it is reloaded here when that setting changed.
"""

from __future__ import annotations

from importlib import reload
from types import ModuleType
from typing import Any

import pytest
from botocore import regions
from botocore.client import ClientCreator
from botocore.context import get_context
from botocore.endpoint_provider import EndpointProvider
from botocore.hooks import EventAliaser, NodeList, _PrefixTrie
from botocore.httpsession import URLLib3Session
from botocore.model import ServiceModel
from botocore.useragent import UserAgentString
from moto import settings
from moto.core import models as moto_models
from moto.core.custom_responses_mock import CallbackResponse
from moto.core.models import MockAWS
from moto.s3.models import S3Backend

_CREATE_CLIENT_CLASS = ClientCreator._create_client_class
_USER_AGENT = UserAgentString.to_string
_SSL_CONTEXT = URLLib3Session._get_ssl_context
_ssl_contexts: list[Any] = []  # the one context clients without a proxy share
# What of a client's configuration its User-Agent header says.
_USER_AGENT_SETTINGS = ("_supplied_user_agent", "user_agent", "user_agent_extra", "user_agent_appid", "retries",
                        "endpoint_discovery_enabled")
_client_classes: dict[tuple[Any, ...], type] = {}
_endpoint_providers: dict[tuple[Any, ...], EndpointProvider] = {}
_kept: list[Any] = []  # what the ids in the keys above name stays alive, so no other object takes its id
_routes: dict[tuple[Any, ...], CallbackResponse] = {}
_ENABLE_PATCHING = MockAWS._enable_patching
_started_routes: dict[str, list[CallbackResponse]] = {}  # HTTP method -> the routes moto's first start added
_s3_endpoints: list[tuple[str, ...]] = []  # the MOTO_S3_CUSTOM_ENDPOINTS moto.s3.urls was last loaded with


def apply(patch: pytest.MonkeyPatch) -> None:
    patch.setattr(ClientCreator, "_create_client_class", _shared_client_class)
    patch.setattr(regions, "EndpointProvider", _shared_endpoint_provider)
    patch.setattr(_PrefixTrie, "__copy__", _copy_trie)
    patch.setattr(_PrefixTrie, "append_item", _append_item)
    patch.setattr(_PrefixTrie, "remove_item", _remove_item)
    patch.setattr(moto_models, "CallbackResponse", _route_once)
    patch.setattr(MockAWS, "_enable_patching", _start_with_routes)
    patch.setattr(S3Backend, "_url_module", property(_s3_url_module))
    patch.setattr(UserAgentString, "to_string", _user_agent)
    patch.setattr(URLLib3Session, "_get_ssl_context", _shared_ssl_context)


def _handler_key(handler: Any) -> Any:
    """What a handler does, for handlers equal in all but identity: each session makes its own closures (botocore's
    lazy_call) around the same names."""
    code = getattr(handler, "__code__", None)
    if code is None:
        return id(handler)
    try:
        cells = tuple(cell.cell_contents for cell in handler.__closure__ or ())
        hash(cells)
    except (TypeError, ValueError):  # an unhashable or empty cell: the handler is only itself
        return id(handler)
    return (code, cells)


def _shared_client_class(creator: ClientCreator, service_name: str, service_model: ServiceModel) -> type:
    emitter = creator._event_emitter
    if not isinstance(emitter, EventAliaser):
        return _CREATE_CLIENT_CLASS(creator, service_name, service_model)
    event = emitter._alias_event_name(f"creating-client-class.{service_model.service_id.hyphenize()}")
    handlers = tuple(_handler_key(h) for h in emitter._emitter._handlers.prefix_search(event))
    key = (service_name, id(service_model), handlers)
    if key not in _client_classes:
        _client_classes[key] = _CREATE_CLIENT_CLASS(creator, service_name, service_model)
        _kept.append(service_model)
    return _client_classes[key]


def _shared_endpoint_provider(ruleset_data: Any, partition_data: Any, excluded_params: Any = None) -> EndpointProvider:
    key = (id(ruleset_data), id(partition_data), frozenset(excluded_params or ()))
    if key not in _endpoint_providers:
        _endpoint_providers[key] = EndpointProvider(ruleset_data, partition_data, excluded_params)
        _kept.append((ruleset_data, partition_data))
    return _endpoint_providers[key]


_APPEND_ITEM = _PrefixTrie.append_item
_REMOVE_ITEM = _PrefixTrie.remove_item
# A trie that shares nodes holds, under this attribute, the nodes that are its own (by id; the dict keeps them alive,
# so no other node takes the id): it changes only those, after copying a shared one. A trie without it owns all.
_OWN = "_own_nodes"


def _copy_trie(trie: _PrefixTrie) -> _PrefixTrie:
    """botocore's copy of a handler trie, which shares every node with ``trie`` until one of them changes it."""
    copied = _PrefixTrie()
    copied.__dict__ = {**trie.__dict__, _OWN: {}}
    trie.__dict__[_OWN] = {}
    return copied


def _own(trie: _PrefixTrie, node: dict[str, Any]) -> dict[str, Any]:
    """``node``, or the trie's own copy of it (its handler lists and children copied, the children still shared)."""
    own: dict[int, dict[str, Any]] = trie.__dict__[_OWN]
    if id(node) in own:
        return node
    values = node["values"]
    mine = {"chunk": node["chunk"], "children": dict(node["children"]),
            "values": None if values is None else NodeList(values.first[:], values.middle[:], values.last[:])}
    own[id(mine)] = mine
    return mine


def _own_path(trie: _PrefixTrie, parts: list[str]) -> None:
    """The nodes from the root along ``parts``, as far as they exist, the trie's own."""
    node = trie._root = _own(trie, trie._root)
    for part in parts:
        child = node["children"].get(part)
        if child is None:
            return
        mine = node["children"][part] = _own(trie, child)
        node = mine


def _append_item(trie: _PrefixTrie, key: str, value: Any, section: int = 1) -> None:
    if _OWN in trie.__dict__:
        _own_path(trie, key.split("."))
    _APPEND_ITEM(trie, key, value, section)  # its new nodes are the trie's own: no other trie reaches them


def _remove_item(trie: _PrefixTrie, key: str, value: Any) -> None:
    if _OWN in trie.__dict__:
        _own_path(trie, key.split("."))
    _REMOVE_ITEM(trie, key, value)


def _route_once(*, method: str, url: Any, callback: Any) -> CallbackResponse:
    key = (method, url, callback)
    if key not in _routes:
        _routes[key] = CallbackResponse(method=method, url=url, callback=callback)
    return _routes[key]


def _start_with_routes(mock: MockAWS, reset: bool = True) -> None:
    """moto's start of a mock (``MockAWS._enable_patching``): its stubber on, its backends and ``responses`` mock
    reset, that mock started; then the routes, which every start adds alike, as copies of the first start's lists.
    A start that keeps what was there (``reset=False``) is moto's own."""
    if not reset or not _started_routes:
        _ENABLE_PATCHING(mock, reset=reset)
        if reset:
            _started_routes.update({method: list(routes) for method, routes in _registry()._registered.items()})
        return
    moto_models.botocore_stubber.enabled = True
    mock.reset()
    moto_models.responses_mock.start()
    _registry()._registered.update({method: list(routes) for method, routes in _started_routes.items()})


def _registry() -> Any:
    return moto_models.responses_mock.get_registry()


def _s3_url_module(backend: S3Backend) -> ModuleType:
    import moto.s3.urls

    endpoints = tuple(settings.get_s3_custom_endpoints())
    if _s3_endpoints[-1:] != [endpoints]:
        reload(moto.s3.urls)
        _s3_endpoints.append(endpoints)
    return moto.s3.urls


def _user_agent(creator: UserAgentString) -> str:
    context = get_context()
    config = creator._client_config
    configured = config and tuple(repr(getattr(config, name, None)) for name in _USER_AGENT_SETTINGS)
    key = (frozenset(context.features) if context else None, frozenset(creator._client_features or ()), configured)
    built: dict[Any, str] = creator.__dict__.setdefault("_built", {})
    if key not in built:
        built[key] = _USER_AGENT(creator)
    return built[key]


def _shared_ssl_context(session: URLLib3Session) -> Any:
    if session._proxy_config._proxies:  # a proxy's context may get its own CA bundle or client certificate
        return _SSL_CONTEXT(session)
    if not _ssl_contexts:
        _ssl_contexts.append(_SSL_CONTEXT(session))
    return _ssl_contexts[0]
