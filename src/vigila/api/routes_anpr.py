"""ANPR on demand: upload a photo, get the plates read in it (audited as a consultation)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from vigila.access import Permission
from vigila.api.deps import Consultation, Installation, client_of, consultation, installation
from vigila.core import FieldError, InvalidInput, UnsupportedMediaType
from vigila.vision.anpr.service import read_photo, shared_engine

router = APIRouter(prefix="/api/anpr", tags=["anpr"])


class PlateOut(BaseModel):
    text: str = Field(description="normalised: A-Z and 0-9")
    display: str = Field(description="as printed, with the format's spaces and dashes")
    confidence: float = Field(ge=0, le=1)
    box: list[int] = Field(description="x, y, width, height in the photo's pixels")
    country: str = Field(description="ISO 3166-1 alpha-2; empty when no format matched")
    kind: str
    format_id: str


class AnprOut(BaseModel):
    plates: list[PlateOut] = Field(description="best first; empty when none was found")
    ms: float = Field(description="time spent reading, in milliseconds")
    width: int
    height: int


_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["image"], "properties": {
        "image": {"type": "string", "format": "binary",
                  "description": "a JPEG, PNG, BMP, WebP or TIFF photo, up to 25 MiB"}}}}}}}


@router.post("/read", response_model=AnprOut, openapi_extra=_BODY)
async def post_read(request: Request,
                    c: Consultation = Depends(consultation(Permission.PERSONAL_READ)),
                    inst: Installation = Depends(installation)) -> AnprOut:
    """Read the plates in one uploaded photo (multipart field `image`). Needs a purpose;
    the photo is not kept, the read is audited with the plates it revealed."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "multipart/form-data":
        raise UnsupportedMediaType("send multipart/form-data with the photo as 'image'",
                                   [FieldError("content-type", f"{ctype or 'none'} is not "
                                               "accepted")])
    form = await request.form(max_files=1, max_fields=4)
    part = form.get("image")
    if not isinstance(part, UploadFile):
        raise InvalidInput.on("image", "a file part named 'image' is required")
    data = await part.read()
    reading = await run_in_threadpool(read_photo, inst.db, shared_engine(), c.who, c.why,
                                      data, client_of(request))
    return AnprOut(plates=[PlateOut(**p.as_dict()) for p in reading.plates],
                   ms=round(reading.ms, 1), width=reading.width, height=reading.height)
