"""EventBridge: tidy up crhelper's poll rule once a stack delete has been answered.

crhelper polls through a one-minute rule named after the logical id (``Onboarding`` + 8 characters) that
removes itself on its next run. After a delete the trigger function is gone before that run, so the rule
would stay, firing at nothing, with the request (its ResponseURL included) in its input.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from expel_onboarding.aws import clients
from expel_onboarding.aws.errors import error_code

logger = Logger(child=True)


def remove_poll_rules(target_arn: str, name_prefix: str) -> list[str]:
    """Delete the rules named ``name_prefix*`` that target ``target_arn``. Best effort: returns what went."""
    events = clients.events()
    removed: list[str] = []
    try:
        paginator = events.get_paginator("list_rule_names_by_target")
        names = [n for page in paginator.paginate(TargetArn=target_arn) for n in page["RuleNames"]]
        for name in (n for n in names if n.startswith(name_prefix)):
            events.remove_targets(Rule=name, Ids=["1"])
            events.delete_rule(Name=name)
            removed.append(name)
    except Exception as exc:  # noqa: BLE001 - litter, not the answer: never fail the stack over it
        logger.warning("Could not remove crhelper's poll rule", extra={"code": error_code(exc), "error": str(exc)})
    return removed
