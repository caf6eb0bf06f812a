"""requirements.lock is exactly what the services need, requirements-dev.lock what development
adds: the runtime lock holds the whole dependency closure of pyproject.toml's dependencies (as
installed, markers evaluated), nothing more, and the two locks share no package."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
# What `pip freeze` leaves out: they come with the interpreter (the image's python:3.11-slim too).
WITH_THE_INTERPRETER = frozenset({"pip", "setuptools", "wheel"})


def _pins(name: str) -> dict[str, str]:
    lines = (ROOT / name).read_text().splitlines()
    pins = [line.split("==") for line in lines if line and not line.startswith("#")]
    return {canonicalize_name(package): version for package, version in pins}


def _closure(requirements: list[str]) -> set[str]:
    seen: set[tuple[str, frozenset[str]]] = set()
    pending = [Requirement(text) for text in requirements]
    while pending:
        requirement = pending.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        for text in metadata.distribution(requirement.name).requires or []:
            needed = Requirement(text)
            extras = requirement.extras or {""}
            if needed.marker is None or any(needed.marker.evaluate({"extra": extra}) for extra in extras):
                pending.append(needed)
    return {name for name, _ in seen}


def test_the_runtime_lock_is_the_closure_of_the_runtime_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert set(_pins("requirements.lock")) == _closure(project["dependencies"]) - WITH_THE_INTERPRETER


def test_the_locks_share_nothing_and_pin_what_is_installed() -> None:
    runtime, development = _pins("requirements.lock"), _pins("requirements-dev.lock")
    assert not set(runtime) & set(development)
    for name, version in {**runtime, **development}.items():
        assert metadata.version(name) == version, name
