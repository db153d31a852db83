"""The SendGrid Event Webhook's verification key: an ECDSA P-256 public key, given either as
SendGrid's settings page shows it (base64 DER, no PEM armour) or as a PEM block."""

import base64
import binascii

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def load_sendgrid_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """The key, or ValueError saying why ``text`` is not an EC public key."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            der = base64.b64decode("".join(text.split()), validate=True)
            key = serialization.load_der_public_key(der)
    except (ValueError, binascii.Error, UnsupportedAlgorithm, TypeError):
        raise ValueError(
            "not a public key: give the Event Webhook verification key as SendGrid shows it "
            "(base64 DER) or as a PEM block"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an elliptic-curve (ECDSA) public key, as SendGrid signs with")
    return key


def normalize_sendgrid_public_key(text: str) -> str:
    """The key as base64 DER (SendGrid's form), whichever form it was given in."""
    der = load_sendgrid_public_key(text).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()
