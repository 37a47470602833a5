"""Shared package of the Expel CloudTrail self-onboarding (deployed as a Lambda layer).

Pure modules (no boto3, no environment): models, naming, policies, validation, workbench_payload.
AWS modules live in ``aws/`` (one thin module per service); guide steps in ``steps/``.
"""
