"""A KMS key's key pair is made when first used: Sign, Verify and GetPublicKey answer as before."""

from __future__ import annotations

from typing import Any

import boto3
from cryptography.hazmat.primitives import serialization
from moto.kms.models import kms_backends

from tests.conftest import ACCOUNT_ID, REGION


def test_a_symmetric_key_makes_no_key_pair_and_still_encrypts(aws: Any) -> None:
    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"log file")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"log file"
    assert not kms_backends[ACCOUNT_ID][REGION].keys[key_id].private_key.made


def test_an_asymmetric_key_signs_verifies_and_gives_its_public_key(aws: Any) -> None:
    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="RSA_2048")["KeyMetadata"]["KeyId"]
    signed = kms.sign(KeyId=key_id, Message=b"digest", SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
    verified = kms.verify(KeyId=key_id, Message=b"digest", Signature=signed, SigningAlgorithm="RSASSA_PSS_SHA_256")
    assert verified["SignatureValid"] is True
    assert kms.verify(KeyId=key_id, Message=b"other", Signature=signed,
                      SigningAlgorithm="RSASSA_PSS_SHA_256")["SignatureValid"] is False
    public = serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])
    assert public.key_size == 2048  # type: ignore[union-attr]
