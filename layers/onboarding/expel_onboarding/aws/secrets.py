"""The Workbench API key, read from Secrets Manager with powertools Parameters at every invocation.

The secret holds either the key itself or JSON ``{"api_key": "..."}`` (how the console's key/value
editor stores it). The value is returned to the caller and never logged or put in a message.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from expel_onboarding.aws import clients
from expel_onboarding.aws.errors import ACCESS_DENIED, Rule, error_code, mapped_error
from expel_onboarding.errors import InvalidParameter, OnboardingError

PARAMETER = "WorkbenchApiKeySecretArn"
# Not cached: Lambda reuses a warm execution environment, so a cached revoked key would fail the redrive a
# person starts right after putting the new key into the secret (README: Troubleshooting) with the same 401.
MAX_AGE_SECONDS = 0

_RULES = (
    Rule({"ResourceNotFoundException"},
         lambda problem: InvalidParameter(PARAMETER, problem, "give the ARN of an existing secret"),
         "the secret {secret_arn} does not exist"),
    Rule(ACCESS_DENIED, OnboardingError,
         "This Lambda may not read the secret {secret_arn}: allow secretsmanager:GetSecretValue on it (and "
         "kms:Decrypt on its key, if a customer-managed key encrypts it)"),
    Rule({"DecryptionFailure"}, OnboardingError,
         "Secrets Manager could not decrypt {secret_arn}: allow kms:Decrypt on the secret's key"),
    Rule({"InvalidRequestException", "InvalidParameterException"},
         lambda problem: InvalidParameter(PARAMETER, problem, "restore or replace it"),
         "the secret {secret_arn} cannot be read ({code}; scheduled for deletion?)"),
)


def get_workbench_api_key(secret_arn: str, max_age: int = MAX_AGE_SECONDS) -> str:
    try:
        with _no_response_bodies_in_logs():
            # With the environment's one session and client (powertools' default provider makes a session of its
            # own: botocore's data loaded again at the first read).
            value = parameters.SecretsProvider(boto3_client=clients.secretsmanager()).get(secret_arn, max_age=max_age)
    except GetParameterError as exc:
        raise _mapped(secret_arn, exc) from None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="strict")
    key = _api_key_from(str(value or ""))
    if not key:
        raise InvalidParameter(
            PARAMETER,
            f"the secret {secret_arn} holds no API key",
            'store the Workbench API key as the secret value, or as JSON {"api_key": "<key>"}',
        )
    return key


@contextlib.contextmanager
def _no_response_bodies_in_logs() -> Iterator[None]:
    """botocore logs every response body at DEBUG, the secret value included; with a DEBUG log level
    (e.g. Lambda's AWS_LAMBDA_LOG_LEVEL) that would put the key into CloudWatch."""
    parser_logger = logging.getLogger("botocore.parsers")
    level = parser_logger.level
    parser_logger.setLevel(max(logging.INFO, parser_logger.getEffectiveLevel()))
    try:
        yield
    finally:
        parser_logger.setLevel(level)


def _api_key_from(value: str) -> str:
    text = value.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            # Not JSON after all; treat it as the key itself rather than echo it in an error.
            return text
        key = document.get("api_key") if isinstance(document, dict) else None
        return key.strip() if isinstance(key, str) else ""
    return text


def _mapped(secret_arn: str, exc: GetParameterError) -> Exception:
    # powertools re-raises inside its `except`, so the ClientError is the implicit context.
    cause = exc.__cause__ or exc.__context__ or exc
    mapped = mapped_error("Secrets Manager", f"reading {secret_arn}", cause, *_RULES,
                          busy="{service} is busy ({code}) {what}; retrying", secret_arn=secret_arn)
    return mapped or OnboardingError(
        f"Could not read the Workbench API key from {secret_arn} ({error_code(cause) or type(exc).__name__})")
