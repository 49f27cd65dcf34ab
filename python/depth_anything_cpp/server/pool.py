"""Models by name, an LRU cache of loaded models, and one bounded job queue per model.

Each model name gets one worker thread (a model serializes its own inference calls, so a
second thread per model would only wait). A job is queued with :meth:`ModelPool.submit`;
when ``queue_size`` jobs already wait, the request is refused (429 with Retry-After) instead
of piling up. The worker loads the model on first use (lazy), keeping at most
``max_models`` loaded and their files' bytes within ``max_model_bytes``: the least recently
used model that is not running is dropped first. On :meth:`close`, no new job is accepted
(503), queued jobs get ``shutdown_grace_s`` to run and the rest are failed with 503: no
request is dropped without an answer.
"""

from __future__ import annotations

import asyncio
import collections
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from .config import ServerConfig
from .errors import ApiError


@dataclass
class _Job:
    fn: Callable[[Any], Any]
    path: Path
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    cancelled: bool = False


@dataclass
class _Loaded:
    model: Any
    size: int
    busy: int = 0


@dataclass
class _Worker:
    name: str
    jobs: "queue.Queue[Optional[_Job]]"
    thread: Optional[threading.Thread] = None
    waiting: int = 0  # queued, not yet started
    lock: threading.Lock = field(default_factory=threading.Lock)


class ModelPool:
    """Named GGUF models in ``config.models_dir``, loaded lazily, run on worker threads.

    ``metrics`` (optional) is the app's :class:`~.metrics.Metrics`.
    """

    def __init__(self, config: ServerConfig, metrics: Any = None) -> None:
        self.config = config
        self.metrics = metrics
        self._lock = threading.Lock()  # guards _loaded, _workers, _closing
        self._loaded: "collections.OrderedDict[str, _Loaded]" = collections.OrderedDict()
        self._load_locks: dict[str, threading.Lock] = {}
        self._workers: dict[str, _Worker] = {}
        self._closing = False

    # ---------------------------------------------------------------- names
    def available(self) -> dict[str, Path]:
        """{name: path} of the ``*.gguf`` files in ``models_dir`` (re-read each call)."""
        try:
            files = sorted(p for p in self.config.models_dir.glob("*.gguf") if p.is_file())
        except OSError:
            return {}
        return {p.stem: p for p in files}

    def resolve(self, name: Optional[str]) -> tuple[str, Path]:
        """(name, path) for a requested model name; None picks the default.

        Raises:
            ApiError: 400 no name and no single default; 404 unknown name (lists the known ones).
        """
        models = self.available()
        if name is None:
            name = self.config.default_model
            if name is None:
                if len(models) != 1:
                    raise ApiError(400, "model_required",
                                   f"'model' is required: this server has {len(models)} models "
                                   f"({', '.join(models) or 'none'})")
                name = next(iter(models))
        if name not in models:
            raise ApiError(404, "model_not_found",
                           f"model {name!r} not found; available: {', '.join(models) or 'none'}")
        return name, models[name]

    def loaded(self) -> dict[str, Any]:
        """{name: DepthAnything3} currently in the cache (a snapshot)."""
        with self._lock:
            return {k: v.model for k, v in self._loaded.items()}

    def queue_depth(self, name: str) -> int:
        with self._lock:
            worker = self._workers.get(name)
        return 0 if worker is None else worker.waiting

    @property
    def closing(self) -> bool:
        return self._closing

    # ---------------------------------------------------------------- loading
    def _load_model(self, path: Path) -> Any:
        from ..api import DepthAnything3

        return DepthAnything3.from_file(path, n_threads=self.config.n_threads)

    def _acquire(self, name: str, path: Path) -> _Loaded:
        """The loaded model ``name`` (loading it, evicting LRU idle models), marked busy."""
        with self._lock:
            entry = self._loaded.get(name)
            if entry is not None:
                self._loaded.move_to_end(name)
                entry.busy += 1
                return entry
            load_lock = self._load_locks.setdefault(name, threading.Lock())
        with load_lock:
            with self._lock:
                entry = self._loaded.get(name)
                if entry is not None:
                    entry.busy += 1
                    return entry
            size = path.stat().st_size
            if size > self.config.max_model_bytes:
                raise ApiError(507, "model_too_large",
                               f"model {name!r} ({size} bytes) exceeds the cache limit of "
                               f"{self.config.max_model_bytes} bytes")
            self._evict_for(size)
            start = time.perf_counter()
            try:
                model = self._load_model(path)
            except Exception as exc:
                if self.metrics is not None:
                    self.metrics.model_loads.labels(name, "error").inc()
                raise ApiError(500, "model_load_failed", f"model {name!r} failed to load: {exc}") from exc
            if self.metrics is not None:
                self.metrics.model_loads.labels(name, "ok").inc()
                self.metrics.model_load_seconds.labels(name).observe(time.perf_counter() - start)
            with self._lock:
                entry = self._loaded[name] = _Loaded(model, size, busy=1)
                self._update_loaded_metric()
            return entry

    def _evict_for(self, size: int) -> None:
        with self._lock:
            def over() -> bool:
                total = sum(e.size for e in self._loaded.values())
                return len(self._loaded) + 1 > self.config.max_models or total + size > self.config.max_model_bytes

            for victim in [k for k, e in self._loaded.items() if e.busy == 0]:  # LRU order
                if not over():
                    break
                del self._loaded[victim]
            self._update_loaded_metric()
            # models still running stay until released: the bound is then exceeded briefly

    def _release(self, name: str, entry: _Loaded) -> None:
        with self._lock:
            entry.busy -= 1

    def _update_loaded_metric(self) -> None:
        if self.metrics is not None:
            self.metrics.models_loaded.set(len(self._loaded))

    # ---------------------------------------------------------------- jobs
    def _worker(self, name: str) -> _Worker:
        with self._lock:
            if self._closing:
                raise ApiError(503, "shutting_down", "the server is shutting down",
                               {"Retry-After": str(self.config.retry_after_s)})
            worker = self._workers.get(name)
            if worker is None:
                worker = _Worker(name, queue.Queue())
                worker.thread = threading.Thread(target=self._run, args=(worker,),
                                                 name=f"da3-model-{name}", daemon=True)
                self._workers[name] = worker
                worker.thread.start()
            return worker

    def _set_depth(self, worker: _Worker) -> None:
        if self.metrics is not None:
            self.metrics.queue_depth.labels(worker.name).set(worker.waiting)

    async def submit(self, name: str, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(model)`` on the worker thread of model ``name``; return its result.

        Raises:
            ApiError: 429 ``queue_full`` (with Retry-After), 503 ``shutting_down``, 408
                ``timeout`` after ``request_timeout_s``, model errors (see ``_acquire``);
                whatever ``fn`` raises.
        """
        _, path = self.resolve(name)
        worker = self._worker(name)
        loop = asyncio.get_running_loop()
        job = _Job(fn, path, loop, loop.create_future())
        with worker.lock:
            if worker.waiting >= self.config.queue_size:
                raise ApiError(429, "queue_full",
                               f"model {name!r}: {worker.waiting} requests already queued (limit "
                               f"{self.config.queue_size}); retry later",
                               {"Retry-After": str(self.config.retry_after_s)})
            worker.waiting += 1
            self._set_depth(worker)
        worker.jobs.put(job)
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), self.config.request_timeout_s)
        except asyncio.TimeoutError:
            job.cancelled = True
            raise ApiError(408, "timeout", f"model {name!r}: no result within "
                           f"{self.config.request_timeout_s:g} s (request_timeout_s)") from None
        except asyncio.CancelledError:  # client gone: do not run it if not started
            job.cancelled = True
            raise

    def _run(self, worker: _Worker) -> None:
        while True:
            job = worker.jobs.get()
            if job is None:
                return
            with worker.lock:
                worker.waiting -= 1
                self._set_depth(worker)
            if job.cancelled:
                continue
            try:
                entry = self._acquire(worker.name, job.path)
                try:
                    result: Any = job.fn(entry.model)
                    error: Optional[BaseException] = None
                finally:
                    self._release(worker.name, entry)
            except BaseException as exc:  # handed to the request, never lost
                result, error = None, exc
            _resolve(job, result, error)

    def _fail_pending(self, worker: _Worker) -> None:
        while True:
            try:
                job = worker.jobs.get_nowait()
            except queue.Empty:
                return
            if job is None:
                continue
            with worker.lock:
                worker.waiting -= 1
                self._set_depth(worker)
            _resolve(job, None, ApiError(503, "shutting_down", "the server shut down before this "
                                         "request ran", {"Retry-After": str(self.config.retry_after_s)}))

    def close(self, grace_s: Optional[float] = None) -> None:
        """Refuse new jobs, let queued ones run for ``grace_s`` (default
        ``config.shutdown_grace_s``), fail the rest with 503, stop the threads."""
        grace = self.config.shutdown_grace_s if grace_s is None else grace_s
        with self._lock:
            self._closing = True
            workers = list(self._workers.values())
        deadline = time.monotonic() + grace
        for worker in workers:
            while worker.waiting > 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            self._fail_pending(worker)
            worker.jobs.put(None)
        for worker in workers:
            if worker.thread is not None:
                worker.thread.join(max(0.0, deadline - time.monotonic()) + 5.0)
        with self._lock:
            self._loaded.clear()


def _resolve(job: _Job, result: Any, error: Optional[BaseException]) -> None:
    def apply() -> None:
        if job.future.done():
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)

    try:
        job.loop.call_soon_threadsafe(apply)
    except RuntimeError:  # loop closed: the request is already gone
        pass
