"""The cluster's certificates: one CA, serving and client certificates, the service-account key.

Made with ``cryptography`` (already a dependency) rather than openssl or kubeadm so the test bed
needs no extra tool and every file's purpose is readable here. Keys are EC P-256 (fast to make);
files are written 0600 under the cluster's PKI directory. Subjects follow Kubernetes' conventions:
``O=system:masters`` for admins, ``CN=system:node:<name>, O=system:nodes`` for kubelets (the Node
authorizer), ``CN=system:kube-controller-manager`` / ``system:kube-scheduler``.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALID = datetime.timedelta(days=30)


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


class Pki:
    """A CA in ``directory`` and the certificates it signs (``issue``)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        name = _name("terway-testbed-ca")
        self._ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                    .public_key(self._ca_key.public_key()).serial_number(x509.random_serial_number())
                    .not_valid_before(now - datetime.timedelta(minutes=5))
                    .not_valid_after(now + _VALID)
                    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                    .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                                 False, False), critical=True)
                    .sign(self._ca_key, hashes.SHA256()))
        self.ca = CertFiles(directory / "ca.crt", directory / "ca.key")
        _write(self.ca.cert, self._ca.public_bytes(serialization.Encoding.PEM))
        _write(self.ca.key, _key_pem(self._ca_key))

    @property
    def ca_pem(self) -> bytes:
        return self.ca.cert.read_bytes()

    def issue(self, stem: str, cn: str, org: str | None = None, *, server: bool = False,
              client: bool = False, dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()
              ) -> CertFiles:
        """Write ``<stem>.crt``/``<stem>.key`` signed by the CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
            [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
        builder = (x509.CertificateBuilder().subject_name(_name(cn, org))
                   .issuer_name(self._ca.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + _VALID)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage(usages), critical=False))
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self._ca_key, hashes.SHA256())
        files = CertFiles(self.dir / f"{stem}.crt", self.dir / f"{stem}.key")
        _write(files.cert, cert.public_bytes(serialization.Encoding.PEM))
        _write(files.key, _key_pem(key))
        return files

    def service_account_key(self) -> CertFiles:
        """The key pair that signs service-account tokens (``sa.key``) and verifies them
        (``sa.pub``)."""
        key = ec.generate_private_key(ec.SECP256R1())
        files = CertFiles(self.dir / "sa.pub", self.dir / "sa.key")
        _write(files.key, _key_pem(key))
        _write(files.cert, key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        return files


def kubeconfig(path: Path, server: str, ca: Path, creds: CertFiles, user: str) -> Path:
    """A kubeconfig file naming files (not embedding them), for the components and tests."""
    text = f"""apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: {user}
  user:
    client-certificate: {creds.cert}
    client-key: {creds.key}
contexts:
- name: testbed
  context: {{cluster: testbed, user: {user}}}
current-context: testbed
"""
    _write(path, text.encode())
    return path
