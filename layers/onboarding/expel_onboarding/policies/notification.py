"""The bucket's event notification configuration (guide step 7).

S3's PutBucketNotificationConfiguration replaces the whole configuration, so writing only ours
would silently delete every other notification on the bucket. These functions build the full
document to write: every other entry kept as it is, ours replaced by its Id.

S3 also refuses two entries that would route the same object event twice: entries overlap when they
share an event type (``s3:ObjectCreated:*`` shares every ``s3:ObjectCreated:...``) and their key
filters overlap, i.e. one prefix starts the other (an empty prefix starts every key) and one suffix ends
the other. ``overlapping`` finds the entries ours would collide with, so a collision is named before
anything is written, and ``choose_destination`` decides what an existing trail's bucket needs.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from expel_onboarding.errors import InvalidParameter

NOTIFICATION_ID = "expel-cloudtrail-object-created"
DEFAULT_EVENTS = ("s3:ObjectCreated:*",)  # the guide's "All object create events"
# CloudTrail writes its log files and digests with PutObject, named ...json.gz: an entry with these
# events and an empty or a matching suffix sees every file the trail delivers.
CLOUDTRAIL_PUT_EVENTS = ("s3:ObjectCreated:*", "s3:ObjectCreated:Put")
CLOUDTRAIL_FILE_SUFFIX = ".json.gz"

# The destination lists of a notification configuration; Ids are unique across all of them.
_LISTS = ("TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations")
_DESTINATION_KEYS = {"TopicConfigurations": "TopicArn", "QueueConfigurations": "QueueArn",
                     "LambdaFunctionConfigurations": "LambdaFunctionArn"}

NotificationConfiguration = dict[str, Any]


# S3's quota of event notification configurations on one bucket (Amazon S3 service quotas: 100, not
# adjustable). An OU filter adds one entry per member account, so the OU's accounts plus the bucket's other
# entries must stay within it.
MAX_ENTRIES = 100
_ACCOUNT = re.compile(r"[0-9]{12}")


def notification_id(stack_name: str) -> str:
    """Our entry's Id on a bucket that is not ours (an existing trail's): it names the stack, so two
    onboardings never mistake each other's entries for their own."""
    return f"expel-onboarding-{stack_name}"[:255]


def account_entry_id(base_id: str, account_id: str) -> str:
    """Our entry for one member account of an OU filter (``LogFilterOrganizationalUnitId``): the stack's Id,
    a dot and the account. CloudFormation stack names have no dots, so no other stack's Id looks like it."""
    return f"{base_id}.{account_id}"


def is_ours(entry_id: str, base_id: str) -> bool:
    """Whether an entry Id is ours: ``base_id`` itself or one of its per-account entries."""
    return entry_id == base_id or (entry_id.startswith(f"{base_id}.")
                                   and bool(_ACCOUNT.fullmatch(entry_id[len(base_id) + 1:])))


def _ours(topic_arn: str, configuration_id: str, events: Sequence[str], prefix: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"Id": configuration_id, "TopicArn": topic_arn, "Events": sorted(set(events))}
    if prefix:
        # An existing trail's bucket may hold other things: only the trail's log files (and digests).
        entry["Filter"] = {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}}
    return entry


def _writable(existing: NotificationConfiguration | None) -> NotificationConfiguration:
    """The GET response as a PUT body: without boto3's ResponseMetadata, lists copied."""
    result = copy.deepcopy(existing or {})
    result.pop("ResponseMetadata", None)
    return result


def key_filter(entry: dict[str, Any]) -> tuple[str, str]:
    """(prefix, suffix) of an entry; S3 answers the rule names as "Prefix"/"Suffix", accepts any case."""
    rules = (entry.get("Filter") or {}).get("Key", {}).get("FilterRules", [])
    found = {str(rule.get("Name", "")).lower(): str(rule.get("Value", "")) for rule in rules}
    return found.get("prefix", ""), found.get("suffix", "")


def destination(entry: dict[str, Any]) -> str:
    return str(entry.get("TopicArn") or entry.get("QueueArn") or entry.get("LambdaFunctionArn") or "")


def events_overlap(first: str, second: str) -> bool:
    """``s3:ObjectCreated:*`` covers ``s3:ObjectCreated:Put``; two concrete names only themselves."""
    def covers(wide: str, narrow: str) -> bool:
        return wide == narrow or (wide.endswith("*") and narrow.startswith(wide[:-1]))
    return covers(first, second) or covers(second, first)


def filters_overlap(first: tuple[str, str], second: tuple[str, str]) -> bool:
    (prefix_a, suffix_a), (prefix_b, suffix_b) = first, second
    return ((prefix_a.startswith(prefix_b) or prefix_b.startswith(prefix_a))
            and (suffix_a.endswith(suffix_b) or suffix_b.endswith(suffix_a)))


@dataclass(frozen=True)
class Entry:
    """One entry of a bucket's notification configuration, with the list it sits in."""

    kind: str  # "TopicConfigurations", "QueueConfigurations" or "LambdaFunctionConfigurations"
    entry: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.entry.get("Id", "?"))

    @property
    def destination(self) -> str:
        return destination(self.entry)

    def covers_log_files(self, prefix: str) -> bool:
        """Whether it sends S3 an event for every file a trail delivers under ``prefix``."""
        entry_prefix, entry_suffix = key_filter(self.entry)
        events = [str(e) for e in self.entry.get("Events", [])]
        return (prefix.startswith(entry_prefix) and CLOUDTRAIL_FILE_SUFFIX.endswith(entry_suffix)
                and any(e in CLOUDTRAIL_PUT_EVENTS for e in events))

    def describe(self) -> str:
        prefix, suffix = key_filter(self.entry)
        where = ", ".join(part for part in (f"prefix {prefix!r}" if prefix else "",
                                            f"suffix {suffix!r}" if suffix else "") if part) or "every key"
        return (f"notification {self.id} ({', '.join(self.entry.get('Events', []))} on {where} -> "
                f"{self.destination})")


def overlapping(existing: NotificationConfiguration | None, prefix: str = "", suffix: str = "",
                events: Sequence[str] = DEFAULT_EVENTS, ignore_id: str = NOTIFICATION_ID) -> list[Entry]:
    """The entries S3 would say ours overlaps (``ignore_id``: ours, and its per-account entries, which the
    merge replaces)."""
    found = []
    for kind in _LISTS:
        for entry in (existing or {}).get(kind, []):
            if is_ours(str(entry.get("Id", "")), ignore_id):
                continue
            shares_event = any(events_overlap(str(theirs), ours)
                               for theirs in entry.get("Events", []) for ours in events)
            if shares_event and filters_overlap(key_filter(entry), (prefix, suffix)):
                found.append(Entry(kind, entry))
    return found


def merge_notification_configuration(existing: NotificationConfiguration | None, topic_arn: str,
                                     configuration_id: str = NOTIFICATION_ID,
                                     events: Sequence[str] = DEFAULT_EVENTS,
                                     prefix: str = "") -> NotificationConfiguration:
    """The whole configuration to write with our topic entry in it.

    An entry with our Id is replaced where it stands (so the order of the rest is stable) and an
    entry with our Id in another destination list is dropped, since S3 requires unique Ids.
    Everything else, including ``EventBridgeConfiguration``, is kept unchanged.
    """
    result = _writable(existing)
    ours = _ours(topic_arn, configuration_id, events, prefix)
    for name in _LISTS:
        if name == "TopicConfigurations" or name not in result:
            continue
        result[name] = [entry for entry in result[name] if entry.get("Id") != configuration_id]
        if not result[name]:
            del result[name]
    topics = list(result.get("TopicConfigurations", []))
    for index, entry in enumerate(topics):
        if entry.get("Id") == configuration_id:
            topics[index] = ours
            break
    else:
        topics.append(ours)
    result["TopicConfigurations"] = topics
    return result


def remove_notification(existing: NotificationConfiguration | None,
                        configuration_id: str = NOTIFICATION_ID) -> NotificationConfiguration:
    """Teardown: the whole configuration without our entry (and our per-account entries); lists left empty
    are dropped, as S3 itself omits them."""
    result = _writable(existing)
    for name in _LISTS:
        if name in result:
            result[name] = [entry for entry in result[name] if not is_ours(str(entry.get("Id", "")),
                                                                           configuration_id)]
            if not result[name]:
                del result[name]
    return result


def wanted_entry(topic_arn: str, configuration_id: str = NOTIFICATION_ID,
                 events: Sequence[str] = DEFAULT_EVENTS, prefix: str = "") -> dict[str, Any]:
    """Our entry as step 7 writes it (for a drift finding's "should be")."""
    return _ours(topic_arn, configuration_id, events, prefix)


def current_entries(existing: NotificationConfiguration | None,
                    configuration_id: str = NOTIFICATION_ID) -> list[dict[str, Any]]:
    """The entries carrying our Id, in whichever destination list (for a drift finding's "is now")."""
    return [entry for name in _LISTS for entry in (existing or {}).get(name, []) if entry.get("Id") == configuration_id]


def notification_present(existing: NotificationConfiguration | None, topic_arn: str,
                         configuration_id: str = NOTIFICATION_ID,
                         events: Sequence[str] = DEFAULT_EVENTS, prefix: str = "") -> bool:
    """True when our entry is already exactly right, so step 7 need not write at all."""
    wanted = _ours(topic_arn, configuration_id, events, prefix)
    found = current_entries(existing, configuration_id)
    if len(found) != 1:
        return False
    entry = found[0]
    return (entry.get("TopicArn") == wanted["TopicArn"]
            and sorted(set(entry.get("Events", []))) == wanted["Events"]
            and key_filter(entry) == (prefix, ""))


@dataclass(frozen=True)
class Destination:
    """Where an existing trail's log file events go: our entry to ``topic_arn`` ("" = the onboarding's own
    topic), or, when ``entry_id`` is set, the customer's entry that already sends them to ``topic_arn``."""

    topic_arn: str = ""
    entry_id: str = ""


_KINDS = {"QueueConfigurations": "an SQS queue", "LambdaFunctionConfigurations": "a Lambda function",
          "TopicConfigurations": "an SNS topic"}


def choose_destination(existing: NotificationConfiguration | None, prefix: str, our_id: str,
                       existing_topic_arn: str = "", account_prefixes: Sequence[str] | None = None) -> Destination:
    """The bucket of an existing trail: add our entry filtered to the trail's ``prefix``, unless S3 would
    refuse it as overlapping. An entry that already sends every log file to an SNS topic is used instead
    (Expel's queue subscribes to that topic: fan-out, nothing of theirs changes); any other overlap is
    refused before anything is written, naming the entry and the fix.

    ``account_prefixes`` (an OU filter: one entry per member account's folder) are where our entries go
    instead; a customer's entry overlapping any of them is refused, since using its topic would send Expel
    every account's log files, not the OU's."""
    if account_prefixes is not None:
        _refuse_account_overlaps(existing, prefix, our_id, account_prefixes)
        return Destination(topic_arn=existing_topic_arn)
    clashes = overlapping(existing, prefix, ignore_id=our_id)
    if not clashes:
        return Destination(topic_arn=existing_topic_arn)
    covering = [c for c in clashes if c.kind == "TopicConfigurations" and c.covers_log_files(prefix)]
    if covering:
        chosen = covering[0]
        if existing_topic_arn and chosen.destination != existing_topic_arn:
            raise InvalidParameter(
                "ExistingTopicArn", f"the trail's bucket already sends its log files to another topic: "
                                    f"{chosen.describe()}, and S3 allows one destination per object event",
                f"leave ExistingTopicArn empty (Expel's queue then subscribes to {chosen.destination}), or point "
                f"that notification at {existing_topic_arn}")
        return Destination(topic_arn=chosen.destination, entry_id=chosen.id)
    first = clashes[0]
    if first.kind == "TopicConfigurations":
        problem = (f"the trail's bucket has {first.describe()}, which overlaps the log files under {prefix!r} "
                   "but does not send all of them, so S3 would refuse Expel's notification beside it")
        fix = (f"widen it to every object created under {prefix!r} (no suffix, or '.json.gz'), or remove it, "
               "then retry: Expel's queue then subscribes to its topic")
    else:
        problem = (f"the trail's bucket has {first.describe()}: object-created events under {prefix!r} already "
                   f"go to {_KINDS[first.kind]}, and S3 allows one destination per object event")
        fix = ("send that notification to an SNS topic instead and subscribe the queue or function to the topic "
               "(S3's fan-out), then retry: the onboarding subscribes Expel's queue to the same topic (or name it "
               "in ExistingTopicArn)")
    raise InvalidParameter("ExistingTrailName", problem, fix)


def _refuse_account_overlaps(existing: NotificationConfiguration | None, prefix: str, our_id: str,
                             account_prefixes: Sequence[str]) -> None:
    theirs = sum(1 for kind in _LISTS for entry in (existing or {}).get(kind, [])
                 if not is_ours(str(entry.get("Id", "")), our_id))
    if theirs + len(account_prefixes) > MAX_ENTRIES:
        raise InvalidParameter(
            "LogFilterOrganizationalUnitId",
            f"the OU has {len(account_prefixes)} accounts, one notification entry each, and the bucket has {theirs} "
            f"entries of its own: S3 holds at most {MAX_ENTRIES} event notification configurations per bucket",
            "choose an OU with fewer accounts (a nested OU), or leave LogFilterOrganizationalUnitId empty so that one "
            "entry covers the organization's whole folder")
    for account_prefix in account_prefixes:
        for clash in overlapping(existing, account_prefix, ignore_id=our_id):
            account = account_prefix.rstrip("/").rsplit("/", 1)[-1]
            problem = (f"the trail's bucket has {clash.describe()}, which overlaps the log folder {account_prefix!r} "
                       f"of account {account} in the OU; S3 allows one destination per object event, so it would "
                       "refuse Expel's entry for that account")
            if clash.kind == "TopicConfigurations" and clash.covers_log_files(prefix):
                fix = (f"leave LogFilterOrganizationalUnitId empty (Expel's queue then subscribes to "
                       f"{clash.destination} and reads every account's log files under {prefix!r}), or narrow that "
                       "notification to folders of accounts outside the OU, then retry")
            else:
                fix = (f"narrow or remove that notification so that it no longer covers {account_prefix!r}, or leave "
                       "LogFilterOrganizationalUnitId empty, then retry")
            raise InvalidParameter("LogFilterOrganizationalUnitId", problem, fix)


def account_prefixes(folder: str, accounts: Sequence[str]) -> list[str]:
    """Where CloudTrail writes each member account's logs in an organization trail's folder."""
    return [f"{folder}{account}/" for account in accounts]


def wanted_entries(topic_arn: str, base_id: str, folder: str, accounts: Sequence[str] | None,
                   events: Sequence[str] = DEFAULT_EVENTS) -> list[dict[str, Any]]:
    """Our entries on an existing trail's bucket: one for the trail's log ``folder``, or with an OU filter
    (``accounts``: the OU's member accounts) one per account's folder, each Id naming the account."""
    if accounts is None:
        return [_ours(topic_arn, base_id, events, folder)]
    return [_ours(topic_arn, account_entry_id(base_id, account), events, prefix)
            for account, prefix in zip(accounts, account_prefixes(folder, accounts), strict=True)]


def _comparable(entry: dict[str, Any]) -> tuple[str, tuple[str, ...], tuple[str, str]]:
    return str(entry.get("TopicArn", "")), tuple(sorted(set(entry.get("Events", [])))), key_filter(entry)


Held = dict[str, Any] | list[dict[str, Any]] | None


def entry_differences(existing: NotificationConfiguration | None, wanted: Sequence[dict[str, Any]],
                      base_id: str) -> list[tuple[str, Held, dict[str, Any] | None]]:
    """(Id, what the bucket holds, what it should hold) of each entry of ours that is missing, says something
    else, or should not be there any more (an account that left the OU: should hold None). Empty: in step."""
    held: dict[str, list[dict[str, Any]]] = {}
    for name in _LISTS:
        for entry in (existing or {}).get(name, []):
            entry_id = str(entry.get("Id", ""))
            if is_ours(entry_id, base_id):
                held.setdefault(entry_id, []).append({**entry, "_list": name})
    def shown(there: list[dict[str, Any]]) -> Held:
        entries = [{k: v for k, v in e.items() if k != "_list"} for e in there]
        return entries[0] if len(entries) == 1 else entries or None

    differences: list[tuple[str, Held, dict[str, Any] | None]] = []
    for entry in wanted:
        there = held.pop(entry["Id"], [])
        right = (len(there) == 1 and there[0]["_list"] == "TopicConfigurations"
                 and _comparable(there[0]) == _comparable(entry))
        if not right:
            differences.append((str(entry["Id"]), shown(there), entry))
    differences.extend((entry_id, shown(there), None) for entry_id, there in sorted(held.items()))
    return differences


def merge_entries(existing: NotificationConfiguration | None, wanted: Sequence[dict[str, Any]],
                  base_id: str) -> NotificationConfiguration:
    """The whole configuration to write: every entry that is not ours kept as it is (order too), ours
    replaced by ``wanted`` (an entry of ours no longer wanted, e.g. of an account that left the OU, dropped)."""
    result = remove_notification(existing, base_id)
    topics = [*result.get("TopicConfigurations", []), *(dict(e) for e in wanted)]
    if topics:
        result["TopicConfigurations"] = topics
    return result
