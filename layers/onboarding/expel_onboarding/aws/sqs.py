"""SQS: the queue Expel polls (guide step 5). Thin wrappers, ClientError codes mapped to our errors."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from expel_onboarding.aws import clients
from expel_onboarding.aws.errors import ACCESS_DENIED, REFUSED, Rule, aws_errors, suppress_codes
from expel_onboarding.errors import OnboardingError, ResourceConflict, TransientError
from expel_onboarding.policies import policy_attribute

if TYPE_CHECKING:
    from mypy_boto3_sqs.literals import QueueAttributeNameType

    # What CreateQueue and SetQueueAttributes take: attribute names are checked by mypy.
    QueueAttributes = dict[QueueAttributeNameType, str]

MISSING = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


def _errors(what: str) -> AbstractContextManager[None]:
    return aws_errors(
        "SQS", what,
        # SQS refuses a queue name for 60 s after its deletion (a teardown just ran).
        Rule({"AWS.SimpleQueueService.QueueDeletedRecently", "QueueDeletedRecently"}, TransientError,
             "SQS still holds the name after a recent deletion ({what}); retrying"),
        Rule({"QueueAlreadyExists", "QueueNameExists", "AWS.SimpleQueueService.QueueNameExists"}, ResourceConflict,
             "SQS: {what} failed: a queue of that name exists with other settings (a concurrent run?). Retry the "
             "onboarding"),
        Rule(ACCESS_DENIED, OnboardingError, REFUSED),
        Rule({"InvalidAttributeValue", "InvalidAttributeName", "InvalidParameterValue",
              "InvalidParameterValueException", "InvalidSecurity", "KmsAccessDenied", "KmsDisabled",
              "KmsInvalidState", "KmsNotFound", "KmsInvalidKeyUsage", "OverLimit"},
             OnboardingError, "SQS rejected {what} ({code}): {exc}"))


def queue_url(name: str, account_id: str, region: str) -> str | None:
    """The queue's URL, or None when no queue has that name in this account."""
    with _errors(f"looking up queue {name}"), suppress_codes(*MISSING):
        return str(clients.sqs(region).get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account_id)
                   ["QueueUrl"])
    return None


def queue_attributes(url: str, region: str) -> dict[str, str]:
    with _errors(f"reading queue {url}"):
        attributes = clients.sqs(region).get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    return {str(name): value for name, value in attributes.get("Attributes", {}).items()}


def queue_tags(url: str, region: str) -> dict[str, str]:
    with _errors(f"reading the tags of queue {url}"):
        return dict(clients.sqs(region).list_queue_tags(QueueUrl=url).get("Tags", {}))


def create_queue(name: str, attributes: QueueAttributes, tags: dict[str, str], region: str) -> str:
    """A Standard queue with its attributes and tags set in the same call, so it never exists
    unencrypted, open, or without the ownership tag. Returns the queue URL."""
    with _errors(f"creating queue {name}"):
        response = clients.sqs(region).create_queue(QueueName=name, Attributes=attributes, tags=tags)
    return str(response["QueueUrl"])


def set_queue_attributes(url: str, attributes: QueueAttributes, region: str) -> None:
    with _errors(f"setting {', '.join(sorted(attributes))} on queue {url}"):
        clients.sqs(region).set_queue_attributes(QueueUrl=url, Attributes=attributes)


def delete_queue(url: str, region: str) -> None:
    """Teardown of a queue this stack created; a queue already gone is fine."""
    with _errors(f"deleting queue {url}"), suppress_codes(*MISSING):
        clients.sqs(region).delete_queue(QueueUrl=url)


def queue_policy(attributes: dict[str, str]) -> dict[str, Any] | None:
    """The queue's access policy from its attributes, parsed; None when it has none."""
    return policy_attribute(attributes)


# --- Messages: the verification canary. Only transient codes are mapped here; the verification step maps
# refusals itself, because its message names its own fix.

def receive_messages(url: str, max_messages: int, wait_seconds: int, visibility_seconds: int,
                     region: str | None = None) -> list[dict[str, Any]]:
    with aws_errors("SQS", f"receiving from queue {url}"):
        response = clients.sqs(region).receive_message(
            QueueUrl=url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=visibility_seconds)
    return [dict(message) for message in response.get("Messages", [])]


def delete_message(url: str, receipt_handle: str, region: str | None = None) -> None:
    with aws_errors("SQS", f"deleting a message of queue {url}"):
        clients.sqs(region).delete_message(QueueUrl=url, ReceiptHandle=receipt_handle)


def release_messages(url: str, receipt_handles: list[str], region: str | None = None) -> list[dict[str, Any]]:
    """Make received messages visible again now (visibility 0), ten per call. Returns the entries SQS
    could not release (they reappear by themselves when their visibility timeout ends)."""
    failed: list[dict[str, Any]] = []
    for start in range(0, len(receipt_handles), 10):
        batch = receipt_handles[start:start + 10]
        with aws_errors("SQS", f"releasing messages of queue {url}"):
            response = clients.sqs(region).change_message_visibility_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(batch)])
        failed.extend(dict(entry) for entry in response.get("Failed", []))
    return failed
