"""IAM enforcement in the local cloud's server: the moto plumbing around ``local_cloud.iam``.

``install(app, report_path)`` returns moto's WSGI app wrapped so every request is authorized, and sets
the services' own identities: Lambda functions run with their execution role's session credentials,
the Step Functions engine calls Lambda as the state machine's role, CloudFormation creates a stack's resources
as its service role (``RoleARN``) or its caller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from local_cloud.enforcement.authorization import Enforcer, run, running
from local_cloud.enforcement.middleware import IamMiddleware
from local_cloud.enforcement.report import Report


def enforcer() -> Enforcer | None:
    """The running server's enforcer (None when IAM enforcement is off)."""
    return running()


def install(app: Any, report_path: Path | None = None) -> Any:
    from local_cloud.enforcement import cloudformation, services

    enforcer = Enforcer(Report(report_path) if report_path else None)
    run(enforcer)
    services.install()
    cloudformation.install()
    return IamMiddleware(app, enforcer)
