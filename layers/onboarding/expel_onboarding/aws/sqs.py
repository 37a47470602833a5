"""SQS: the queue Expel polls (guide step 5). Thin wrappers, ClientError codes mapped to our errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from expel_onboarding.aws.clients import client, error_code
from expel_onboarding.errors import OnboardingError, ResourceConflict, TransientError

_MISSING = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
_TRANSIENT = {"Throttling", "ThrottlingException", "RequestThrottled", "InternalError", "InternalFailure",
              "ServiceUnavailable", "KmsThrottled", "KMS.ThrottlingException"}


@contextmanager
def _errors(what: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        code = error_code(exc)
        if code in _TRANSIENT:
            raise TransientError(f"SQS is busy ({code}) on {what}; retrying") from exc
        if code in ("AWS.SimpleQueueService.QueueDeletedRecently", "QueueDeletedRecently"):
            # SQS refuses a queue name for 60 s after its deletion (a teardown just ran).
            raise TransientError(f"SQS still holds the name after a recent deletion ({what}); retrying") from exc
        if code in ("QueueAlreadyExists", "QueueNameExists", "AWS.SimpleQueueService.QueueNameExists"):
            raise ResourceConflict(f"SQS: {what} failed: a queue of that name exists with other settings "
                                   "(a concurrent run?). Retry the onboarding") from exc
        if code in ("AccessDenied", "AccessDeniedException"):
            raise OnboardingError(
                f"SQS refused {what} ({code}): the step's Lambda role lacks the SQS permission for it, "
                "or a service control policy denies it. Fix the role (see template.yaml) and retry") from exc
        if code in ("InvalidAttributeValue", "InvalidAttributeName", "InvalidParameterValue",
                    "InvalidParameterValueException", "InvalidSecurity", "KmsAccessDenied", "KmsDisabled",
                    "KmsInvalidState", "KmsNotFound", "KmsInvalidKeyUsage", "OverLimit"):
            raise OnboardingError(f"SQS rejected {what} ({code}): {exc}") from exc
        raise


def queue_url(name: str, account_id: str, region: str) -> str | None:
    """The queue's URL, or None when no queue has that name in this account."""
    with _errors(f"looking up queue {name}"):
        try:
            response = client("sqs", region).get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account_id)
        except Exception as exc:
            if error_code(exc) in _MISSING:
                return None
            raise
    return str(response["QueueUrl"])


def queue_attributes(url: str, region: str) -> dict[str, str]:
    with _errors(f"reading queue {url}"):
        return dict(client("sqs", region).get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
                    .get("Attributes", {}))


def queue_tags(url: str, region: str) -> dict[str, str]:
    with _errors(f"reading the tags of queue {url}"):
        return dict(client("sqs", region).list_queue_tags(QueueUrl=url).get("Tags", {}))


def create_queue(name: str, attributes: dict[str, str], tags: dict[str, str], region: str) -> str:
    """A Standard queue with its attributes and tags set in the same call, so it never exists
    unencrypted, open, or without the ownership tag. Returns the queue URL."""
    with _errors(f"creating queue {name}"):
        response = client("sqs", region).create_queue(QueueName=name, Attributes=attributes, tags=tags)
    return str(response["QueueUrl"])


def set_queue_attributes(url: str, attributes: dict[str, str], region: str) -> None:
    with _errors(f"setting {', '.join(sorted(attributes))} on queue {url}"):
        client("sqs", region).set_queue_attributes(QueueUrl=url, Attributes=attributes)


def delete_queue(url: str, region: str) -> None:
    """Teardown of a queue this stack created; a queue already gone is fine."""
    with _errors(f"deleting queue {url}"):
        try:
            client("sqs", region).delete_queue(QueueUrl=url)
        except Exception as exc:
            if error_code(exc) in _MISSING:
                return
            raise


def queue_policy(attributes: dict[str, str]) -> dict[str, Any] | None:
    """The queue's access policy from its attributes, parsed; None when it has none."""
    policy = attributes.get("Policy")
    return json.loads(policy) if policy else None
