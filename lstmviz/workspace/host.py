"""Job bookkeeping shared by the workspace's requests (see ``JobHost``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lstmviz.workspace.events import Change
from lstmviz.workspace.jobs import Job


class JobHost:
    """The job bookkeeping of a ``Workspace``: one current job per kind, progress as
    ``BUSY`` events, stale results dropped (a mixin; it needs ``runner`` and ``_emit``)."""

    jobs: dict[str, Job]

    @property
    def busy(self) -> tuple[tuple[str, float], ...]:
        """``(label, progress)`` of every job still running."""
        return tuple((j.label, j.progress) for j in self.jobs.values())

    def submit(
        self,
        kind: str,
        label: str,
        work: Callable[[Job], Any],
        done: Callable[[Any, BaseException | None], None],
        cost: float = 0.0,
        wait: bool = False,
        expected: float | None = None,
    ) -> Job:
        """Run ``work`` on the runner (in this thread with ``wait``); ``done`` only if this
        job is still the current one of its kind when it finishes. ``expected``: seconds it
        should take, for an estimated progress (see ``Job.expected``)."""
        old = self.jobs.get(kind)
        if old is not None:
            old.cancel()

        def finish(result: Any, error: BaseException | None) -> None:
            if self.jobs.get(kind) is not job or job.cancelled:
                return  # superseded or cancelled: a stale result never reaches a view
            del self.jobs[kind]
            self._emit(Change.BUSY, self.busy)
            done(result, error)

        job = Job(kind, label, work, finish, cost=cost, on_progress=self._on_job_progress)
        job.expected = expected
        self.jobs[kind] = job
        self._emit(Change.BUSY, self.busy)
        if wait:
            job.done(*job.execute())
        else:
            self.runner.submit(job)
        return job

    def cancel(self, kind: str | None = None) -> None:
        """Cancel the running job of ``kind`` (every job with None); its result is dropped."""
        kinds = list(self.jobs) if kind is None else [kind]
        changed = False
        for k in kinds:
            job = self.jobs.pop(k, None)
            if job is not None:
                job.cancel()
                changed = True
        if changed:
            self._emit(Change.BUSY, self.busy)

    def _on_job_progress(self, job: Job) -> None:
        if self.jobs.get(job.kind) is job:
            self._emit(Change.BUSY, self.busy)
