"""``cloudtrail-onboarding launch-url``: a CloudFormation quick-create link for the application.

``sam package`` uploads the built functions, layer and state machine definition to a bucket, the
packaged template goes next to them, and the link opens the console's quick-create page with that
template and the given parameters filled in. A person with the link only reviews and clicks.

Secrets never go into a link: a link lives in browser history, chat and proxy logs, so NoEcho
parameters (the Workbench API key) are refused; the person types them on the page.

Against the local cloud (``--endpoint-url``) ``sam package`` is pointed at the emulator through
``AWS_ENDPOINT_URL`` (which the SAM CLI's boto3 honours), with fake credentials, so a test can check
what was uploaded. The link itself is always the AWS console's.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from local_cloud import deploy

STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")


class LaunchError(Exception):
    """The link cannot be made; the message is one line a person can act on."""


# ------------------------------------------------------------------------------------------ pure parts
def check_parameters(declared: dict[str, Any], given: dict[str, str]) -> dict[str, str]:
    """``given`` if every key is a parameter the template declares, none is NoEcho, and each value
    passes the parameter's AllowedValues/AllowedPattern (the console would refuse it later)."""
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise LaunchError(f"the template has no parameter {', '.join(unknown)} (it has: {', '.join(sorted(declared))})")
    for key, value in given.items():
        spec = declared[key] or {}
        if str(spec.get("NoEcho", "false")).lower() == "true":
            raise LaunchError(
                f"parameter {key} is NoEcho (a secret): it is never put into a link; leave it out and type it "
                "on the quick-create page"
            )
        allowed = spec.get("AllowedValues")
        if allowed and value not in [str(v) for v in allowed]:
            raise LaunchError(f"parameter {key}={value!r}: must be one of {', '.join(str(v) for v in allowed)}")
        pattern = spec.get("AllowedPattern")
        if pattern and not re.fullmatch(pattern, value):
            rule = spec.get("ConstraintDescription") or f"must match {pattern}"
            raise LaunchError(f"parameter {key}={value!r}: {' '.join(str(rule).split())}")
    return given


def template_url(bucket: str, region: str, key: str) -> str:
    """The HTTPS URL CloudFormation reads the template from (path style when the bucket name has dots,
    which the virtual-hosted certificate does not cover)."""
    path = quote(key, safe="/")
    if "." in bucket:
        return f"https://s3.{region}.amazonaws.com/{bucket}/{path}"
    return f"https://{bucket}.s3.{region}.amazonaws.com/{path}"


def quick_create_url(region: str, template: str, stack_name: str, parameters: dict[str, str]) -> str:
    """The console's quick-create page for ``template`` with ``parameters`` prefilled (``param_<Key>``).

    Everything after ``#`` is read by the console's JavaScript as a query string: every value is
    percent-encoded, ``/``, ``&``, ``=``, ``#``, ``+`` and spaces included.
    """
    query = [f"templateURL={quote(template, safe='')}", f"stackName={quote(stack_name, safe='')}"]
    query += [f"param_{key}={quote(value, safe='')}" for key, value in sorted(parameters.items())]
    return (
        f"https://{region}.console.aws.amazon.com/cloudformation/home?region={region}"
        f"#/stacks/quickcreate?{'&'.join(query)}"
    )


def check_names(bucket: str, region: str, stack_name: str) -> None:
    if not BUCKET_NAME.fullmatch(bucket):
        raise LaunchError(f"--bucket {bucket!r} is not an S3 bucket name")
    if not REGION.fullmatch(region):
        raise LaunchError(f"--region {region!r} is not an AWS region such as us-east-1")
    if not STACK_NAME.fullmatch(stack_name):
        raise LaunchError(f"--stack-name {stack_name!r}: a letter, then letters, digits or hyphens (128 at most)")


# ------------------------------------------------------------------------------------------- packaging
def sam_env(endpoint_url: str | None) -> dict[str, str]:
    """AWS: the environment as it is (default credential chain). The local cloud: its endpoint and fake
    credentials, so real ones are never sent to it."""
    env = dict(os.environ, SAM_CLI_TELEMETRY="0")
    if endpoint_url:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            env.pop(name, None)
        env.update(
            AWS_ENDPOINT_URL=endpoint_url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106 - fake, for the emulator
        )
    return env


def sam_package(built: Path, bucket: str, prefix: str, region: str, output: Path, endpoint_url: str | None) -> None:
    command = [
        deploy.sam_executable(), "package", "--template-file", str(built), "--s3-bucket", bucket, "--s3-prefix",
        prefix, "--region", region, "--output-template-file", str(output), "--no-progressbar",
    ]  # fmt: skip
    with deploy.start_sam(command, sam_env(endpoint_url)) as process:  # as `local deploy` starts SAM
        said, _ = process.communicate()
    if process.returncode != 0:
        lines = [line for line in (said or "").strip().splitlines() if line.strip()]
        raise LaunchError(f"sam package failed: {lines[-1] if lines else '(no output)'}")


@dataclass
class Launch:
    url: str
    template_url: str
    bucket: str
    key: str


def check_bucket(s3: Any, bucket: str, region: str) -> None:
    """The bucket exists, we may write it, and it is in ``region`` (Lambda reads code only from there)."""
    try:
        s3.head_bucket(Bucket=bucket)
        location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"
    except s3.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchBucket"):
            raise LaunchError(
                f"bucket {bucket} does not exist: create it first (aws s3 mb s3://{bucket} --region {region})"
            ) from exc
        raise LaunchError(f"bucket {bucket} cannot be used: {code or exc}") from exc
    if location != region:
        raise LaunchError(f"bucket {bucket} is in {location}, not {region}: Lambda reads code only from its region")


def publish(
    built: Path,
    declared: dict[str, Any],
    s3: Any,
    bucket: str,
    region: str,
    stack_name: str,
    parameters: dict[str, str],
    workdir: Path,
    endpoint_url: str | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> Launch:
    """Package the built application into ``bucket``, upload the packaged template, build the link."""
    check_names(bucket, region, stack_name)
    check_parameters(declared, parameters)
    check_bucket(s3, bucket, region)
    packaged = workdir / "packaged.yaml"
    say(f"sam package: uploading the application to s3://{bucket}/{stack_name}/")
    sam_package(built, bucket, stack_name, region, packaged, endpoint_url)
    body = packaged.read_bytes()
    key = f"{stack_name}/template-{hashlib.sha256(body).hexdigest()[:16]}.yaml"  # a new build, a new link
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/yaml")
    url = template_url(bucket, region, key)
    return Launch(quick_create_url(region, url, stack_name, parameters), url, bucket, key)
