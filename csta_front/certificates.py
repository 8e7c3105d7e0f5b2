"""The exchange's TLS certificate for the CSTA servers' TLS ports: create, install, load and check it.

The certificate lives in the cluster's data folder (data/tls/). A CSTA server opens its TLS port
only with a valid certificate (as the seed requires); `csta -i` asking for TLS without one fails.
Certificates are built and checked with the `cryptography` library. The command is cli/certificate.py.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class CertificateError(Exception):
    pass


@dataclass(frozen=True)
class Installed:
    cert_path: Path
    key_path: Path
    subject: str
    not_after: dt.datetime
    names: list[str]
    self_signed: bool


def tls_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "data" / "tls"


def load_installed(run_dir: Path, now: dt.datetime | None = None) -> Installed:
    """The installed certificate, if it is usable: present, readable, in date, matching its key."""
    folder = tls_dir(run_dir)
    cert_path, key_path = folder / "server.crt", folder / "server.key"
    if not cert_path.exists() or not key_path.exists():
        raise CertificateError("no certificate is installed")
    return check_pair(cert_path.read_bytes(), key_path.read_bytes(), cert_path, key_path, now)


def check_pair(cert_pem: bytes, key_pem: bytes, cert_path: Path, key_path: Path,
               now: dt.datetime | None = None) -> Installed:
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise CertificateError(f"{cert_path} is not a PEM certificate ({exc})") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"{key_path} is not an unencrypted PEM private key ({exc})") from None
    public = lambda k: k.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if public(cert.public_key()) != public(key.public_key()):
        raise CertificateError(f"the key in {key_path} does not belong to the certificate in {cert_path}")
    now = now or dt.datetime.now(dt.timezone.utc)
    if now < cert.not_valid_before_utc:
        raise CertificateError(f"the certificate is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    if now > cert.not_valid_after_utc:
        raise CertificateError(f"the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in san.get_values_for_type(x509.DNSName)] + \
                [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    return Installed(cert_path, key_path, cert.subject.rfc4514_string(), cert.not_valid_after_utc, names,
                     cert.issuer == cert.subject)


def create_self_signed(common_name: str, addresses: list[str], days: int) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mxone-sim")])
    alt = [x509.DNSName("localhost"), x509.DNSName(common_name)]
    for address in dict.fromkeys(["127.0.0.1", *addresses]):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            alt.append(x509.DNSName(address))
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def install(run_dir: Path, cert_pem: bytes, key_pem: bytes) -> Installed:
    folder = tls_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    info = check_pair(cert_pem, key_pem, folder / "server.crt", folder / "server.key")  # check before writing
    key_path = folder / "server.key"
    fd = os.open(key_path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_pem)
    os.replace(key_path.with_suffix(".tmp"), key_path)
    (folder / "server.crt").write_bytes(cert_pem)
    return info


def describe(info: Installed) -> str:
    kind = "self-signed" if info.self_signed else "issued by a CA"
    return (f"Certificate {info.subject} ({kind}), valid until {info.not_after:%Y-%m-%d %H:%M} UTC\n"
            f"  names: {', '.join(info.names) or 'none'}\n  files: {info.cert_path}, {info.key_path}")
