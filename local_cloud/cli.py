"""``cloudtrail-onboarding``: run the onboarding against a local cloud (no AWS account, no Docker).

cloudtrail-onboarding local serve            # moto + Lambda runner + Workbench emulator
cloudtrail-onboarding local deploy --endpoint-url http://127.0.0.1:4566
cloudtrail-onboarding local delete --endpoint-url http://127.0.0.1:4566 --stack-name NAME
cloudtrail-onboarding demo                   # all of the above in one go
cloudtrail-onboarding status --stack NAME [--watch]      # AWS or the local cloud (--endpoint-url)
cloudtrail-onboarding doctor --stack NAME                # drift check: what differs from the guide's end state
cloudtrail-onboarding launch-url --bucket B --region R   # a CloudFormation quick-create link
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from local_cloud import deploy as deploying
from local_cloud import launch_url, stacksets, status
from local_cloud.faults import FaultPlan, FaultSpecError, parse_fault
from local_cloud.progress import Progress
from local_cloud.server import LocalCloud, PortInUse

DEFAULT_STACK = "expel-cloudtrail-onboarding"
DEMO_WORKBENCH_GUID = "4f9c2a1e-7b3d-4e5f-9a8b-1c2d3e4f5a6b"
DEMO_API_KEY = "local-demo-key"  # the Workbench emulator's default key
# The demo's compressed time, as the tests' local clouds have it: every Retry and Wait still happens.
DEMO_TIME_SCALE = 0.1


def say(line: str = "") -> None:
    """User-facing output of the CLI (library code never prints)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def complain(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cloudtrail-onboarding",
        description=(
            "Deploy and run the Expel CloudTrail onboarding on a local cloud (moto), no AWS account needed; "
            "follow an onboarding on AWS or the local cloud; make a quick-create link for AWS."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="the local cloud: serve, deploy, delete")
    local_commands = local.add_subparsers(dest="local_command", required=True)

    serve = local_commands.add_parser(
        "serve",
        help="run the local cloud until Ctrl-C",
        description=(
            "Run a moto server with Step Functions execution, a Lambda runner that executes the deployed "
            "artifacts in a separate Python 3.13 process (LAMBDA_RUNTIME_PYTHON), firing of EventBridge "
            "scheduled rules, and the Workbench emulator. Everything listens on 127.0.0.1. "
            "Stops on Ctrl-C, SIGTERM, or when the process that started it exits."
        ),
    )
    _add_ports(serve)
    serve.add_argument("--verbose", action="store_true", help="log every request")
    _add_faults(serve)

    dep = local_commands.add_parser(
        "deploy",
        help="deploy the sam build output to a running local cloud",
        description=(
            "Run `sam deploy --resolve-s3` against the local cloud (AWS_ENDPOINT_URL, fake credentials) with the "
            "`sam build` output (running `sam build --cached` first when it is missing or older than the "
            "sources), follow the stack events and execution steps, and print its Outputs. A stack that fails rolls "
            "back as on AWS unless --disable-rollback; a stack that failed to create is deleted first. Exit status "
            "0 only when the stack reached CREATE_COMPLETE or UPDATE_COMPLETE."
        ),
    )
    dep.add_argument("--endpoint-url", required=True, help="the local cloud, e.g. http://127.0.0.1:4566")
    dep.add_argument("--stack-name", help=f"default: samconfig.toml's stack_name or {DEFAULT_STACK}")
    dep.add_argument("--template", type=Path, default=deploying.DEFAULT_BUILD_TEMPLATE, help="the built template")
    dep.add_argument("--disable-rollback", action="store_true",
                     help="sam deploy's --disable-rollback: a stack that fails keeps what it made, to read why")
    dep.add_argument(
        "--parameter-overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="template parameters; defaults come from samconfig.toml's parameter_overrides",
    )
    _add_common_deploy(dep)

    rm = local_commands.add_parser(
        "delete",
        help="delete a stack from a running local cloud",
        description=(
            "Run `sam delete --no-prompts` against the local cloud (AWS_ENDPOINT_URL, fake credentials), follow the "
            "stack events and the teardown's execution steps. Exit status 0 only when the stack is gone."
        ),
    )
    rm.add_argument("--endpoint-url", required=True)
    rm.add_argument("--stack-name", required=True)
    rm.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    rm.add_argument("--timeout", type=float, default=900.0, help="seconds to wait (default 900)")

    demo = commands.add_parser(
        "demo",
        help="serve + deploy with sample parameters + print the Outputs + stop",
        description=(
            "Start the local cloud, deploy the template with sample parameters (a Workbench GUID, the "
            "Workbench emulator's URL and API key), show progress, print the Outputs and stop. Time is compressed "
            f"(--time-scale {DEMO_TIME_SCALE:g}: every Retry and Wait happens, shorter). "
            "Exit status 0 only when the stack completed."
        ),
    )
    _add_ports(demo, time_scale=DEMO_TIME_SCALE)
    demo.add_argument("--stack-name", default=DEFAULT_STACK)
    demo.add_argument("--template", type=Path, default=deploying.DEFAULT_BUILD_TEMPLATE)
    demo.add_argument("--parameter-overrides", nargs="+", default=[], metavar="KEY=VALUE")
    _add_common_deploy(demo)

    st = commands.add_parser(
        "status",
        help="a person's view of an onboarding: stack, steps with durations, failure reason, console links",
        description=(
            "Show the stack's status, its Onboarding custom resource, and each step of the onboarding execution "
            "(succeeded / failed / running / retried) with its duration, the failing step and reason, and console "
            "links. Reads AWS with the default credential chain, or the local cloud with --endpoint-url. "
            "Exit status 1 when the stack or execution failed."
        ),
    )
    target = st.add_mutually_exclusive_group(required=True)
    target.add_argument("--stack", help="stack name or id")
    target.add_argument("--execution", help="execution ARN (its region is used unless --region is given)")
    st.add_argument("--endpoint-url", help="the local cloud, e.g. http://127.0.0.1:4566 (default: AWS)")
    st.add_argument("--region", help="default: AWS_REGION / AWS_DEFAULT_REGION / your profile's region")
    st.add_argument("--watch", action="store_true", help="follow it live until the execution and stack finish")
    st.add_argument("--interval", type=float, default=5.0, help="seconds between reads with --watch (default 5)")
    st.add_argument("--timeout", type=float, default=3600.0, help="stop watching after this many seconds")

    doc = commands.add_parser(
        "doctor",
        help="drift check: compare the account with the onboarding's end state, write nothing, show what differs",
        description=(
            "Run the stack's drift check (its state machine in check mode, a read-only role) and show each "
            "difference: which resource and setting, what it is now, what it should be, the guide step and the fix. "
            "With --repair, drift is followed by the onboarding run again and a second check. "
            "Exit status 0 in sync, 1 drifted, 2 the check (or repair) could not run."
        ),
    )
    doc.add_argument("--stack", required=True, help="stack name or id")
    doc.add_argument("--endpoint-url", help="the local cloud, e.g. http://127.0.0.1:4566 (default: AWS)")
    doc.add_argument("--region", help="default: AWS_REGION / AWS_DEFAULT_REGION / your profile's region")
    doc.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the check (default 300)")
    doc.add_argument("--repair", action="store_true",
                     help="on drift, run the onboarding again (it puts back only its own statements, entries and "
                          "settings; no canary), then check again")

    link = commands.add_parser(
        "launch-url",
        help="package the application into a bucket and print a CloudFormation quick-create link",
        description=(
            "Run `sam package` (after `sam build` when the build is missing or stale) to upload the application "
            "to BUCKET in REGION, upload the packaged template there, and print the console's quick-create URL "
            "with the given parameters prefilled. NoEcho parameters (the Workbench API key) are refused: they "
            "are typed on the page, never carried in a link."
        ),
    )
    link.add_argument("--bucket", required=True, help="an existing bucket in REGION you may write to")
    link.add_argument("--region", required=True)
    link.add_argument(
        "--param",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="parameters to prefill (only those the template declares, never NoEcho ones)",
    )
    link.add_argument("--stack-name", default=DEFAULT_STACK, help=f"the suggested stack name (default {DEFAULT_STACK})")
    link.add_argument("--endpoint-url", help="package into the local cloud's S3 instead of AWS (for tests)")
    link.add_argument("--template", type=Path, default=deploying.DEFAULT_BUILD_TEMPLATE, help="the built template")
    return parser


def _add_ports(parser: argparse.ArgumentParser, time_scale: float = 1.0) -> None:
    parser.add_argument("--port", type=int, default=4566, help="AWS endpoint port (default 4566; 0: any free)")
    parser.add_argument("--workbench-port", type=int, default=4567, help="Workbench emulator port (default 4567)")
    parser.add_argument(
        "--schedule-interval",
        type=float,
        default=1.0,
        help="seconds that make one minute of compressed local time (default 1): a rate(1 minute) rule fires "
        "this often (the custom resource's poll, which answers CloudFormation), rate(N minutes|hours|days) and "
        "cron(...) rules accordingly (the scheduled drift check), and CloudWatch alarms are judged this often",
    )
    parser.add_argument(
        "--iam",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="authorize every request as IAM would (the default): functions run as their execution roles, the "
        "state machine as its role, dummy credentials as the account's root user; --no-iam lets every call "
        "through (for debugging)",
    )
    parser.add_argument(
        "--iam-report",
        type=Path,
        metavar="FILE",
        help="with --iam: write each authorized call of a role (action, resource, the statement that allowed it) "
        "to FILE, one JSON object a line",
    )
    parser.add_argument(
        "--iam-propagation-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="IAM's eventual consistency: a new role cannot be assumed or used, and a change to a role's policies "
        "is not in effect, until SECONDS have passed (default 0: at once)",
    )
    parser.add_argument(
        "--iam-propagation-from-first-use",
        action="store_true",
        help="with --iam-propagation-delay: a new role propagates SECONDS after a service first reads it rather "
        "than after it was made (IAM's slow case: its first user is always refused)",
    )
    parser.add_argument(
        "--stackset-seconds",
        type=float,
        default=stacksets.TIMING.batch_seconds,
        help="seconds a StackSet operation spends on each group of accounts it deploys at once (half that before "
        f"the first); AWS takes tens of seconds (default {stacksets.TIMING.batch_seconds:g})",
    )
    parser.add_argument(
        "--cloudtrail-interval",
        type=float,
        default=5.0,
        help="seconds between a logging trail's log files (AWS: about 5 minutes; default 5)",
    )
    parser.add_argument(
        "--cloudtrail-digest-interval",
        type=_seconds_at_least_one,
        default=60.0,
        help="seconds between digest files of a trail with log file validation (AWS: an hour; default 60)",
    )
    parser.add_argument(
        "--time-scale",
        type=_time_scale,
        default=time_scale,
        metavar="F",
        help="Step Functions Retry intervals and Wait states, and the AWS SDK's retry backoff in Lambda functions, "
        f"take F times as long (0 < F <= 1; every retry still happens; default {time_scale:g}"
        + (", as on AWS)" if time_scale == 1 else ")"),
    )


def _time_scale(value: str) -> float:
    factor = float(value)
    if not 0 < factor <= 1:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 1")
    return factor


def _seconds_at_least_one(value: str) -> float:
    """Digest files are named to the second they end in: two in one second would be one file."""
    seconds = float(value)
    if seconds < 1:
        raise argparse.ArgumentTypeError("must be 1 second or more")
    return seconds


def _add_faults(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SERVICE:Operation=ErrorCode[:N]",
        help="fail the first N calls (default 1) of an operation with that AWS error, as the service sends it "
        "(status, code, message, retry headers); repeatable. E.g. kms:CreateKey=ThrottlingException:2, "
        "sns:CreateTopic=AuthorizationError",
    )
    parser.add_argument(
        "--throttle-writes",
        type=int,
        default=0,
        metavar="N",
        help="a throttling storm: every write call (not Get/List/Describe/...) is throttled N times with its "
        "service's throttling error before it goes through (the SDK's retries are the same call)",
    )


def fault_plan(args: argparse.Namespace) -> FaultPlan:
    """--fault and --throttle-writes as a FaultPlan (FaultSpecError names a bad value)."""
    if args.throttle_writes < 0:
        raise FaultSpecError("--throttle-writes must be 0 or more")
    return FaultPlan(faults=[parse_fault(spec) for spec in args.fault], throttle_writes=args.throttle_writes)


def _add_common_deploy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    parser.add_argument("--config-file", type=Path, default=Path("samconfig.toml"))
    parser.add_argument("--config-env", default="default")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the stack (default 900)")


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("werkzeug").setLevel(logging.INFO if verbose else logging.ERROR)
    # moto logs every failed execution as an ERROR with its whole state; the progress lines say it better.
    logging.getLogger("moto").setLevel(logging.INFO if verbose else logging.CRITICAL)


# ---------------------------------------------------------------------------------------- commands
def cmd_serve(args: argparse.Namespace) -> int:
    _configure_logging(args.verbose)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # From the start: a SIGTERM while the local cloud starts stops it once it has started.
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    parent = os.getppid()
    try:
        plan = fault_plan(args)
        cloud = LocalCloud(args.port, args.workbench_port, args.schedule_interval, iam=args.iam,
                           iam_report=args.iam_report, stackset_seconds=args.stackset_seconds, faults=plan,
                           iam_propagation_delay=args.iam_propagation_delay,
                           iam_propagation_from_first_use=args.iam_propagation_from_first_use,
                           cloudtrail_interval=args.cloudtrail_interval,
                           cloudtrail_digest_interval=args.cloudtrail_digest_interval,
                           time_scale=args.time_scale).start()
    except (PortInUse, FileNotFoundError, FaultSpecError) as exc:
        complain(str(exc))
        return 1
    try:
        workbench = cloud.workbench_url or "(not available)"
        say(f"local cloud ready: AWS endpoint {cloud.url}  Workbench {workbench}")
        say(f"  deploy:  cloudtrail-onboarding local deploy --endpoint-url {cloud.url}")
        say(f"  use it:  AWS_ENDPOINT_URL={cloud.url} aws stepfunctions list-executions ...")
        for fault in plan.faults:
            say(f"  fault:   the first {fault.count} {fault.service}:{fault.operation} call(s) fail with {fault.code}")
        if plan.throttle_writes:
            say(f"  storm:   every write call is throttled {plan.throttle_writes} time(s) before it goes through")
        if args.iam_propagation_delay:
            first_use = " (a new role: after a service first reads it)" if args.iam_propagation_from_first_use else ""
            say(f"  IAM:     a new role, or a change to one, takes effect after {args.iam_propagation_delay:g} s"
                f"{first_use}")
        say("  Ctrl-C stops it")
        # The process that started it ending (a test run killed, a closed terminal's shell) stops it too: a
        # forgotten local cloud keeps delivering trails and firing schedules, taking CPU from everything else.
        while not stop.wait(0.5) and os.getppid() == parent:
            pass
        say("stopping the local cloud")
    except BrokenPipeError:  # whoever read the output is gone: stop all the same, and say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        cloud.stop()
    return 0


def _source_root(template: Path) -> Path:
    """Where `sam build` runs for the default build template: the directory holding .aws-sam."""
    return template.resolve().parent.parent.parent


def _resolve_template(template: Path) -> Path:
    if template == deploying.DEFAULT_BUILD_TEMPLATE:
        root = _source_root(template)
        if deploying.build_is_stale(template, root):
            deploying.sam_build(root, say)
    elif not template.exists():
        raise deploying.DeployError(f"template {template} not found: build it with sam build")
    return template


def _stack_name(args: argparse.Namespace) -> str:
    if args.stack_name:
        return args.stack_name
    if args.config_file.exists():
        import tomllib

        config = tomllib.loads(args.config_file.read_text(encoding="utf-8")).get(args.config_env, {})
        for section in ("deploy", "global"):
            name = config.get(section, {}).get("parameters", {}).get("stack_name")
            if name:
                return name
    return DEFAULT_STACK


def _print_outputs(result: deploying.DeployResult) -> None:
    if not result.outputs:
        say("(the stack has no Outputs)")
        return
    width = max(len(k) for k in result.outputs)
    say(f"{'Output':<{width}}  Value")
    say(f"{'-' * width}  {'-' * 5}")
    for key in sorted(result.outputs):
        say(f"{key:<{width}}  {result.outputs[key]}")


def _run_deploy(
    endpoint_url: str, stack_name: str, template: Path, parameters: dict[str, str], args: argparse.Namespace,
    starting: Callable[[], object] | None = None,
) -> int:
    progress = Progress(
        deploying.aws_client("cloudformation", endpoint_url, args.region),
        deploying.aws_client("stepfunctions", endpoint_url, args.region),
        stack_name,
        say,
        since=datetime.now(UTC) - timedelta(seconds=1),
    )
    say(f"deploying stack {stack_name} to {endpoint_url} with the SAM CLI:")
    result = deploying.deploy(
        endpoint_url, stack_name, template, parameters, args.region, args.timeout, progress.poll,
        config_file=args.config_file, config_env=args.config_env, say=say,
        disable_rollback=getattr(args, "disable_rollback", False), starting=starting,
    )
    _show_view(progress, args.region)
    if not result.ok:
        complain(f"stack {stack_name} {result.status}: {result.reason}")
        return 1
    say(f"stack {stack_name} {result.status}")
    _print_outputs(result)
    return 0


def _show_view(progress: Progress, region: str) -> None:
    """The same view ``status`` prints, once the stack has finished (progress only: never fails the command)."""
    try:
        view = progress.view(region, local=True)
    except Exception as exc:
        say(f"(status unavailable: {status.short(str(exc), 100)})")
        return
    say("")
    for line in status.render(view):
        say(line)
    say("")


def cmd_deploy(args: argparse.Namespace) -> int:
    _configure_logging(False)
    try:
        template = _resolve_template(args.template)
        parameters = deploying.read_samconfig(args.config_file, args.config_env)
        parameters.update(deploying.parse_overrides(args.parameter_overrides))
        return _run_deploy(args.endpoint_url, _stack_name(args), template, parameters, args)
    except deploying.DeployError as exc:
        complain(str(exc))
        return 1
    except Exception as exc:  # e.g. the endpoint is not running
        complain(f"deploy failed: {type(exc).__name__}: {exc}")
        return 1


def cmd_delete(args: argparse.Namespace) -> int:
    _configure_logging(False)
    progress = Progress(
        deploying.aws_client("cloudformation", args.endpoint_url, args.region),
        deploying.aws_client("stepfunctions", args.endpoint_url, args.region),
        args.stack_name,
        say,
        since=datetime.now(UTC) - timedelta(seconds=1),
    )
    try:
        status = deploying.delete(args.endpoint_url, args.stack_name, args.region, args.timeout, progress.poll,
                                  say=say)
    except deploying.DeployError as exc:
        complain(str(exc))
        return 1
    except Exception as exc:  # e.g. the endpoint is not running
        complain(f"delete failed: {type(exc).__name__}: {exc}")
        return 1
    say(f"stack {args.stack_name} {status}")
    return 0 if status == "DELETE_COMPLETE" else 1


def demo_parameters(template: Path, workbench_url: str | None) -> dict[str, str]:
    """Sample values for the parameters a demo needs, for those the template declares.

    The Workbench GUID is a valid sample; the API key and base URL are the emulator's; a failed step
    fails the stack at once (no retry window) and slow operations are polled often.
    """
    declared = deploying.load_template(template).get("Parameters", {})
    samples = {
        "WorkbenchGuid": DEMO_WORKBENCH_GUID,
        "WorkbenchApiKey": DEMO_API_KEY,
        "WorkbenchBaseUrl": workbench_url,
        "RetryWindowSeconds": "0",
        "StatusPollSeconds": "1",
    }
    return {name: value for name, value in samples.items() if name in declared and value is not None}


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def cmd_demo(args: argparse.Namespace) -> int:
    _configure_logging(False)
    try:
        template = _resolve_template(args.template)
    except deploying.DeployError as exc:
        complain(str(exc))
        return 1
    signal.signal(signal.SIGTERM, _interrupt)  # stop cleanly (finally below) on SIGTERM as on Ctrl-C
    try:
        cloud = LocalCloud(args.port, args.workbench_port, args.schedule_interval, DEMO_WORKBENCH_GUID, iam=args.iam,
                           iam_report=args.iam_report, stackset_seconds=args.stackset_seconds,
                           iam_propagation_delay=args.iam_propagation_delay,
                           iam_propagation_from_first_use=args.iam_propagation_from_first_use,
                           cloudtrail_interval=args.cloudtrail_interval,
                           cloudtrail_digest_interval=args.cloudtrail_digest_interval,
                           time_scale=args.time_scale).listen()
    except (PortInUse, FileNotFoundError) as exc:
        complain(str(exc))
        return 1
    try:
        say(f"local cloud on AWS endpoint {cloud.url}  Workbench {cloud.workbench_url or '(not available)'}")
        parameters = deploying.read_samconfig(args.config_file, args.config_env)
        parameters.update(demo_parameters(template, cloud.workbench_url))
        parameters.update(deploying.parse_overrides(args.parameter_overrides))

        def start_cloud() -> None:
            say("starting the local cloud while SAM starts")
            cloud.start()
            cloud.expect_serverless()
            say("local cloud ready")

        return _run_deploy(cloud.url, args.stack_name, template, parameters, args, starting=start_cloud)
    except deploying.DeployError as exc:
        complain(str(exc))
        return 1
    except KeyboardInterrupt:
        complain("interrupted")
        return 130
    except Exception as exc:  # one line, not a traceback: the local cloud still stops below
        complain(f"demo failed: {type(exc).__name__}: {exc}")
        return 1
    finally:
        say("stopping the local cloud")
        cloud.stop()


def _region(args: argparse.Namespace) -> str | None:
    if args.region:
        return args.region
    if getattr(args, "execution", None) and args.execution.startswith("arn:"):
        return args.execution.split(":")[3]
    found = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if found or args.endpoint_url:
        return found or "us-east-1"
    import boto3

    return boto3.Session().region_name


def _status_clients(endpoint_url: str | None, region: str) -> tuple[object, object]:
    if endpoint_url:
        return (
            deploying.aws_client("cloudformation", endpoint_url, region),
            deploying.aws_client("stepfunctions", endpoint_url, region),
        )
    import boto3  # AWS: the default credential chain (profile, environment, SSO, instance role)

    session = boto3.Session(region_name=region)
    return session.client("cloudformation"), session.client("stepfunctions")


def _failed(view: status.StatusView) -> bool:
    if view.stack:
        return view.stack.status.endswith(("_FAILED", "ROLLBACK_COMPLETE"))
    return view.execution is not None and view.execution.status in ("FAILED", "TIMED_OUT", "ABORTED")


def cmd_status(args: argparse.Namespace) -> int:
    _configure_logging(False)
    region = _region(args)
    if not region:
        complain("no region: pass --region (or set AWS_REGION)")
        return 2
    try:
        cfn, sfn = _status_clients(args.endpoint_url, region)
        progress = Progress(cfn, sfn, args.stack, say, execution_arn=args.execution)
        view = progress.view(region, local=bool(args.endpoint_url))
        if args.stack:
            from local_cloud import doctor

            view.notes.append("")
            view.notes.append(doctor.last_check(cfn, sfn, args.stack, region))
        for line in status.render(view):
            say(line)
        if args.watch and not view.finished:
            say("")
            say("watching: new events and steps as they happen (Ctrl-C stops watching, not the onboarding)")
            progress.skip_existing()
            deadline = time.monotonic() + args.timeout
            while not view.finished and time.monotonic() < deadline:
                time.sleep(args.interval)
                progress.poll()
                view = progress.view(region, local=bool(args.endpoint_url))
            say("")
            for line in status.render(view):
                say(line)
    except status.NotFound as exc:
        complain(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # e.g. no credentials, endpoint not running: one line, not a traceback
        complain(f"status failed: {type(exc).__name__}: {exc}")
        return 1
    return 1 if _failed(view) else 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from local_cloud import doctor

    _configure_logging(False)
    region = _region(args)
    if not region:
        complain("no region: pass --region (or set AWS_REGION)")
        return doctor.CHECK_FAILED
    try:
        cfn, sfn = _status_clients(args.endpoint_url, region)
        say(f"checking stack {args.stack} in {region} (reads only) ...")
        checked = doctor.run_check(cfn, sfn, args.stack, region, timeout=args.timeout)
        if args.repair and checked.report.finding_count:
            say("")
            doctor.show(checked, args.stack, say)
            say("")
            say("repairing: the onboarding runs again (as an update: no canary through the queue) ...")
            repaired = doctor.repair(cfn, sfn, args.stack, region, timeout=max(args.timeout, 900.0),
                                     report=checked.report)
            say(f"repaired by {repaired}; checking again ...")
            checked = doctor.run_check(cfn, sfn, args.stack, region, timeout=args.timeout)
    except (status.NotFound, doctor.DoctorError) as exc:
        complain(str(exc))
        return doctor.CHECK_FAILED
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # e.g. no credentials, endpoint not running: one line, not a traceback
        complain(f"doctor failed: {type(exc).__name__}: {exc}")
        return doctor.CHECK_FAILED
    say("")
    return doctor.show(checked, args.stack, say)


def cmd_launch_url(args: argparse.Namespace) -> int:
    _configure_logging(False)
    try:
        template = _resolve_template(args.template)
        declared = deploying.load_template(template).get("Parameters", {})
        parameters = deploying.parse_overrides(args.param)
        if args.endpoint_url:
            s3 = deploying.aws_client("s3", args.endpoint_url, args.region)
        else:
            import boto3

            s3 = boto3.Session(region_name=args.region).client("s3")
        with tempfile.TemporaryDirectory(prefix="launch-url-") as workdir:
            launch = launch_url.publish(
                template, declared, s3, args.bucket, args.region, args.stack_name, parameters, Path(workdir),
                args.endpoint_url, say,
            )  # fmt: skip
    except (deploying.DeployError, launch_url.LaunchError) as exc:
        complain(str(exc))
        return 1
    except Exception as exc:  # e.g. no credentials: one line, not a traceback
        complain(f"launch-url failed: {type(exc).__name__}: {exc}")
        return 1
    say(f"template: {launch.template_url}")
    secret = sorted(k for k, v in declared.items() if str((v or {}).get("NoEcho", "")).lower() == "true")
    if secret:
        say(f"not in the link (NoEcho, type them on the page): {', '.join(secret)}")
    say("quick-create link:")
    say(launch.url)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        return cmd_demo(args)
    if args.command == "status":
        return cmd_status(args)
    if args.command == "launch-url":
        return cmd_launch_url(args)
    if args.command == "doctor":
        return cmd_doctor(args)
    return {"serve": cmd_serve, "deploy": cmd_deploy, "delete": cmd_delete}[args.local_command](args)


def run() -> None:
    """The ``cloudtrail-onboarding`` command: ``main``, then exit without tearing the interpreter down. By then the
    command has stopped what it started and written what it writes; what is left is freeing, one by one, the
    millions of objects a local cloud holds (moto's backends, botocore's models, the parsed templates), seconds of
    CPU at the end of ``demo`` and of every ``local serve`` a test stops. The exit handlers still run."""
    code = main()
    atexit._run_exitfuncs()  # logging's flush among them
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
