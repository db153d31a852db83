"""Compiling and rendering retailers' templates off the event loop, bounded in time.

A template is code a retailer wrote. The sandbox keeps it from reaching anything, and bounds
the cost of single operators and the size of the output (``templates.py``), but a template can
still loop for long (nested ``range`` loops) or allocate hugely (``"x"|center(10**9)``). So
compile and render run in a separate process: the API's and the worker's event loops never run
them, and one that takes longer than ``RENDER_TIMEOUT`` is killed (its process with it) and
refused as a ``RenderError``. The process is started once per process and reused; a render is
a round trip of a millisecond or so.
"""

import asyncio
import contextlib
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from winback.messaging.templates import (
    SAMPLE_CONTEXT,
    MessageContext,
    RenderedMessage,
    RenderError,
    TemplateSource,
    check,
    render,
)

RENDER_TIMEOUT = 3.0  # seconds; the defaults and any sane template render in a millisecond
MEMORY_LIMIT = 1 << 30  # bytes of address space for the rendering process
WARM_UP_TIMEOUT = 60.0  # starting the process on a busy machine is not the template's fault


class RenderTimeout(RenderError):
    """Stopped for taking too long; on a loaded machine a retry may succeed."""


@dataclass(frozen=True)
class _Failed:
    """A render error, as plain data (Jinja's exceptions do not all survive pickling)."""

    message: str


def _limit_memory() -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    except (ImportError, ValueError, OSError):  # not on this platform: the timeout still holds
        pass


def _ready() -> bool:
    return True


def _render_there(source: TemplateSource, context: MessageContext) -> RenderedMessage | _Failed:
    try:
        return render(source, context)
    except MemoryError:
        return _Failed("RenderError: uses too much memory")
    except Exception as err:  # every TemplateError, and anything render lets through
        return _Failed(str(getattr(err, "message", None) or err))


def _check_there(source: TemplateSource) -> str | None:
    try:
        return check(source)
    except MemoryError:
        return "RenderError: uses too much memory"


class TemplateRunner:
    """One rendering process per Winback process, replaced whenever one has to be killed."""

    def __init__(self, timeout: float = RENDER_TIMEOUT) -> None:
        self.timeout = timeout
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    async def render(self, source: TemplateSource, context: MessageContext) -> RenderedMessage:
        """The rendered message; ``RenderError`` if it fails, is too big or takes too long."""
        result = await self._run(_render_there, source, context)
        if isinstance(result, _Failed):
            raise RenderError(result.message)
        assert isinstance(result, RenderedMessage)
        return result

    async def warm_up(self) -> None:
        """Starts the rendering process now: otherwise the first message after a worker starts
        waits for it (seconds on a busy machine: a first on-site nudge took 4 s in `make dev`)."""
        with contextlib.suppress(RenderError):
            await self._run(_ready)

    async def check(self, source: TemplateSource) -> str | None:
        """A readable error if the template does not render against a sample cart in time."""
        try:
            problem = await self._run(_check_there, source)
        except RenderError as err:
            return f"RenderError: {err.message}"
        assert problem is None or isinstance(problem, str)
        return problem

    async def _run(self, fn: Callable[..., object], *args: object) -> object:
        loop = asyncio.get_running_loop()
        for _ in range(3):
            pool = self._current_pool()
            try:
                # A ping first: starting the process (or waiting out another template's
                # timeout) is not counted against this template.
                await asyncio.wait_for(loop.run_in_executor(pool, _ready), WARM_UP_TIMEOUT)
                future = loop.run_in_executor(pool, fn, *args)
                try:
                    return await asyncio.wait_for(future, self.timeout)
                except TimeoutError:
                    self._discard(pool, kill=True)
                    raise RenderTimeout(
                        f"took longer than {self.timeout:g}s to render (stopped)"
                    ) from None
            except BrokenProcessPool:
                # Another render's timeout killed the process under us: ours was innocent.
                self._discard(pool, kill=False)
            except TimeoutError:
                self._discard(pool, kill=True)
                raise RenderTimeout("the rendering process did not start; retry") from None
        raise RenderTimeout("the rendering process kept failing; retry")

    def _current_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_limit_memory,
                )
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor, *, kill: bool) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        if kill:
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


_runner = TemplateRunner()


def template_runner() -> TemplateRunner:
    """The process's runner (its rendering process is started on first use)."""
    return _runner


__all__ = ["SAMPLE_CONTEXT", "RenderTimeout", "TemplateRunner", "template_runner"]
