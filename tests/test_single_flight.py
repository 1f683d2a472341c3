"""SingleFlight: callers share one task; one caller's cancellation is not the others'."""

from __future__ import annotations

import asyncio
import gc

import pytest

from mcp_bridge.auth.single_flight import SingleFlight


async def test_callers_while_it_runs_share_one_task_and_a_later_caller_starts_another() -> None:
    flight: SingleFlight[int] = SingleFlight()
    started = 0
    release = asyncio.Event()

    async def job() -> int:
        nonlocal started
        started += 1
        await release.wait()
        return started

    first, second = flight.join(job), flight.join(job)
    assert first is second
    assert flight.is_running
    release.set()
    assert [await asyncio.shield(first), await asyncio.shield(second)] == [1, 1]
    assert not flight.is_running
    assert await flight.join(job) == 2


async def test_a_cancelled_caller_does_not_cancel_the_job_for_the_others() -> None:
    flight: SingleFlight[str] = SingleFlight()
    release = asyncio.Event()

    async def job() -> str:
        await release.wait()
        return "done"

    async def caller() -> str:
        return await asyncio.shield(flight.join(job))

    impatient = asyncio.create_task(caller())
    patient = asyncio.create_task(caller())
    await asyncio.sleep(0)  # both are now awaiting the one task
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    release.set()
    assert await patient == "done"


async def test_cancel_ends_the_running_task_and_an_idle_cancel_is_harmless() -> None:
    flight: SingleFlight[None] = SingleFlight()
    await flight.cancel()

    async def forever() -> None:
        await asyncio.Event().wait()

    task = flight.join(forever)
    await asyncio.sleep(0)
    await flight.cancel()
    assert task.cancelled()
    assert not flight.is_running


async def test_an_error_nobody_awaits_is_retrieved(caplog: pytest.LogCaptureFixture) -> None:
    flight: SingleFlight[None] = SingleFlight()

    async def fails() -> None:
        raise RuntimeError("refused")

    await asyncio.wait([flight.join(fails)])
    del flight  # the last reference to the task: asyncio checks it when it is collected
    gc.collect()
    assert "never retrieved" not in caplog.text
