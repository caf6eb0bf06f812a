"""What `pixelflow submit` was asked to process: URLs, files, folders (walked) and glob patterns,
and where each result goes under --out."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from pixelflow.v1 import task_pb2

# A folder's files are taken by these suffixes (what the service accepts); a file named on the
# command line is sent whatever its name, and the service says if it is not an image.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".tif", ".tiff", ".bmp", ".avif"})
EXTENSIONS = {
    task_pb2.IMAGE_FORMAT_JPEG: ".jpg",
    task_pb2.IMAGE_FORMAT_PNG: ".png",
    task_pb2.IMAGE_FORMAT_WEBP: ".webp",
    task_pb2.IMAGE_FORMAT_AVIF: ".avif",
    task_pb2.IMAGE_FORMAT_GIF: ".gif",
    task_pb2.IMAGE_FORMAT_TIFF: ".tiff",
}


class InputError(ValueError):
    pass


@dataclass(frozen=True)
class Input:
    """One image to submit: a local file or a URL, and the name its result takes (relative to
    --out, without extension): a folder's structure is kept below it."""

    label: str
    stem: PurePosixPath
    path: Path | None = None
    url: str = ""


def expand(sources: list[str]) -> list[Input]:
    found: list[Input] = []
    seen: set[str] = set()

    def add(item: Input) -> None:
        key = str(item.path.resolve()) if item.path else item.url
        if key not in seen:
            seen.add(key)
            found.append(item)

    for source in sources:
        if source.startswith(("http://", "https://")):
            name = PurePosixPath(urlsplit(source).path).stem or "image"
            add(Input(label=source, stem=PurePosixPath(name), url=source))
            continue
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise InputError(f"{source}: no images in this folder (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
            for file in files:
                relative = file.relative_to(path).with_suffix("")
                add(Input(label=str(file), stem=PurePosixPath(relative.as_posix()), path=file))
        elif path.is_file():
            add(Input(label=source, stem=PurePosixPath(path.stem), path=path))
        elif glob.has_magic(source):
            matches = sorted(Path(match) for match in glob.glob(source, recursive=True))
            files = [match for match in matches if match.is_file()]
            if not files:
                raise InputError(f"{source}: the pattern matches no file")
            for file in files:
                add(Input(label=str(file), stem=PurePosixPath(file.stem), path=file))
        else:
            raise InputError(f"{source}: no such file or folder (URLs start with http:// or https://)")
    return found


class OutputNames:
    """Result paths under one folder, never the same twice in a run (`a.webp`, `a-2.webp`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._taken: set[Path] = set()

    def claim(self, stem: PurePosixPath, image_format: int) -> Path:
        extension = EXTENSIONS.get(image_format, ".bin")  # type: ignore[call-overload]
        candidate = self.folder / f"{stem}{extension}"
        number = 2
        while candidate in self._taken:
            candidate = self.folder / f"{stem}-{number}{extension}"
            number += 1
        self._taken.add(candidate)
        return candidate
