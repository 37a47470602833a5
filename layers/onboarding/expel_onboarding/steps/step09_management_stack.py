"""Guide step 9 (AWS Organizations only): the additional stack in the management account.

Service-managed StackSets never deploy to the management account, so step 8's StackSet leaves it
without a role; this stack gives it the role with the data path (the bucket, queue and key live here).
It is the same stack a single account gets in step 8 (``expel_role_stack``), and its role is the one
Workbench is given (step 10).
"""

from __future__ import annotations

from expel_onboarding.models import Config, QueueOutput, RoleOutput, RoleStatus, TrailOutput
from expel_onboarding.steps import expel_role_stack


def deploy(config: Config, trail: TrailOutput, queue: QueueOutput, service_role_arn: str = "") -> RoleOutput:
    """Start (or reconcile) the management account's role stack; returns at once."""
    return expel_role_stack.deploy(config, trail, queue, service_role_arn)


def status(config: Config, role: RoleOutput) -> RoleOutput:
    """One look at the stack ``deploy`` started: COMPLETE with the role ARN, IN_PROGRESS, or a failure."""
    return expel_role_stack.status(config, role)


def remove(config: Config) -> RoleStatus:
    """Teardown: delete the stack if ours. DELETED, IN_PROGRESS (call again after a wait) or SKIPPED."""
    return expel_role_stack.remove(config)
