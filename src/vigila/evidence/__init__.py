"""Evidence: signed, self-describing video packages for the judicial authority.

`export_evidence` cuts each camera's clip (`vigila.recording.clips`), writes a manifest
(who, when, why, for whom, the real times, the gaps, every SHA-256), signs it with the
installation's Ed25519 key and audits the export; `verify_package` checks a package
(folder or .zip) against a public key the recipient obtained by another channel.
"""

from pathlib import Path

from vigila.core import Settings
from vigila.evidence.keys import (
    ALGORITHM,
    SigningKey,
    installation_key,
    key_id,
    load_public_key,
    public_pem,
)
from vigila.evidence.package import (
    MAX_CAMERAS,
    MAX_RANGE,
    NAME_PATTERN,
    CameraEvidence,
    Custody,
    EvidenceGap,
    EvidencePackage,
    VerifyReport,
    check_package_name,
    export_evidence,
    on_screen,
    package_for_download,
    verify_package,
)


def packages_dir(settings: Settings) -> Path:
    """Where the API and the command line keep the packages they make."""
    return settings.data_dir / "evidence"


__all__ = [
    "ALGORITHM",
    "MAX_CAMERAS",
    "MAX_RANGE",
    "NAME_PATTERN",
    "CameraEvidence",
    "Custody",
    "EvidenceGap",
    "EvidencePackage",
    "SigningKey",
    "VerifyReport",
    "check_package_name",
    "export_evidence",
    "installation_key",
    "key_id",
    "load_public_key",
    "on_screen",
    "package_for_download",
    "packages_dir",
    "public_pem",
    "verify_package",
]
