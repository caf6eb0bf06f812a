"""Image processing for the worker: libvips and Pillow, with limits checked before any full decode.

`process(data, operations, output, auto_orient=..., limits=...)` is the whole public surface;
it raises `ImageError` (a stable `FailureCode` plus a message for people) for bad input.
"""

from tasks.failures import FailureCode
from worker_svc.imaging.errors import ImageError
from worker_svc.imaging.limits import ImageLimits
from worker_svc.imaging.pipeline import ProcessedImage, process
from worker_svc.imaging.steps import REGISTRY

__all__ = ["REGISTRY", "FailureCode", "ImageError", "ImageLimits", "ProcessedImage", "process"]
