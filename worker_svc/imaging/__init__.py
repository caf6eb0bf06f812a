"""Image processing for the worker: Pillow, with limits checked before any full decode.

`process(data, operations, output, auto_orient=..., limits=...)` is the whole public surface;
it raises `ImageError` (a stable `ErrorCode` plus a message for people) for bad input.
"""

from worker_svc.imaging.errors import ErrorCode, ImageError
from worker_svc.imaging.limits import ImageLimits
from worker_svc.imaging.pipeline import ProcessedImage, process
from worker_svc.imaging.steps import REGISTRY

__all__ = ["REGISTRY", "ErrorCode", "ImageError", "ImageLimits", "ProcessedImage", "process"]
