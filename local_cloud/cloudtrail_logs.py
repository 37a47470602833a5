"""CloudTrail in the local cloud: the API calls it saw, delivered by every logging trail as AWS does.

``Recorder`` (WSGI middleware, the first to see a request) turns each management-event API call into a
CloudTrail record: who (``userIdentity`` from the caller's key), what (``eventSource``, ``eventName``,
``requestParameters`` with secrets hidden as CloudTrail hides them), where, when, ``readOnly``, and the
``errorCode``/``errorMessage`` of a refused call. Data events (S3 object reads and writes, SQS messages,
SNS publishes, Lambda invokes, CloudWatch Logs writes) are not management events and a trail that
keeps the guide's "Choose log events" defaults does not log them.

``Delivery`` is the trail side. On every interval (AWS: about five minutes; here compressed) each trail
that is logging writes, per account and region it covers, one gzip JSON file ``{"Records": [...]}`` of
the calls since its last file to
``<bucket>/[<prefix>/]AWSLogs/[<org id>/]<account>/CloudTrail/<region>/YYYY/MM/DD/
<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<16 characters>.json.gz``, encrypted with the trail's
KMS key (SSE-KMS), as ``cloudtrail.amazonaws.com``; the bucket's event notifications fire as for any
other object. With log file validation on, every digest interval (AWS: an hour) it writes a digest per
account and region under ``CloudTrail-Digest/``: the files delivered since the last one with the SHA-256
of their uncompressed content, chained to the previous digest, signed SHA256withRSA with a per-region key
(signature in the object's ``signature`` metadata; the public key from ``ListPublicKeys``), so
``aws cloudtrail validate-logs`` can check the chain. Digest files are SSE-S3 encrypted, as CloudTrail's
are. ``GetTrailStatus`` reports the real delivery times and the last delivery error.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local_cloud import api_calls
from local_cloud.background import Loop
from local_cloud.enforcement import identity

log = logging.getLogger(__name__)

EVENT_VERSION = "1.09"
HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
# Request fields CloudTrail never logs in clear (secret values, plaintexts, parameter values that may be NoEcho).
_SECRET_FIELDS = {"SecretString", "SecretBinary", "Plaintext", "Password", "NewPassword", "OldPassword",
                  "ParameterValue", "PrivateKey", "ClientSecret"}
# Data events, not management events (CloudTrail "Logging data events"); CloudWatch Logs and metric
# writes are not logged at all.
_DATA_EVENTS = {
    "s3": {"GetObject", "PutObject", "CopyObject", "HeadObject", "DeleteObject", "DeleteObjects", "ListObjects",
           "ListObjectsV2", "ListObjectVersions", "CreateMultipartUpload", "UploadPart", "UploadPartCopy",
           "CompleteMultipartUpload", "AbortMultipartUpload", "ListParts", "GetObjectAcl", "PutObjectAcl",
           "GetObjectTagging", "PutObjectTagging", "DeleteObjectTagging", "RestoreObject", "SelectObjectContent",
           "GetObjectAttributes"},
    "sqs": {"SendMessage", "SendMessageBatch", "ReceiveMessage", "DeleteMessage", "DeleteMessageBatch",
            "ChangeMessageVisibility", "ChangeMessageVisibilityBatch"},
    "sns": {"Publish", "PublishBatch"},
    "lambda": {"Invoke", "InvokeWithResponseStream", "InvokeAsync"},
    "logs": {"PutLogEvents", "GetLogEvents", "FilterLogEvents"},
    "cloudwatch": {"PutMetricData"},
}
# Global services: logged (in us-east-1) only by trails with IncludeGlobalServiceEvents.
_GLOBAL_SERVICES = {"iam", "cloudfront", "route53", "organizations"}
_FILE_SUFFIX = string.ascii_letters + string.digits


def management_event(call: api_calls.ApiCall) -> bool:
    return call.operation not in _DATA_EVENTS.get(call.service, ())


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------------------- recording
@dataclass
class EventLog:
    """The records of every call the local cloud saw, in order (bounded: the oldest are dropped)."""

    limit: int = 200_000
    _records: list[tuple[int, float, dict[str, Any]]] = field(default_factory=list)
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, record: dict[str, Any], at: float | None = None) -> None:
        with self._lock:
            self._records.append((self._next, time.time() if at is None else at, record))
            self._next += 1
            if len(self._records) > self.limit:
                del self._records[: len(self._records) - self.limit]

    def since(self, cursor: int) -> tuple[int, list[dict[str, Any]]]:
        """Records from sequence number ``cursor`` on, and the cursor after them."""
        with self._lock:
            # Sequence numbers are consecutive: the records from ``cursor`` on are a tail of the list, found
            # without reading the rest (a delivery round asks every second, the log holds every call).
            first = self._records[0][0] if self._records else self._next
            return self._next, [record for _, _, record in self._records[max(cursor - first, 0):]]

    def cursor_at(self, moment: float) -> int:
        """The first sequence number recorded at or after ``moment``."""
        with self._lock:
            return next((seq for seq, at, _ in self._records if at >= moment), self._next)

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return [record for _, _, record in self._records]

    def history(self) -> list[tuple[int, dict[str, Any]]]:
        """Every record with its sequence number, in recording order (CloudTrail's Event history)."""
        with self._lock:
            return [(seq, record) for seq, _, record in self._records]


def user_identity(call: api_calls.ApiCall) -> dict[str, Any]:
    """Who made the call, as CloudTrail writes it: an IAM user's or an assumed role's session when IAM
    issued the key, else (the dummy keys people pass to the local cloud) the account's root user."""
    from moto.iam.models import get_account_id_from, iam_backends

    account = get_account_id_from(call.access_key)
    iam = iam_backends[account]["aws"]
    holder = iam.access_keys.get(call.access_key)
    role_arn = getattr(holder, "role_arn", None)
    if role_arn:  # an sts:AssumeRole session
        role_name = role_arn.rsplit("/", 1)[-1]
        try:
            role_id = iam.get_role_by_arn(role_arn).id
        except Exception:
            role_id = "AROA" + hashlib.sha256(role_arn.encode()).hexdigest()[:17].upper()
        # The key is IAM's record; the session (its name, its assumed-role ARN) is STS's.
        session = identity.sts_session(account, "aws", call.access_key)
        session_name = session.session_name if session else "session"
        arn = session.arn if session else f"arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}"
        return {"type": "AssumedRole", "principalId": f"{role_id}:{session_name}", "arn": arn,
                "accountId": account, "accessKeyId": call.access_key,
                "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": role_id, "arn": role_arn,
                                                     "accountId": account, "userName": role_name},
                                   "attributes": {"creationDate": _iso(datetime.now(UTC)),
                                                  "mfaAuthenticated": "false"}}}
    user_name = getattr(holder, "user_name", None)
    if user_name:
        user = iam.get_user(user_name)
        return {"type": "IAMUser", "principalId": user.id, "arn": user.arn, "accountId": account,
                "accessKeyId": call.access_key, "userName": user_name}
    return {"type": "Root", "principalId": account, "arn": f"arn:aws:iam::{account}:root", "accountId": account,
            "accessKeyId": call.access_key}


def _hidden(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: HIDDEN if k in _SECRET_FIELDS or k.rsplit(".", 1)[-1] in _SECRET_FIELDS else _hidden(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_hidden(v) for v in value]
    return value


def request_parameters(call: api_calls.ApiCall) -> dict[str, Any] | None:
    params = {k: v for k, v in call.params.items() if k not in ("Action", "Version")}
    if call.service == "s3":
        renamed = {"bucketName" if k == "Bucket" else k[:1].lower() + k[1:]: v for k, v in params.items()}
        return _hidden(renamed) or None
    return _hidden(params) or None


def record_of(call: api_calls.ApiCall, identity: dict[str, Any], request_id: str, error_code: str = "",
              error_message: str = "") -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": identity,
        "eventTime": _iso(datetime.now(UTC)),
        "eventSource": call.event_source,
        "eventName": call.operation,
        "awsRegion": call.region,
        "sourceIPAddress": call.source_ip,
        "userAgent": call.user_agent,
        "requestParameters": request_parameters(call),
        "responseElements": None,
        "requestID": request_id or str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": api_calls.read_only(call.operation),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": identity["accountId"],
        "eventCategory": "Management",
    }
    if error_code:
        record["errorCode"] = error_code
        record["errorMessage"] = error_message
    return record


class Recorder:
    """WSGI middleware: records every management-event call after its answer (refused calls too, with
    their error, as CloudTrail does; also a call an injected fault answered)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], events: EventLog,
                 identity: Callable[[api_calls.ApiCall], dict[str, Any]] = user_identity) -> None:
        self.app = app
        self.events = events
        self.identity = identity

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        call = api_calls.identify(environ)
        if call is None or not management_event(call):
            return self.app(environ, start_response)
        answer: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer["status"], answer["headers"] = int(status.split()[0]), headers
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        body = self.app(environ, capture)
        if answer.get("status", 200) >= 400:
            body = list(body)  # error documents are small: read them to name the error
        try:
            self._record(call, answer, body if isinstance(body, list) else None)
        except Exception:
            log.exception("could not record %s:%s", call.service, call.operation)
        return body

    def _record(self, call: api_calls.ApiCall, answer: dict[str, Any], body: list[bytes] | None) -> None:
        headers = {k.lower(): v for k, v in answer.get("headers", [])}
        request_id = headers.get("x-amzn-requestid") or headers.get("x-amz-request-id") or ""
        code = message = ""
        if answer.get("status", 200) >= 400:
            code, message = _error_of(b"".join(body or []), headers)
        self.events.add(record_of(call, self.identity(call), request_id, code, message))


def _error_of(body: bytes, headers: dict[str, str]) -> tuple[str, str]:
    text = body.decode("utf-8", "replace")
    try:
        document = json.loads(text)
        code = str(document.get("__type") or headers.get("x-amzn-errortype", "")).rsplit("#", 1)[-1]
        return code.split(":")[0], str(document.get("message") or document.get("Message") or "")
    except (ValueError, AttributeError):
        pass
    import re

    code_match = re.search(r"<Code>(.*?)</Code>", text, re.DOTALL)
    message_match = re.search(r"<Message>(.*?)</Message>", text, re.DOTALL)
    return (code_match.group(1) if code_match else headers.get("x-amzn-errortype", "Error"),
            message_match.group(1) if message_match else "")


# -------------------------------------------------------------------------------------------- delivery
@dataclass
class _Signer:
    """A region's digest signing key (CloudTrail keeps one per region and publishes the public half)."""

    private_key: Any
    der: bytes
    fingerprint: str
    valid_from: datetime


@dataclass
class _Chain:
    """Per trail, account and region: the files since the last digest and the last digest itself."""

    log_files: list[dict[str, Any]] = field(default_factory=list)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    previous: dict[str, Any] | None = None


@dataclass
class _TrailState:
    cursor: int
    last_digest: float
    chains: dict[tuple[str, str], _Chain] = field(default_factory=dict)


# Why a write to the bucket may be refused: (trail, bucket, key, kms key ARN) -> AWS error code or None.
DeliveryCheck = Callable[[Any, Any, str, str | None], str | None]


class Delivery(Loop):
    """Every logging trail's log files (every ``interval`` seconds) and digests (every ``digest_interval``)."""

    thread_name = "cloudtrail-delivery"

    def __init__(self, events: EventLog, interval: float = 5.0, digest_interval: float = 60.0,
                 check: DeliveryCheck | None = None) -> None:
        self.events = events
        self.interval = interval
        self.digest_interval = digest_interval
        self.check = check or (lambda trail, bucket, key, kms_key: None)
        self._trails: dict[str, _TrailState] = {}
        self._signers: dict[str, _Signer] = {}
        self._lock = threading.Lock()

    def tick(self) -> None:
        self.deliver()

    # -- one round -------------------------------------------------------------------------------------
    def deliver(self, force_digest: bool = False) -> int:
        """One delivery round for every trail; returns how many files were written."""
        with self._lock:
            written = 0
            now = time.time()
            alive: set[str] = set()
            for trail in _trails():
                alive.add(trail.arn)
                if not trail.status.is_logging:
                    self._trails.pop(trail.arn, None)
                    continue
                state = self._trails.get(trail.arn)
                if state is None:
                    started = trail.status.started.replace(tzinfo=UTC).timestamp() if trail.status.started else now
                    state = self._trails[trail.arn] = _TrailState(self.events.cursor_at(started), now)
                written += self._deliver_logs(trail, state)
                if trail.log_validation and (force_digest or now - state.last_digest >= self.digest_interval):
                    written += self._deliver_digests(trail, state)
                    state.last_digest = now
            for arn in set(self._trails) - alive:
                del self._trails[arn]
            return written

    def _deliver_logs(self, trail: Any, state: _TrailState) -> int:
        state.cursor, records = self.events.since(state.cursor)
        members = _covered_accounts(trail)
        grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for record in records:
            if not _selected(trail, record):
                continue
            account, region = record["recipientAccountId"], record["awsRegion"]
            if account not in members:
                continue
            if not trail.is_multi_region and region != trail.region_name:
                continue
            if record["eventSource"].split(".")[0] in _GLOBAL_SERVICES and not trail.include_global_service_events:
                continue
            grouped.setdefault((account, region), []).append(record)
        written = 0
        for (account, region), batch in sorted(grouped.items()):
            now = datetime.now(UTC)
            suffix = "".join(secrets.choice(_FILE_SUFFIX) for _ in range(16))
            key = (f"{_account_prefix(trail, account)}/CloudTrail/{region}/{now:%Y/%m/%d}/"
                   f"{account}_CloudTrail_{region}_{now:%Y%m%dT%H%MZ}_{suffix}.json.gz")
            content = json.dumps({"Records": batch}, separators=(",", ":")).encode()
            error = self._put(trail, key, content, kms_key=_kms_key_arn(trail))
            _status(trail).update(LatestDeliveryAttemptTime=_iso(now),
                                  LatestDeliveryAttemptSucceeded=_iso(now) if not error else "")
            if error:
                _status(trail)["LatestDeliveryError"] = error
                log.warning("trail %s could not deliver %s: %s", trail.trail_name, key, error)
                continue
            _status(trail).update(LatestDeliveryTime=now, LatestDeliveryError=None)
            times = sorted(r["eventTime"] for r in batch)
            state.chains.setdefault((account, region), _Chain()).log_files.append({
                "s3Bucket": trail.bucket_name, "s3Object": key,
                "hashValue": hashlib.sha256(content).hexdigest(), "hashAlgorithm": "SHA-256",
                "newestEventTime": times[-1], "oldestEventTime": times[0]})
            written += 1
        return written

    def _deliver_digests(self, trail: Any, state: _TrailState) -> int:
        regions = _trail_regions(trail, state)
        written = 0
        for account in sorted(_covered_accounts(trail)):
            for region in regions:
                chain = state.chains.setdefault((account, region), _Chain())
                written += self._digest(trail, account, region, chain)
        return written

    def _digest(self, trail: Any, account: str, region: str, chain: _Chain) -> int:
        end = datetime.now(UTC)
        signer = self.signer(region)
        key = (f"{_account_prefix(trail, account)}/CloudTrail-Digest/{region}/{end:%Y/%m/%d}/"
               f"{account}_CloudTrail-Digest_{region}_{trail.trail_name}_{trail.region_name}_{end:%Y%m%dT%H%M%SZ}"
               ".json.gz")
        files = chain.log_files
        previous = chain.previous or {}
        document = {
            "awsAccountId": account,
            "digestStartTime": _iso(chain.started),
            "digestEndTime": _iso(end),
            "digestS3Bucket": trail.bucket_name,
            "digestS3Object": key,
            "digestPublicKeyFingerprint": signer.fingerprint,
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": max((f["newestEventTime"] for f in files), default=None),
            "oldestEventTime": min((f["oldestEventTime"] for f in files), default=None),
            "previousDigestS3Bucket": previous.get("bucket"),
            "previousDigestS3Object": previous.get("key"),
            "previousDigestHashValue": previous.get("hash"),
            "previousDigestHashAlgorithm": "SHA-256" if previous else None,
            "previousDigestSignature": previous.get("signature"),
            "logFiles": files,
        }
        content = json.dumps(document, separators=(",", ":")).encode()
        to_sign = (f"{document['digestEndTime']}\n{trail.bucket_name}/{key}\n{hashlib.sha256(content).hexdigest()}\n"
                   f"{previous.get('signature') or 'null'}").encode()
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        signature = signer.private_key.sign(to_sign, padding.PKCS1v15(), hashes.SHA256()).hex()
        error = self._put(trail, key, content, kms_key=None,
                          metadata={"signature": signature, "signature-algorithm": "SHA256withRSA"})
        if error:
            _status(trail)["LatestDigestDeliveryError"] = error
            return 0
        _status(trail).update(LatestDigestDeliveryTime=end, LatestDigestDeliveryError=None)
        chain.previous = {"bucket": trail.bucket_name, "key": key, "hash": hashlib.sha256(content).hexdigest(),
                          "signature": signature}
        chain.log_files = []
        chain.started = end
        return 1

    def _put(self, trail: Any, key: str, content: bytes, kms_key: str | None,
             metadata: dict[str, str] | None = None) -> str | None:
        """Write one file as CloudTrail does; the AWS error code when the write is refused."""
        from moto.s3 import notifications
        from moto.s3.models import s3_backends

        backend = s3_backends[trail.account_id][trail.partition]
        try:
            bucket = backend.get_bucket(trail.bucket_name)
        except Exception:
            return "NoSuchBucket"
        full_key = f"{trail.s3_key_prefix}/{key}" if trail.s3_key_prefix else key
        refused = self.check(trail, bucket, full_key, kms_key)
        if refused:
            return refused
        obj = backend.put_object(trail.bucket_name, full_key, gzip.compress(content, mtime=0),
                                 encryption="aws:kms" if kms_key else "AES256", kms_key_id=kms_key,
                                 disable_notification=True)
        obj.set_metadata({"Content-Type": "application/json", "Content-Encoding": "gzip",
                          **{f"x-amz-meta-{k}": v for k, v in (metadata or {}).items()}})
        notifications.send_event(trail.account_id, notifications.S3NotificationEvent.OBJECT_CREATED_PUT_EVENT,
                                 bucket, obj)
        return None

    # -- public keys -----------------------------------------------------------------------------------
    def signer(self, region: str) -> _Signer:
        if region not in self._signers:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa

            private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            der = private_key.public_key().public_bytes(serialization.Encoding.DER,
                                                        serialization.PublicFormat.PKCS1)
            self._signers[region] = _Signer(private_key, der, hashlib.md5(der).hexdigest(),  # noqa: S324 - a name
                                            datetime.now(UTC))
        return self._signers[region]

    def public_keys(self, region: str) -> list[dict[str, Any]]:
        """ListPublicKeys: the region's key, DER (PKCS #1) as CloudTrail returns it (base64 inside the blob)."""
        signer = self.signer(region)
        return [{"Value": base64.b64encode(base64.b64encode(signer.der)).decode(),
                 "ValidityStartTime": signer.valid_from.timestamp(),
                 "ValidityEndTime": signer.valid_from.timestamp() + 365 * 86400,
                 "Fingerprint": signer.fingerprint}]


def _selected(trail: Any, record: dict[str, Any]) -> bool:
    """Whether the trail's event selectors log this management event: basic selectors by ReadWriteType,
    IncludeManagementEvents and ExcludeManagementEventSources; advanced ones by their ``eventCategory``,
    ``readOnly`` and ``eventSource`` fields (a trail without selectors logs every management event)."""
    read_only, source = record["readOnly"], record["eventSource"]
    advanced = getattr(trail, "advanced_event_selectors", None) or []
    if advanced:
        return any(_advanced_match(selector, read_only, source) for selector in advanced)
    basic = getattr(trail, "event_selectors", None)
    if basic is None or basic == []:
        return basic is None
    for selector in basic:
        kind = selector.get("ReadWriteType", "All")
        if not selector.get("IncludeManagementEvents", True):
            continue
        if (kind == "ReadOnly" and not read_only) or (kind == "WriteOnly" and read_only):
            continue
        if source in selector.get("ExcludeManagementEventSources", []):
            continue
        return True
    return False


def _advanced_match(selector: dict[str, Any], read_only: bool, source: str) -> bool:
    values = {"eventCategory": "Management", "readOnly": str(read_only).lower(), "eventSource": source}
    for field_selector in selector.get("FieldSelectors", []):
        name = field_selector.get("Field")
        if name not in values:
            continue
        actual = values[name]
        if field_selector.get("Equals") and actual not in field_selector["Equals"]:
            return False
        if field_selector.get("NotEquals") and actual in field_selector["NotEquals"]:
            return False
        if field_selector.get("StartsWith") and not any(actual.startswith(v) for v in field_selector["StartsWith"]):
            return False
        if field_selector.get("NotStartsWith") and any(actual.startswith(v) for v in field_selector["NotStartsWith"]):
            return False
    return True


def _trails() -> list[Any]:
    from moto.cloudtrail.models import cloudtrail_backends

    found = []
    for account, regions in list(cloudtrail_backends.items()):
        for region, backend in list(regions.items()):
            found.extend(list(backend.trails.values()))
            del account, region
    return found


def _organization(account: str) -> Any:
    """The organization ``account`` manages, or None."""
    from moto.organizations.models import organizations_backends

    for backend in list(organizations_backends.get(account, {}).values()):
        org = getattr(backend, "org", None)
        if org is not None and org.master_account_id == account:
            return backend
    return None


def _covered_accounts(trail: Any) -> set[str]:
    if trail.is_org_trail:
        backend = _organization(trail.account_id)
        if backend is not None:
            return {a.id for a in backend.accounts} | {trail.account_id}
    return {trail.account_id}


def _account_prefix(trail: Any, account: str) -> str:
    if trail.is_org_trail:
        backend = _organization(trail.account_id)
        if backend is not None:
            return f"AWSLogs/{backend.org.id}/{account}"
    return f"AWSLogs/{account}"


def _trail_regions(trail: Any, state: _TrailState) -> list[str]:
    """Regions a digest is written for: the home region and every region the trail delivered for."""
    return sorted({trail.region_name} | {region for _, region in state.chains})


def _kms_key_arn(trail: Any) -> str | None:
    if not trail.kms_key_id:
        return None
    from moto.kms.models import kms_backends

    backend = kms_backends[trail.account_id][trail.region_name]
    try:
        return str(backend.describe_key(trail.kms_key_id).arn)
    except Exception:
        return str(trail.kms_key_id)


def _status(trail: Any) -> dict[str, Any]:
    if not hasattr(trail.status, "delivery"):
        trail.status.delivery = {}
    return trail.status.delivery  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------------- moto integration
_delivery: Delivery | None = None


def install(delivery: Delivery) -> None:
    """GetTrailStatus from real deliveries, and ListPublicKeys, in the running server."""
    global _delivery
    _delivery = delivery
    from moto.cloudtrail.models import TrailStatus
    from moto.cloudtrail.responses import CloudTrailResponse

    if getattr(TrailStatus.description, "_real_deliveries", False):
        return
    original = TrailStatus.description

    def description(self: Any) -> dict[str, Any]:
        delivered = getattr(self, "delivery", {})
        desc = original(self)
        for name in ("LatestDeliveryTime", "LatestDigestDeliveryTime"):
            desc.pop(name, None)
            if delivered.get(name):
                desc[name] = delivered[name].timestamp()
        for name in ("LatestDeliveryError", "LatestDigestDeliveryError"):
            if delivered.get(name):
                desc[name] = delivered[name]
        desc["LatestDeliveryAttemptTime"] = delivered.get("LatestDeliveryAttemptTime", "")
        desc["LatestDeliveryAttemptSucceeded"] = delivered.get("LatestDeliveryAttemptSucceeded", "")
        return desc

    description._real_deliveries = True  # type: ignore[attr-defined]
    TrailStatus.description = description  # type: ignore[method-assign]

    def list_public_keys(self: Any) -> str:
        keys = _delivery.public_keys(self.region) if _delivery else []
        return json.dumps({"PublicKeyList": keys})

    CloudTrailResponse.list_public_keys = list_public_keys  # type: ignore[attr-defined]
