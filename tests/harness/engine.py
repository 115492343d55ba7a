"""Whether a container engine answers, for the container runtime's tests.

:func:`engine_problem` says why the container tests cannot run here (and how to enable them),
or None when an engine answers at ``DOCKER_HOST``.
"""

from __future__ import annotations

from functools import cache

__all__ = ["ENABLE", "engine_problem"]

#: How to enable the container tests on a machine without an engine.
ENABLE = (
    "to run them: scripts/container-engine install (as root, Debian's podman and runc), then "
    'eval "$(scripts/container-engine start)" (sets DOCKER_HOST), or point DOCKER_HOST at a '
    "Docker Engine; scripts/test does both"
)


@cache
def engine_problem() -> str | None:
    """None if a container engine answers, else why not and how to enable the tests."""
    try:
        from consortium.container_runtime import EngineError, engine_client
    except ImportError as exc:  # the docker package is missing
        return f"the container runtime cannot be imported ({exc}); {ENABLE}"
    try:
        engine_client().close()
    except EngineError as exc:
        return f"{exc.args[0].split(';')[0]}; {ENABLE}"
    return None
