"""Evidence packages over HTTP: export, download, public key; thin calls into vigila.evidence."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import FileResponse, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from vigila import __version__
from vigila.access import Permission
from vigila.api.deps import Consultation, Installation, consultation, installation, principal
from vigila.core.text import NoNul
from vigila.evidence import (
    MAX_CAMERAS,
    NAME_PATTERN,
    CameraEvidence,
    export_evidence,
    installation_key,
    package_for_download,
    packages_dir,
)
from vigila.registry.models import DeviceId

router = APIRouter(prefix="/api/evidence", tags=["evidence"])
PEM = "application/x-pem-file"


class EvidenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cameras: list[DeviceId] = Field(min_length=1, max_length=MAX_CAMERAS)
    start: AwareDatetime
    end: AwareDatetime
    reference: Annotated[str, StringConstraints(min_length=3, max_length=256), NoNul] = Field(
        description="the judicial or police request reference")
    authority: Annotated[str | None, StringConstraints(max_length=256), NoNul] = Field(
        default=None, description="to whom the package goes")


class GapOut(BaseModel):
    start: datetime
    end: datetime
    reason: str


class CameraOut(BaseModel):
    camera: str
    name: str
    video: bool
    file: str | None
    start: datetime | None  # the real instants the clip covers (key-frame aligned)
    end: datetime | None
    bytes: int
    sha256: str | None
    sources: int
    gaps: list[GapOut]

    @classmethod
    def of(cls, part: CameraEvidence) -> CameraOut:
        return cls(camera=part.camera, name=part.name, video=part.video, file=part.file,
                   start=part.start, end=part.end, bytes=part.bytes, sha256=part.sha256,
                   sources=len(part.sources),
                   gaps=[GapOut(start=g.start, end=g.end, reason=g.reason) for g in part.gaps])


class EvidenceOut(BaseModel):
    package: str
    download: str
    created_at: datetime
    start: datetime
    end: datetime
    reference: str
    authority: str | None
    manifest_sha256: str
    key_id: str
    cameras: list[CameraOut]


@router.post("", response_model=EvidenceOut, status_code=201)
def export(body: EvidenceRequest,
           c: Consultation = Depends(consultation(Permission.EVIDENCE_EXPORT)),
           inst: Installation = Depends(installation)) -> EvidenceOut:
    """Cut, sign and store a package of the cameras' video; the answer says where to get it."""
    settings = inst.settings
    key = installation_key(settings.keys_dir)
    made = export_evidence(
        inst.db, c.who, c.why, root=settings.recordings_root, cameras=body.cameras,
        start=body.start, end=body.end, reference=body.reference,
        authority=body.authority, out_dir=packages_dir(settings), key=key,
        software_version=__version__)
    return EvidenceOut(package=made.name, download=f"{router.prefix}/{made.name}",
                       created_at=made.created_at, start=made.start, end=made.end,
                       reference=made.reference, authority=made.authority,
                       manifest_sha256=made.manifest_sha256, key_id=made.key_id,
                       cameras=[CameraOut.of(p) for p in made.cameras])


@router.get("/public-key", response_class=Response, dependencies=[Depends(principal)],
            responses={200: {"content": {PEM: {"schema": {"type": "string"}}},
                             "description": "the installation's Ed25519 public key (PEM)"}})
def public_key(inst: Installation = Depends(installation)) -> Response:
    """The key that verifies packages; give the recipient its id by another channel too."""
    key = installation_key(inst.settings.keys_dir)
    return Response(key.public_pem, media_type=PEM,
                    headers={"Vigila-Key-Id": key.key_id})


@router.get("/{package}", response_class=FileResponse,
            responses={200: {"content": {"application/zip": {
                "schema": {"type": "string", "format": "binary"}}},
                "description": "the package as a zip"}})
def download(package: Annotated[str, Path(pattern=NAME_PATTERN)],
             c: Consultation = Depends(consultation(Permission.EVIDENCE_EXPORT)),
             inst: Installation = Depends(installation)) -> FileResponse:
    """For its maker, or a user holding every zone of its cameras; audited."""
    with inst.db.write() as conn:
        archive = package_for_download(conn, c.who, c.why,
                                       out_dir=packages_dir(inst.settings), name=package)
    return FileResponse(archive, media_type="application/zip", filename=archive.name)
