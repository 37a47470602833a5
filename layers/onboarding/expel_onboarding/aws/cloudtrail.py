"""CloudTrail: the trail itself (guide step 1). Calls go to the trail's home region."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypedDict, cast

from expel_onboarding.aws import clients
from expel_onboarding.aws.errors import REFUSED, Rule, aws_errors, suppress_codes
from expel_onboarding.errors import OnboardingError, ResourceConflict, TransientError
from expel_onboarding.policies.event_selectors import EventSelectors

if TYPE_CHECKING:
    from mypy_boto3_cloudtrail.type_defs import AdvancedEventSelectorUnionTypeDef, EventSelectorUnionTypeDef

# Right after the bucket/key policies are written CloudTrail may not see them yet; retry, and if it
# lasts the message says what to check.
_PROPAGATION = {
    "InsufficientS3BucketPolicyException": "the bucket policy does not (yet) let cloudtrail.amazonaws.com "
                                           "write to the bucket",
    "InsufficientEncryptionPolicyException": "the key policy does not (yet) let cloudtrail.amazonaws.com "
                                             "use the KMS key",
    "S3BucketDoesNotExistException": "the bucket is not visible to CloudTrail yet",
    "KmsKeyNotFoundException": "the KMS key is not visible to CloudTrail yet",
    # The CloudWatch Logs role is made by the template moments before: IAM may not have propagated it yet.
    "InvalidCloudWatchLogsRoleArnException": "CloudTrail cannot (yet) assume the CloudWatch Logs role "
                                             "CloudTrailLogsRole (its trust policy must let "
                                             "cloudtrail.amazonaws.com assume it for this trail)",
    "InvalidCloudWatchLogsLogGroupArnException": "the CloudWatch Logs role does not (yet) let CloudTrail create "
                                                 "log streams and put events in the trail's log group",
}
_TERMINAL = {
    "CloudTrailAccessNotEnabledException":
        "trusted access for CloudTrail is not enabled in AWS Organizations. Fix: in the management account, "
        "run "
        "'aws organizations enable-aws-service-access --service-principal cloudtrail.amazonaws.com', or set "
        "OrganizationMode to false",
    "NotOrganizationMasterAccountException":
        "an organization trail can only be created from the management account. Fix: deploy the stack in the "
        "management account (guide: prerequisites), or set OrganizationMode to false",
    "NotOrganizationManagementAccountException":
        "an organization trail can only be created from the management account. Fix: deploy the stack in the "
        "management account (guide: prerequisites), or set OrganizationMode to false",
    "OrganizationNotInAllFeaturesModeException":
        "the organization does not have all features enabled. Fix: enable all features in AWS Organizations, "
        "or set OrganizationMode to false",
    "InsufficientDependencyServiceAccessPermissionException":
        "CloudTrail could not reach AWS Organizations for an organization trail. Fix: give the onboarding "
        "role the Organizations permissions an organization trail needs, or set OrganizationMode to false",
    "MaximumNumberOfTrailsExceededException":
        "this region already holds the maximum number of trails (5). Fix: delete a trail you no longer use",
    "InvalidEventSelectorsException":
        "CloudTrail refused the event selectors (more than five, or a data resource it does not accept). Fix: "
        "check the trail's data-event selectors in the CloudTrail console, then retry",
}


class TrailSettings(TypedDict):
    """The CreateTrail/UpdateTrail parameters the onboarding sets (mypy checks them against both calls)."""

    Name: str
    S3BucketName: str
    IsMultiRegionTrail: bool
    IncludeGlobalServiceEvents: bool
    EnableLogFileValidation: bool
    KmsKeyId: str
    IsOrganizationTrail: bool
    CloudWatchLogsLogGroupArn: str  # "" on UpdateTrail: no delivery to CloudWatch Logs
    CloudWatchLogsRoleArn: str


def _trail_errors(name: str) -> AbstractContextManager[None]:
    return aws_errors(
        "CloudTrail", name,
        Rule(_PROPAGATION, TransientError, "Trail {what}: {reason} ({code})"),
        Rule(_TERMINAL, OnboardingError, "Trail {what}: {reason}"),
        Rule({"AccessDeniedException"}, OnboardingError, REFUSED),
        Rule({"TrailAlreadyExistsException"}, ResourceConflict,
             "Parameter TrailName: a trail named {what} already exists (possibly with another home region). "
             "Fix: choose another TrailName"),
        busy="Trail {what}: CloudTrail is busy ({code}); retrying")


def get_trail(name: str, region: str) -> dict[str, Any] | None:
    with _trail_errors(name), suppress_codes("TrailNotFoundException"):
        return dict(clients.cloudtrail(region).get_trail(Name=name)["Trail"])
    return None


def trail_tags(trail_arn: str, region: str) -> dict[str, str]:
    with _trail_errors(trail_arn):
        response = clients.cloudtrail(region).list_tags(ResourceIdList=[trail_arn])
    return {t["Key"]: t["Value"] for entry in response["ResourceTagList"] for t in entry.get("TagsList", [])}


def create_trail(settings: TrailSettings, tags: dict[str, str], region: str) -> dict[str, Any]:
    """``settings`` are CreateTrail parameters (Name, S3BucketName, ...); tagged at creation. No CloudWatch Logs
    delivery is asked for by leaving its two parameters out."""
    given = cast("TrailSettings", {k: v for k, v in settings.items()
                                   if v != "" or k not in ("CloudWatchLogsLogGroupArn", "CloudWatchLogsRoleArn")})
    with _trail_errors(settings["Name"]):
        response = clients.cloudtrail(region).create_trail(
            **given, TagsList=[{"Key": k, "Value": v} for k, v in sorted(tags.items())])
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def update_trail(settings: TrailSettings, region: str) -> None:
    with _trail_errors(settings["Name"]):
        clients.cloudtrail(region).update_trail(**settings)


def is_logging(name: str, region: str) -> bool:
    with _trail_errors(name):
        return bool(clients.cloudtrail(region).get_trail_status(Name=name)["IsLogging"])


def start_logging(name: str, region: str) -> None:
    with _trail_errors(name):
        clients.cloudtrail(region).start_logging(Name=name)


def event_selectors(name: str, region: str) -> EventSelectors:
    with _trail_errors(name):
        response = clients.cloudtrail(region).get_event_selectors(TrailName=name)
    return EventSelectors(basic=[dict(s) for s in response.get("EventSelectors", [])],
                          advanced=[dict(s) for s in response.get("AdvancedEventSelectors", [])])


def put_event_selectors(name: str, selectors: EventSelectors, region: str) -> None:
    """Basic or advanced: a trail holds one form, and putting one replaces the other."""
    with _trail_errors(name):
        if selectors.advanced:
            clients.cloudtrail(region).put_event_selectors(
                TrailName=name,
                AdvancedEventSelectors=cast("list[AdvancedEventSelectorUnionTypeDef]", selectors.advanced))
        else:
            clients.cloudtrail(region).put_event_selectors(
                TrailName=name, EventSelectors=cast("list[EventSelectorUnionTypeDef]", selectors.basic))


def delete_trail(name: str, region: str) -> bool:
    """Teardown. False when the trail is already gone (gone counts as done)."""
    with _trail_errors(name), suppress_codes("TrailNotFoundException"):
        clients.cloudtrail(region).delete_trail(Name=name)
        return True
    return False
