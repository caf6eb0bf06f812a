"""Image processing for the worker: libvips and Pillow, with limits checked before any full decode.

`process(data, operations, output, auto_orient=..., limits=...)` and, for several outputs from
one decode, `process_variants(data, [Variant(name, operations, output), ...])` are the whole
public surface; they raise `ImageError` (a stable `FailureCode` plus a message for people) for bad input.
"""

from tasks.failures import FailureCode
from worker_svc.imaging.errors import ImageError
from worker_svc.imaging.limits import ImageLimits
from worker_svc.imaging.pipeline import ProcessedImage, Variant, process, process_variants
from worker_svc.imaging.steps import REGISTRY

__all__ = [
    "REGISTRY",
    "FailureCode",
    "ImageError",
    "ImageLimits",
    "ProcessedImage",
    "Variant",
    "process",
    "process_variants",
]
