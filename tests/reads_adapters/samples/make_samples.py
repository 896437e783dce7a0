"""Regenerate the binary samples: `.venv/bin/python tests/reads_adapters/samples/make_samples.py`.

Writes two tiny JPEGs (a plate crop and a scene), the Tattile transit XML with them
embedded as base64, and a raw Hikvision multipart body as a camera sends it (CRLF
line ends, the XML part first, then the pictures).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).parent
BOUNDARY = "boundary"


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=60)
    return out.getvalue()


def plate(text: str) -> bytes:
    image = Image.new("RGB", (120, 28), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 9, 27), fill=(0, 51, 153))
    draw.text((16, 8), text, fill="black")
    return jpeg(image)


def scene() -> bytes:
    image = Image.new("RGB", (320, 180), (90, 96, 104))
    draw = ImageDraw.Draw(image)
    draw.polygon([(120, 180), (150, 60), (170, 60), (200, 180)], fill=(60, 62, 66))
    draw.rectangle((130, 110, 190, 150), fill=(170, 170, 175))
    draw.rectangle((146, 140, 174, 146), fill="white")
    return jpeg(image)


def multipart(xml: bytes, pictures: list[tuple[str, bytes]]) -> bytes:
    chunks = [
        f"--{BOUNDARY}\r\n".encode(),
        b'Content-Disposition: form-data; name="anpr.xml"; filename="anpr.xml"\r\n',
        b'Content-Type: text/xml; charset="UTF-8"\r\n',
        f"Content-Length: {len(xml)}\r\n\r\n".encode(),
        xml,
        b"\r\n",
    ]
    for name, data in pictures:
        chunks += [
            f"--{BOUNDARY}\r\n".encode(),
            f'Content-Disposition: form-data; name="{name}"; filename="{name}"\r\n'.encode(),
            b"Content-Type: image/jpeg\r\n",
            f"Content-Length: {len(data)}\r\n".encode(),
            f"Content-ID: {name.rsplit('.', 1)[0]}\r\n\r\n".encode(),
            data,
            b"\r\n",
        ]
    chunks.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(chunks)


def wrap(data: bytes) -> str:
    encoded = base64.b64encode(data).decode()
    return "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def main() -> None:
    hik_plate, hik_scene = plate("GF 123XZ"), scene()
    (HERE / "hik_plate.jpg").write_bytes(hik_plate)
    (HERE / "hik_scene.jpg").write_bytes(hik_scene)
    xml = (HERE / "hikvision_anpr.xml").read_bytes()
    body = multipart(
        xml, [("detectionPicture.jpg", hik_scene), ("licensePlatePicture.jpg", hik_plate)]
    )
    (HERE / "hikvision_anpr_multipart.bin").write_bytes(body)

    tat_plate, tat_scene = plate("EZ 482KL"), scene()
    (HERE / "tat_plate.jpg").write_bytes(tat_plate)
    (HERE / "tat_scene.jpg").write_bytes(tat_scene)
    template = (HERE / "tattile_transit.xml.in").read_text()
    (HERE / "tattile_transit.xml").write_text(
        template.replace("@IMAGE_OCR@", wrap(tat_plate)).replace("@IMAGE_COL@", wrap(tat_scene))
    )


if __name__ == "__main__":
    main()
