"""What tests/shared_work.py makes once answers as botocore's own work would (the session fixture applies it)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.context import start_as_current_context
from botocore.hooks import _PrefixTrie
from botocore.httpsession import URLLib3Session, create_urllib3_context
from botocore.useragent import register_feature_id
from moto import mock_aws
from moto.core import models as moto_models
from moto.core.models import MockAWS

from tests import shared_work


def _handlers(client: object, event: str) -> list[object]:
    return list(client.meta.events._emitter._handlers.prefix_search(event))  # type: ignore[attr-defined]


def test_a_handler_one_client_registers_reaches_neither_its_session_nor_another_client() -> None:
    session = boto3.session.Session(region_name="us-east-1")
    first, second = session.client("sqs"), session.client("sqs")

    def mine(**_: object) -> None:
        return None

    first.meta.events.register("before-call.sqs.SendMessage", mine)
    assert mine in _handlers(first, "before-call.sqs.SendMessage")
    assert mine not in _handlers(second, "before-call.sqs.SendMessage")
    assert mine not in list(session._session.get_component("event_emitter")._emitter._handlers.prefix_search(
        "before-call.sqs.SendMessage"))


EVENTS = ("before-call.s3.PutObject", "needs-retry.sqs", "creating-client-class.s3", "after-call.iam",
          "before-call.sqs.SendMessage", "before-call.sqs.*")


def _botocores_copy(trie: _PrefixTrie) -> _PrefixTrie:
    theirs = _PrefixTrie()
    theirs.__dict__ = trie._recursive_copy({"_root": trie._root})
    return theirs


def _same(ours: _PrefixTrie, theirs: _PrefixTrie) -> None:
    assert ours._root == theirs._root
    for event in EVENTS:
        assert list(ours.prefix_search(event)) == list(theirs.prefix_search(event))


def test_the_trie_copy_holds_what_botocores_copy_holds() -> None:
    trie = boto3.session.Session()._session.get_component("event_emitter")._emitter._handlers
    _same(shared_work._copy_trie(trie), _botocores_copy(trie))


def test_tries_that_share_nodes_change_as_botocores_copies_would() -> None:
    """Each of a trie and its copies, then a copy of a copy, adds and removes handlers; each trie holds what it would
    had every copy been botocore's full one."""
    session = boto3.session.Session()._session.get_component("event_emitter")._emitter._handlers
    trie = shared_work._copy_trie(session)  # a client's trie, say, to keep the session's out of it
    expected = _botocores_copy(trie)
    client, expected_client = shared_work._copy_trie(trie), _botocores_copy(trie)
    handlers = [lambda n=n: n for n in range(4)]
    for ours, theirs, handler in ((trie, expected, handlers[0]), (client, expected_client, handlers[1])):
        for one in (ours, theirs):
            one.append_item("before-call.sqs.SendMessage", handler)
            one.append_item("before-call.sqs.*", handler, section=0)
            one.append_item("brand-new.event", handler)
    again, expected_again = shared_work._copy_trie(client), _botocores_copy(client)
    for ours, theirs in ((client, expected_client), (again, expected_again)):
        for one in (ours, theirs):
            one.remove_item("before-call.sqs.SendMessage", handlers[1])
            one.append_item("after-call.iam", handlers[2])
    trie.remove_item("brand-new.event", handlers[0])
    expected.remove_item("brand-new.event", handlers[0])
    for ours, theirs in ((trie, expected), (client, expected_client), (again, expected_again)):
        _same(ours, theirs)
    assert handlers[0] not in client.prefix_search("before-call.sqs.SendMessage")
    assert not session.prefix_search("brand-new.event")


def test_clients_of_a_service_share_one_class_with_boto3s_additions() -> None:
    first, second = boto3.client("s3", region_name="us-east-1"), boto3.client("s3", region_name="eu-west-1")
    assert type(first) is type(second) and hasattr(first, "upload_file")
    assert type(boto3.client("sqs", region_name="us-east-1")) is not type(first)


def test_the_user_agent_is_botocores_for_each_set_of_features() -> None:
    creator = boto3.client("sts", region_name="us-east-1")._user_agent_creator
    assert shared_work._user_agent(creator) == shared_work._USER_AGENT(creator)
    with start_as_current_context():
        register_feature_id("WAITER")
        with_waiter = shared_work._user_agent(creator)
        assert with_waiter == shared_work._USER_AGENT(creator)
    assert with_waiter != shared_work._user_agent(creator)


def _started_mock() -> dict[str, Any]:
    """What a mock holds once started: its routes by HTTP method, and whether requests reach it."""
    with mock_aws():
        responses = moto_models.responses_mock
        return {"routes": {method: [id(route) for route in routes]  # the same objects (_route_once), in order
                           for method, routes in responses.get_registry()._registered.items()},
                "registry": type(responses.get_registry()), "passthru": responses.passthru_prefixes,
                "patched": responses._patcher is not None, "stubbed": moto_models.botocore_stubber.enabled,
                "queues": boto3.client("sqs", region_name="us-east-1").list_queues().get("QueueUrls", [])}


def test_a_mock_starts_with_the_routes_moto_gives_it_and_nothing_the_last_one_held(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with mock_aws():
        boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="left-over")
    ours = _started_mock()
    monkeypatch.setattr(MockAWS, "_enable_patching", shared_work._ENABLE_PATCHING)
    theirs = _started_mock()
    assert ours == theirs
    assert sum(map(len, ours["routes"].values())) > 1000 and ours["patched"] and ours["stubbed"]
    assert ours["queues"] == []


def _ssl_context(client: Any) -> Any:
    return client._endpoint.http_session._manager.connection_pool_kw["ssl_context"]


def test_clients_without_a_proxy_share_the_ssl_context_botocore_makes_and_a_proxys_client_gets_its_own(
        monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = boto3.client("sqs", region_name="us-east-1"), boto3.client("s3", region_name="eu-west-1")
    shared, botocores = _ssl_context(first), create_urllib3_context()
    assert _ssl_context(second) is shared
    for setting in ("protocol", "options", "verify_mode", "check_hostname", "minimum_version", "maximum_version",
                    "post_handshake_auth", "verify_flags"):
        assert getattr(shared, setting) == getattr(botocores, setting), setting
    assert shared.get_ciphers() == botocores.get_ciphers()
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    proxied = boto3.client("sqs", region_name="us-east-1")
    assert proxied._endpoint.http_session._proxy_config._proxies and _ssl_context(proxied) is not shared
    assert isinstance(proxied._endpoint.http_session, URLLib3Session)
