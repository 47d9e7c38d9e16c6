"""``JobdeckWorker``: one arq worker for one jobdeck queue, publishing each job's lifecycle.

arq does the queue work (claiming, in-progress keys, results, aborts, retries on
``Retry``). This subclass adds what arq lacks, each in the method arq already has for it:

- ``jobdeck.run`` is the only arq function; it dispatches on the envelope's task name,
  publishes events, enforces the job timeout, and turns failures into retries with backoff;
- ``finish_job`` / ``finish_failed_job`` write the job's last events in arq's own
  transaction (see ``connection.FINISH_HOOK``);
- ``main`` sleeps until woken (enqueue, a freed slot, resume, abort) instead of polling;
- ``_poll_iteration`` first re-scores the jobs that just came due with their priority
  (``_READ``), so a delayed job or a retry competes by priority once due;
- ``start_jobs`` claims a whole read of the queue in one script call, so every wake-up
  re-reads the queue in priority order instead of working through a stale list;
- ``in_progress_timeout_s`` is a short lease renewed while a job runs (``refresh_leases``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import Any

from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.jobs import DeserializationError, deserialize_result, serialize_job
from arq.utils import timestamp_ms, to_unix_ms
from arq.worker import Retry, Worker, func
from jobdeck.events import Event, EventType, encode, now_ms
from jobdeck.queues import (
    PRIORITY_WEIGHT_MS,
    RUN_FUNCTION,
    abort_by_key,
    priority_key,
    queue_key,
    wake_channel,
)
from jobdeck.streams import EVENT_FIELD, EVENTS
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobdeck_worker import lifecycle
from jobdeck_worker.buffer import EventBuffer
from jobdeck_worker.connection import FINISH_HOOK, JobdeckRedis
from jobdeck_worker.context import JobContext
from jobdeck_worker.envelope import Envelope
from jobdeck_worker.errors import (
    AttemptsExhausted,
    JobTimeout,
    MalformedJob,
    NonRetryableError,
    UnknownTask,
)
from jobdeck_worker.lifecycle import JobRun
from jobdeck_worker.metrics import QueueMetrics
from jobdeck_worker.options import WorkerOptions
from jobdeck_worker.policy import (
    attempt_number,
    attempts_exhausted,
    decide_retry,
    effective_timeout_s,
)
from jobdeck_worker.registry import TaskRegistry

log = logging.getLogger(__name__)

# Our policy decides how often a job runs; arq must never refuse a run on its own count.
ARQ_MAX_TRIES = 2**31 - 1
# arq's own job timeout stays above ours so that a timeout is an ordinary (retryable) failure.
ARQ_TIMEOUT_MARGIN_S = 5.0
FINISH_RETRY_DELAYS_S = (0.1, 0.5, 1.0, 2.0, 4.0)
# Back-off of the queue loop while Redis is unreachable.
REDIS_RETRY_MIN_S, REDIS_RETRY_MAX_S = 0.1, 2.0

# Entries of the priority hash looked at per read of the queue (the scan resumes next read).
PROMOTE_BUDGET = 512

# KEYS: queue, priority hash; ARGV: now ms, read offset, read count, weight ms, budget, cursor,
#       in-progress key prefix.
# Re-scores the due jobs of the priority hash "due - priority * weight" (FIFO by due time
# within a priority) and drops their entries, then reads the queue as arq does.
# A score <= now - weight is already a priority score (a ready job's): never lowered twice.
# A running job is left alone (arq adds a retry's delay to the score it claimed it at); its
# entry goes when the job is gone, or applies if it went back to the queue unchanged.
# Returns [next hash cursor, ids].
_READ = """
local now, weight = tonumber(ARGV[1]), tonumber(ARGV[4])
local cursor, budget = ARGV[6], tonumber(ARGV[5])
if redis.call('EXISTS', KEYS[2]) == 0 then
  cursor = '0'
else
  repeat
    local page = redis.call('HSCAN', KEYS[2], cursor, 'COUNT', 128)
    cursor = page[1]
    local entries = page[2]
    for i = 1, #entries, 2 do
      local id, prio = entries[i], tonumber(entries[i + 1]) or 0
      local score = redis.call('ZSCORE', KEYS[1], id)
      if not score then
        redis.call('HDEL', KEYS[2], id)
      else
        score = tonumber(score)
        if score <= now and redis.call('EXISTS', ARGV[7] .. id) == 0 then
          if score > now - weight and prio > 0 then
            local promoted = string.format('%.0f', score - prio * weight)
            redis.call('ZADD', KEYS[1], 'XX', promoted, id)
          end
          redis.call('HDEL', KEYS[2], id)
        end
      end
    end
    budget = budget - #entries / 2
  until cursor == '0' or budget <= 0
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', ARGV[2], ARGV[3])
return {cursor, ids}
"""

# KEYS: queue, in-progress key of each candidate; ARGV: now ms, lease ms, max claims, ids.
# Returns [id, score, id, score, ...] of the jobs claimed (in the candidates' order).
_CLAIM = """
local claimed, limit, now = {}, tonumber(ARGV[3]), tonumber(ARGV[1])
for i = 2, #KEYS do
  if #claimed >= 2 * limit then break end
  local id = ARGV[i + 2]
  if redis.call('EXISTS', KEYS[i]) == 0 then
    local score = redis.call('ZSCORE', KEYS[1], id)
    if score and tonumber(score) <= now then
      redis.call('PSETEX', KEYS[i], ARGV[2], '1')
      claimed[#claimed + 1] = id
      claimed[#claimed + 1] = score
    end
  end
end
return claimed
"""


# KEYS: in-progress key, job key, result key; ARGV: lease ms.
_RENEW = """
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('EXISTS', KEYS[2], KEYS[3]) > 0 then return 0 end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
return 2
"""


def _synthetic(exc: Exception) -> dict[str, Any]:
    """Error fields for a failure the runtime decided, where a traceback would only confuse."""
    return {"error_type": type(exc).__name__, "error_message": str(exc), "traceback": None}


class JobdeckWorker(Worker):
    def __init__(
        self,
        *,
        queue: str,
        concurrency: int,
        registry: TaskRegistry,
        redis: JobdeckRedis,
        events: EventBuffer,
        instance: str,
        options: WorkerOptions,
    ) -> None:
        super().__init__(
            functions=[func(self._run, name=RUN_FUNCTION)],
            queue_name=queue_key(queue),
            redis_pool=redis,
            handle_signals=False,
            max_jobs=concurrency,
            job_timeout=options.max_timeout_s + ARQ_TIMEOUT_MARGIN_S,
            keep_result=options.keep_result_s,
            poll_delay=options.fallback_poll_s,
            max_tries=ARQ_MAX_TRIES,
            allow_abort_jobs=True,
            log_results=False,
        )
        self.in_progress_timeout_s = options.lease_s
        self.queue = queue
        self.registry = registry
        self.events = events
        self.instance = instance
        self.options = options
        self.metrics = QueueMetrics(queue)
        self.paused = False
        self.stopping = False
        self._wake = asyncio.Event()
        self._backlog = False
        self._abort_requested = False
        self._last_abort_check = 0.0
        self._runs: dict[str, JobRun] = {}
        self._envelopes: dict[str, tuple[Envelope, int]] = {}
        self._outcomes: dict[str, Event] = {}
        self._claim = redis.register_script(_CLAIM)
        self._read = redis.register_script(_READ)
        self._priority_key = priority_key(queue)
        self._promote_cursor = "0"
        self._finishing: set[asyncio.Task[Any]] = set()

    # -- control -----------------------------------------------------------------------

    def wake(self) -> None:
        """Look at the queue now (a job was enqueued, resumed or handed back)."""
        self._wake.set()

    def set_paused(self, paused: bool) -> None:
        if paused == self.paused:
            return
        log.info("queue paused" if paused else "queue resumed", extra={"queue": self.queue})
        self.paused = paused
        self.metrics.paused.set(1 if paused else 0)
        self._update_picking()
        if not paused:
            self.wake()

    def request_abort_check(self) -> None:
        self._abort_requested = True
        self._wake.set()

    def stop_picking(self) -> None:
        """First step of a graceful stop: take no new jobs; running ones carry on."""
        self.stopping = True
        self._update_picking()
        self._wake.set()

    def _update_picking(self) -> None:
        self.allow_pick_jobs = not (self.paused or self.stopping)

    @property
    def running(self) -> int:
        return len(self.job_tasks)

    # -- arq loop --------------------------------------------------------------------

    async def main(self) -> None:
        """arq's loop, woken by events instead of sleeping ``poll_delay`` between reads.

        Redis being unreachable (or restarting) is not fatal: the loop backs off and reads
        again; running jobs carry on meanwhile. A wake-up (e.g. the control channel
        reconnected) cuts the back-off short.
        """
        self.ctx["redis"] = self.pool
        retry_s = REDIS_RETRY_MIN_S
        while not self.stopping:
            self._wake.clear()
            try:
                await self._poll_iteration()
                if self._wake.is_set() or self.stopping:
                    continue
                timeout = await self._idle_wait_s()
                retry_s = REDIS_RETRY_MIN_S
            except (RedisError, OSError) as exc:
                log.warning(
                    "queue read failed; retrying",
                    extra={"queue": self.queue, "error": repr(exc), "retry_s": retry_s},
                )
                timeout, retry_s = retry_s, min(retry_s * 2, REDIS_RETRY_MAX_S)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def _idle_wait_s(self) -> float:
        """How long to sleep: until the next delayed job is due, at most the fallback poll."""
        fallback = self.options.fallback_poll_s
        if not self.allow_pick_jobs or self.job_counter >= self.max_jobs:
            return fallback
        now = timestamp_ms()
        upcoming = await self.pool.zrangebyscore(
            self.queue_name, min=f"({now}", max="+inf", start=0, num=1, withscores=True
        )
        if not upcoming:
            return fallback
        return min(fallback, max((float(upcoming[0][1]) - now) / 1000, 0.001))

    async def _poll_iteration(self) -> None:
        """arq's iteration, reading the queue through ``_READ`` (due jobs get their priority).

        Same steps as arq's (no burst mode here): read and start, aborts, reap, heartbeat.
        """
        if self.allow_pick_jobs and self.job_counter < self.max_jobs:
            cursor, job_ids = await self._read(
                keys=[self.queue_name, self._priority_key],
                args=[
                    timestamp_ms(),
                    self._queue_read_offset,
                    self.queue_read_limit,
                    PRIORITY_WEIGHT_MS,
                    PROMOTE_BUDGET,
                    self._promote_cursor,
                    in_progress_key_prefix,
                ],
            )
            self._promote_cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
            await self.start_jobs(job_ids)
        if self.allow_abort_jobs:
            await self._cancel_aborted_jobs()
        for job_id, t in list(self.tasks.items()):
            if t.done():
                del self.tasks[job_id]
                t.result()  # errors in run_job propagate, as in arq
        await self.heart_beat()

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """Claim up to the free slots among ``job_ids`` in one script call, then run them.

        arq claims each id with WATCH, EXISTS, ZSCORE and MULTI/PSETEX/EXEC: four round
        trips per job, most of a no-op job's cost. ``_CLAIM`` makes the same checks (not in
        progress anywhere, still queued, due) and sets the same in-progress key, atomically,
        for a whole batch. The claimed jobs then run through arq's own ``run_job``.
        """
        free = self.max_jobs - self.job_counter
        self._backlog = free <= 0 and bool(job_ids)
        if free <= 0 or not self.allow_pick_jobs:
            return
        running = self.tasks
        candidates = []
        for raw in job_ids:
            job_id = raw.decode()
            task = running.get(job_id)
            if task is None or task.done():  # the head of the queue is our own running jobs
                candidates.append(job_id)
        if not candidates:
            return
        claimed = await self._claim(
            keys=[self.queue_name, *(in_progress_key_prefix + j for j in candidates)],
            args=[timestamp_ms(), int(self.in_progress_timeout_s * 1000), free, *candidates],
        )
        # every free slot taken and more candidates: a freed slot should look again at once
        self._backlog = len(claimed) // 2 == free and len(candidates) > free
        for i in range(0, len(claimed), 2):
            job_id, score = claimed[i].decode(), int(float(claimed[i + 1]))
            await self.sem.acquire()  # never waits: at most ``free`` jobs were claimed
            self.job_counter += 1
            task = self.loop.create_task(self.run_job(job_id, score))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task

    def _release_sem_dec_counter_on_complete(self) -> None:
        """A job ended: read the queue again if the last read left claimable jobs behind."""
        was_full = self.job_counter >= self.max_jobs
        super()._release_sem_dec_counter_on_complete()
        if was_full or self._backlog:
            self._wake.set()

    async def _cancel_aborted_jobs(self) -> None:
        """Read arq's abort set when told to (``abort:<queue>``), else about once a poll period."""
        loop_now = asyncio.get_running_loop().time()
        due = loop_now - self._last_abort_check >= self.options.fallback_poll_s
        if not self._abort_requested and not (due and self.job_tasks):
            return
        self._abort_requested = False
        self._last_abort_check = loop_now
        await super()._cancel_aborted_jobs()

    def refresh_leases(self, pipe: Pipeline) -> None:
        """Renew the in-progress key of every job of ours, re-creating it if Redis lost it.

        A Redis restarted without persistence has lost the keys of jobs still running here:
        setting them again says "this job is alive" to other workers and to the recorder's
        janitor, which would otherwise fail the job as lost. ``_RENEW`` leaves alone a job
        that finished meanwhile (its result is kept) or went back to the queue (its job key
        is there again), so a renewal racing a finish never resurrects a stale key.
        """
        lease_ms = int(self.in_progress_timeout_s * 1000)
        for job_id in self.tasks:
            keys = [
                in_progress_key_prefix + job_id,
                job_key_prefix + job_id,
                result_key_prefix + job_id,
            ]
            pipe.eval(_RENEW, len(keys), *keys, str(lease_ms))  # tiny: no script cache to lose

    # -- running a job ---------------------------------------------------------------

    async def _run(self, ctx: dict[str, Any], envelope: Any = None, *_: Any, **__: Any) -> Any:
        """The arq function ``jobdeck.run``: one attempt of one job, start to final event."""
        job_id: str = ctx["job_id"]
        started_at = now_ms()
        try:
            env = Envelope.parse(envelope)
        except MalformedJob as exc:
            run = JobRun(job_id, self.queue, None, max(ctx["job_try"], 1), 1, started_at)
            self._runs[job_id] = run
            self._outcomes[job_id] = lifecycle.failed(run, _synthetic(exc))
            raise
        attempt = attempt_number(env.attempt_offset, ctx["job_try"])
        run = JobRun(job_id, self.queue, env.name, attempt, env.max_attempts, started_at)
        self._runs[job_id] = run
        self._envelopes[job_id] = (env, to_unix_ms(ctx["enqueue_time"]))
        task = self.registry.get(env.name, self.queue)
        refusal: Exception | None = None
        if attempts_exhausted(attempt, env.max_attempts):
            refusal = AttemptsExhausted()
        elif task is None:
            refusal = UnknownTask(f"no task named {env.name!r} on queue {self.queue!r}")
        if refusal is not None:
            self._outcomes[job_id] = lifecycle.failed(run, _synthetic(refusal))
            raise refusal
        assert task is not None
        self.events.emit(job_id, lifecycle.started(run, self.instance))
        self.metrics.started.inc()
        self.metrics.running.inc()
        timeout_s = effective_timeout_s(env.timeout_s, self.options.max_timeout_s)
        try:
            async with asyncio.timeout(timeout_s) as deadline:
                result = await task(JobContext(run, env.data, self.events))
        except asyncio.CancelledError:
            if job_id in self.aborting_tasks:
                self._outcomes[job_id] = lifecycle.cancelled(run)
            else:
                self._outcomes[job_id] = lifecycle.handed_back(run)
            raise
        except Exception as exc:
            error = exc
            if deadline.expired() and isinstance(exc, TimeoutError):
                error = JobTimeout(f"job timed out after {timeout_s:g}s")
                error.__cause__, error.__traceback__ = exc, exc.__traceback__
            outcome = self._outcomes[job_id] = self._failure(run, env, error)
            if outcome.type is EventType.RETRYING:
                delay_ms = outcome.fields["retry_at"] - outcome.ts
                raise Retry(defer=timedelta(milliseconds=delay_ms)) from error
            if error is exc:
                raise
            raise error from exc
        finally:
            self.metrics.running.dec()
        self._outcomes[job_id] = lifecycle.completed(run, result)
        return result

    def _failure(self, run: JobRun, env: Envelope, exc: Exception) -> Event:
        error = lifecycle.error_fields(exc)
        decision = decide_retry(
            run.attempt,
            env.max_attempts,
            env.backoff_ms,
            permanent=isinstance(exc, NonRetryableError),
            cap_ms=self.options.backoff_cap_ms,
            jitter=self.options.backoff_jitter,
            rand=random.random(),
        )
        finished_at = now_ms()
        if decision.retry:
            return lifecycle.retrying(run, error, finished_at + decision.delay_ms, finished_at)
        return lifecycle.failed(run, error, finished_at)

    # -- finishing: the final event rides in arq's transaction ------------------------

    async def finish_job(
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None:
        final = self._final_event(job_id, finish)
        rewrite: bytes | None = None
        envelope = self._envelopes.pop(job_id, None)
        deferred_priority = 0
        if (
            envelope is not None
            and final is not None
            and final.type is EventType.RETRYING
            and not lifecycle.is_hand_back(final)
            and final.fields["retry_at"] > final.ts
        ):
            # arq re-scores a deferred retry by its due time: keep its priority for then.
            deferred_priority = envelope[0].priority
        if envelope is not None and final is not None and lifecycle.is_hand_back(final):
            # A hand-back is not the job's fault: give the next run the attempt it used up.
            env, enqueued_ms = envelope
            rewrite = serialize_job(
                RUN_FUNCTION, (env.with_extra_attempt().to_dict(),), {}, None, enqueued_ms
            )
        await self._in_finish_transaction(
            job_id,
            final,
            partial(
                super().finish_job,
                job_id,
                finish,
                result_data,
                result_timeout_s,
                keep_result_forever,
                incr_score,
                keep_in_progress,
            ),
            rewrite,
            deferred_priority,
        )

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        """arq gave up before ``jobdeck.run`` ran (aborted before start, expired, unreadable)."""
        self._runs.pop(job_id, None)
        self._outcomes.pop(job_id, None)
        final = self._arq_failure_event(job_id, result_data)
        self._envelopes.pop(job_id, None)
        await self._in_finish_transaction(
            job_id, final, partial(super().finish_failed_job, job_id, result_data), None
        )

    def _final_event(self, job_id: str, finish: bool) -> Event | None:
        outcome = self._outcomes.pop(job_id, None)
        run = self._runs.pop(job_id, None)
        if run is None:
            return outcome
        if outcome is None:
            outcome = lifecycle.handed_back(run)
        if finish and outcome.type is EventType.RETRYING:
            # arq ended the job itself (its own timeout) although we expected another run.
            error = {
                "error_type": JobTimeout.__name__,
                "error_message": "job exceeded the worker's maximum run time",
                "traceback": None,
            }
            outcome = lifecycle.failed(run, error)
        return outcome

    def _arq_failure_event(self, job_id: str, result_data: bytes | None) -> Event:
        result = None
        if result_data is not None:
            with contextlib.suppress(DeserializationError):
                result = deserialize_result(result_data, deserializer=self.job_deserializer)
        raw = result.args[0] if result is not None and result.args else None
        env = raw if isinstance(raw, dict) else {}
        offset = env.get("attempt_offset")
        max_attempts = env.get("max_attempts")
        name = env.get("name")
        run = JobRun(
            job_id=job_id,
            queue=self.queue,
            name=name if isinstance(name, str) else None,
            attempt=attempt_number(
                offset if isinstance(offset, int) else 0, result.job_try if result else 1
            ),
            max_attempts=max_attempts if isinstance(max_attempts, int) else 1,
            started_at=None,
        )
        error = result.result if result is not None else None
        if isinstance(error, asyncio.CancelledError):
            return lifecycle.cancelled(run)
        if isinstance(error, Exception):
            return lifecycle.failed(run, _synthetic(error))
        return lifecycle.failed(
            run,
            {
                "error_type": "JobExecutionFailed",
                "error_message": "the job could not be read",
                "traceback": None,
            },
        )

    async def _in_finish_transaction(
        self,
        job_id: str,
        final: Event | None,
        finish: Callable[[], Awaitable[None]],
        rewritten_job: bytes | None,
        deferred_priority: int = 0,
    ) -> None:
        """Run arq's finish with the job's buffered events and ``final`` in its transaction."""
        current = asyncio.current_task()
        if current is not None:  # arq shields this task: ``close`` must wait for it
            self._finishing.add(current)
            current.add_done_callback(self._finishing.discard)
        raws = await self.events.take(job_id)
        cancelled = final is not None and final.type is EventType.CANCELLED
        if final is not None and cancelled:
            final = await self._with_cancelled_by(final)
        if final is not None:
            raws.append(encode(final))
        maxlen = self.events.stream_maxlen

        runs_again = final is not None and final.type is EventType.RETRYING

        def add_events(pipe: Pipeline) -> None:
            for raw in raws:
                pipe.xadd(EVENTS, {EVENT_FIELD: raw}, maxlen=maxlen, approximate=True)
            if rewritten_job is not None:
                pipe.set(job_key_prefix + job_id, rewritten_job, keepttl=True)
            if deferred_priority > 0:
                pipe.hset(self._priority_key, job_id, str(deferred_priority))
            if runs_again:  # idle workers of the queue look again (at once, or when it is due)
                pipe.publish(wake_channel(self.queue), b"1")
            if cancelled:  # the cancel request is answered: its requester's name goes too
                pipe.delete(abort_by_key(job_id))

        token = FINISH_HOOK.set(add_events)
        try:
            for delay in (*FINISH_RETRY_DELAYS_S, None):
                try:
                    await finish()
                    break
                except (RedisConnectionError, RedisTimeoutError) as exc:
                    if delay is None:
                        raise
                    log.warning(
                        "could not finish job; retrying",
                        extra={"job_id": job_id, "queue": self.queue, "error": repr(exc)},
                    )
                    await asyncio.sleep(delay)
        finally:
            FINISH_HOOK.reset(token)
        if final is not None:
            self.metrics.finished(final.type, final.fields.get("duration_ms"))

    async def _with_cancelled_by(self, final: Event) -> Event:
        """``final`` naming who cancelled the job (``QueueClient.cancel`` left it in Redis).

        Read before arq's transaction (a value read inside MULTI comes too late to write);
        deleted inside it. Without the name the event still goes out, with ``by`` null.
        """
        if final.fields.get("by") is not None or final.job_id is None:
            return final
        try:
            raw = await self.pool.get(abort_by_key(final.job_id))
        except RedisError as exc:
            log.warning(
                "could not read who cancelled a job",
                extra={"job_id": final.job_id, "queue": self.queue, "error": repr(exc)},
            )
            return final
        if raw is None:
            return final
        by = raw.decode() if isinstance(raw, bytes) else str(raw)
        return dataclasses.replace(final, fields={**final.fields, "by": by})

    # -- stopping --------------------------------------------------------------------

    async def close(self) -> None:
        """Hand back what still runs and stop; unlike arq's, leaves the shared pool open."""
        self.stop_picking()
        for task in self.tasks.values():
            if not task.done():
                task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        # a cancelled run_job leaves its shielded finish running: let it write the outcome
        await asyncio.gather(*self._finishing, return_exceptions=True)
        if self.main_task is not None:
            if not self.main_task.done():
                self.main_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.main_task
