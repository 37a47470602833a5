"""The clients Step Functions' engine signs with: one per service, region, endpoint and the role's current session."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from local_cloud.enforcement import credentials, services

ROLE = "arn:aws:iam::123456789012:role/machine"


@pytest.fixture
def factory(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[tuple[str, str]], dict[str, str]]:
    """The engine's client factory over a moto one that counts what it made; the role's session keys in ``keys``."""
    made: list[tuple[str, str]] = []
    keys = {"access": "ASIAFIRST"}

    def moto_factory(region: str, service: str, state_credentials: Any = None) -> Any:
        made.append((region, service))
        return SimpleNamespace(meta=SimpleNamespace(endpoint_url="http://localhost:5000", config=None))

    def assume(role_arn: str, service: str, session_name: str, **_: Any) -> credentials.SessionCredentials:
        assert service == "states.amazonaws.com"
        return credentials.SessionCredentials(keys["access"], "secret", f"token-of-{role_arn}", 4e9)

    monkeypatch.setattr(credentials, "assume", assume)
    monkeypatch.setattr(services, "_engine_clients", {})
    return services._engine_client_factory(moto_factory), made, keys


def test_a_role_session_signs_every_task_with_one_client_per_service_and_region(factory) -> None:  # noqa: ANN001
    make, made, _ = factory
    role = SimpleNamespace(role_arn=ROLE)
    first = make(region="eu-west-1", service="lambda", state_credentials=role)
    assert make(region="eu-west-1", service="lambda", state_credentials=role) is first
    assert first.meta.region_name == "eu-west-1" and first.meta.endpoint_url == "http://localhost:5000"
    signer = first._request_signer._credentials
    assert signer.access_key == "ASIAFIRST" and signer.token == f"token-of-{ROLE}"
    assert make(region="eu-west-1", service="sqs", state_credentials=role) is not first
    assert make(region="us-east-1", service="lambda", state_credentials=role) is not first
    other = make(region="eu-west-1", service="lambda", state_credentials=SimpleNamespace(role_arn=ROLE + "-2"))
    assert other is not first and other._request_signer._credentials.token == f"token-of-{ROLE}-2"
    assert len(made) == 4  # moto's factory asked once for each client made


def test_refreshed_role_credentials_get_a_client_of_their_own(factory) -> None:  # noqa: ANN001
    make, _, keys = factory
    role = SimpleNamespace(role_arn=ROLE)
    first = make(region="eu-west-1", service="lambda", state_credentials=role)
    keys["access"] = "ASIASECOND"  # the cached session was about to expire: a new one
    second = make(region="eu-west-1", service="lambda", state_credentials=role)
    assert second is not first and second._request_signer._credentials.access_key == "ASIASECOND"


def test_without_a_role_the_engine_gets_motos_client_each_time(factory) -> None:  # noqa: ANN001
    make, made, _ = factory
    assert make(region="eu-west-1", service="lambda") is not make(region="eu-west-1", service="lambda")
    assert len(made) == 2


def test_a_role_the_engine_cannot_assume_is_refused_as_before(monkeypatch: pytest.MonkeyPatch, factory) -> None:  # noqa: ANN001
    make, _, _ = factory

    def refuse(*_: Any, **__: Any) -> credentials.SessionCredentials:
        raise credentials.RoleNotAssumable("states.amazonaws.com may not assume it")

    monkeypatch.setattr(credentials, "assume", refuse)
    with pytest.raises(credentials.RoleNotAssumable):
        make(region="eu-west-1", service="lambda", state_credentials=SimpleNamespace(role_arn=ROLE))
