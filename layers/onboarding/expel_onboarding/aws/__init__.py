"""Thin wrappers over boto3, one module per service. The only place that talks to AWS."""
