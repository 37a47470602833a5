"""The identities AWS services act with, in the local cloud.

- Lambda: each function runs with session credentials of its execution role (session name = the
  function's name, as on AWS), assumed as ``lambda.amazonaws.com``; the runner puts them in the
  process environment at start, so a warm execution environment keeps (and may refresh) them.
- Step Functions: moto's engine calls Lambda and other services with a boto3 client made by
  ``boto_client_for``; here that client signs as a session of the state machine's role (or of a
  Task's ``Credentials.RoleArn``), assumed as ``states.amazonaws.com``.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from local_cloud import iam_propagation, lambda_runner
from local_cloud.enforcement import authorization, credentials, service_checks
from local_cloud.once import once

_ENGINE_MODULES = (
    "moto.stepfunctions.parser.asl.utils.boto_client",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_events",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_unsupported",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3",
)


def lambda_credentials(fn: Any) -> dict[str, str]:
    """The execution role's session credentials for ``fn`` (a moto LambdaFunction)."""
    try:
        return credentials.assume(str(fn.role), "lambda.amazonaws.com", fn.function_name).as_environment()
    except credentials.RoleNotAssumable as exc:
        raise credentials.RoleNotAssumable(
            f"The role defined for the function cannot be assumed by Lambda. ({exc})"
        ) from exc


def install_lambda_role_check() -> None:
    """CreateFunction and UpdateFunctionConfiguration refuse a role Lambda cannot assume, as on AWS
    (also for functions CloudFormation creates: moto's handler calls the same backend method). Only
    while IAM is enforced: with ``--no-iam`` functions run with any role."""
    from moto.awslambda.exceptions import InvalidParameterValueException
    from moto.awslambda.models import LambdaBackend

    if getattr(LambdaBackend.create_function, "_local_cloud_iam", False):
        return
    def check(role_arn: Any) -> None:
        if authorization.running() is None or not role_arn:
            return
        if iam_propagation.in_cloudformation.get():
            iam_propagation.settle_for_cloudformation(str(role_arn))  # its handler retries until Lambda can
        allowed, _ = credentials.trust_allows(str(role_arn), "lambda.amazonaws.com")
        if not allowed:
            raise InvalidParameterValueException("The role defined for the function cannot be assumed by Lambda.")

    original_create = LambdaBackend.create_function
    original_update = LambdaBackend.update_function_configuration

    def create_function(self: Any, spec: dict[str, Any]) -> Any:
        check(spec.get("Role"))
        return original_create(self, spec)

    def update_function_configuration(self: Any, function_name: str, qualifier: str, body: dict[str, Any]) -> Any:
        check(body.get("Role"))
        return original_update(self, function_name, qualifier, body)

    create_function._local_cloud_iam = True  # type: ignore[attr-defined]
    LambdaBackend.create_function = create_function  # type: ignore[method-assign]
    LambdaBackend.update_function_configuration = update_function_configuration  # type: ignore[method-assign]


def install_cloudformation_role_check() -> None:
    """CreateStack and UpdateStack with a service role (``RoleARN``) refuse a role CloudFormation cannot assume,
    as on AWS: ValidationError "Role <arn> is invalid or cannot be assumed". (The stack's resources are still
    created as the account's root user: README, "Not yet".) Only while IAM is enforced."""
    from moto.cloudformation.exceptions import ValidationError
    from moto.cloudformation.models import CloudFormationBackend

    if getattr(CloudFormationBackend.create_stack, "_local_cloud_iam", False):
        return
    def check(role_arn: Any, account: str) -> None:
        if authorization.running() is None or not role_arn:
            return
        # CloudFormation assumes the role for a stack of this account (aws:SourceAccount, as trust policies test).
        allowed, _ = credentials.trust_allows(str(role_arn), "cloudformation.amazonaws.com", source_account=account)
        if not allowed:
            raise ValidationError(message=f"Role {role_arn} is invalid or cannot be assumed")

    original_create, original_update = CloudFormationBackend.create_stack, CloudFormationBackend.update_stack

    def create_stack(self: Any, *args: Any, **kwargs: Any) -> Any:
        check(kwargs.get("role_arn"), self.account_id)
        return original_create(self, *args, **kwargs)

    def update_stack(self: Any, *args: Any, **kwargs: Any) -> Any:
        check(kwargs.get("role_arn"), self.account_id)
        return original_update(self, *args, **kwargs)

    create_stack._local_cloud_iam = True  # type: ignore[attr-defined]
    CloudFormationBackend.create_stack = create_stack  # type: ignore[method-assign]
    CloudFormationBackend.update_stack = update_stack  # type: ignore[method-assign]


def install_state_machine_role_wait() -> None:
    """A state machine CloudFormation creates right after its role: CloudFormation's handler retries until
    Step Functions can assume the role, so the first execution runs as a role IAM has propagated
    (``iam_propagation.settle_for_cloudformation``)."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    if getattr(StepFunctionsParserBackend.create_state_machine, "_local_cloud_iam", False):
        return
    original = StepFunctionsParserBackend.create_state_machine

    def create_state_machine(self: Any, name: str, definition: str, roleArn: str, *args: Any, **kwargs: Any) -> Any:
        if iam_propagation.in_cloudformation.get() and roleArn:
            iam_propagation.settle_for_cloudformation(str(roleArn))
        return original(self, name, definition, roleArn, *args, **kwargs)

    create_state_machine._local_cloud_iam = True  # type: ignore[attr-defined]
    StepFunctionsParserBackend.create_state_machine = create_state_machine  # type: ignore[method-assign]


# The clients the engine signs with, by service, region, endpoint and session: making a boto3 client costs
# milliseconds of CPU, and moto's engine asked for two for every Task it ran. Clients of sessions refreshed
# since are dropped, oldest first, beyond this many.
ENGINE_CLIENTS_KEPT = 32
_engine_clients: dict[tuple[Any, ...], Any] = {}
_engine_clients_lock = threading.Lock()


def _engine_client_factory(original: Any) -> Any:
    from moto.stepfunctions.parser.asl.utils import boto_client as engine

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        role_arn = getattr(state_credentials, "role_arn", None)
        if not role_arn:
            return original(region=region, service=service, state_credentials=state_credentials)
        account = str(role_arn).split(":")[4]
        session = credentials.assume(str(role_arn), "states.amazonaws.com", "StepFunctions", source_account=account)
        # What moto's client is made of: the server's port, or none while moto intercepts the calls in-process.
        key = (region, service, engine.botocore_stubber.enabled, engine.moto_server_port(), session.access_key_id,
               session.secret_access_key, session.session_token)
        with _engine_clients_lock:
            client = _engine_clients.get(key)
        if client is not None:
            return client
        moto_client = original(region=region, service=service, state_credentials=state_credentials)
        import boto3

        client = boto3.client(
            service,
            region_name=region,
            endpoint_url=moto_client.meta.endpoint_url,
            aws_access_key_id=session.access_key_id,
            aws_secret_access_key=session.secret_access_key,
            aws_session_token=session.session_token,
            config=moto_client.meta.config,
        )
        with _engine_clients_lock:
            _engine_clients[key] = client
            while len(_engine_clients) > ENGINE_CLIENTS_KEPT:
                del _engine_clients[next(iter(_engine_clients))]
        return client

    boto_client_for._local_cloud_iam = True  # type: ignore[attr-defined]
    return boto_client_for


@once
def install() -> None:
    lambda_runner.credential_provider = lambda_credentials
    iam_propagation.install()
    install_cloudformation_role_check()
    install_state_machine_role_wait()
    service_checks.install()
    install_lambda_role_check()
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for
    patched = _engine_client_factory(original)
    for name in _ENGINE_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = patched  # type: ignore[attr-defined]
