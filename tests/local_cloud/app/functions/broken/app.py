"""Imports a module its layer does not hold (the dev venv has it): must fail as on AWS."""

import yaml


def lambda_handler(event: dict, context: object) -> str:
    return yaml.safe_dump(event)
