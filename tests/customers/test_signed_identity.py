"""Signed identity: the README's Python and JavaScript examples sign exactly as Winback checks,
and only signed contact fields survive."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from winback.customers.signed_identity import ClientIdentity, sign_identity, trusted_identity

README = Path(__file__).resolve().parents[2] / "README.md"
SECRET = "s3cret-identity"
VALUE = "  Ana@Example.com "


def readme_block(language: str, marker: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)
    return next(b for b in blocks if marker in b)


def test_the_readme_python_example_signs_like_winback() -> None:
    namespace: dict[str, object] = {}
    exec(readme_block("python", "def winback_signature"), namespace)  # the README's own code
    signature = namespace["winback_signature"](SECRET, VALUE)  # type: ignore[operator]
    assert signature == sign_identity(SECRET, VALUE)
    assert len(signature) == 64


def test_the_readme_javascript_example_signs_like_winback() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    code = readme_block("javascript", "function winbackSignature")
    code += f"\nprocess.stdout.write(winbackSignature({SECRET!r}, {VALUE!r}));\n"
    out = subprocess.run([node, "-e", code], capture_output=True, text=True, check=True)
    assert out.stdout == sign_identity(SECRET, VALUE)


def test_only_signed_contact_fields_are_trusted() -> None:
    identity = ClientIdentity(
        email="ana@example.com",
        email_signature=sign_identity(SECRET, "ana@example.com"),
        phone="+14155552671",
        phone_signature=sign_identity("another secret", "+14155552671"),
        name="Ana",
        locale="es",
    )
    trusted = trusted_identity(identity, SECRET)
    assert trusted.fields == {"email": "ana@example.com", "name": "Ana", "locale": "es"}
    assert trusted.dropped == ["phone"]

    nothing_signed = trusted_identity(identity, None)  # the retailer has no identity secret
    assert nothing_signed.fields == {"locale": "es"}
    assert sorted(nothing_signed.dropped) == ["email", "name", "phone"]
