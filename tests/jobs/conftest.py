import time

import pytest

from core import jobs
from core.jobs import Kind

TEST_KINDS = [
    Kind("t-echo", "tests.jobs.kinds:echo", title="echo"),
    Kind("t-loop", "tests.jobs.kinds:until_cancelled", title="loop", cancel_grace_s=30.0),
    Kind("t-stuck", "tests.jobs.kinds:stuck", title="stuck", cancel_grace_s=1.0),
    Kind("t-fail", "tests.jobs.kinds:fail", title="failing"),
    Kind("t-crash", "tests.jobs.kinds:crash", title="crashing"),
    Kind("t-input", "tests.jobs.kinds:read_input", title="input"),
    Kind("t-serial", "tests.jobs.kinds:timed", title="serial", serial=True),
    Kind("t-serial-loop", "tests.jobs.kinds:until_cancelled", title="serial loop", serial=True, cancel_grace_s=30.0),
    Kind("t-res", "tests.jobs.kinds:echo", title="resource", resource="key",
         waiting="waiting for {resource}"),
    Kind("t-resume", "tests.jobs.kinds:resumable", title="resumable", resumable=True,
         interrupted_hint="resume to finish."),
    Kind("t-keep", "tests.jobs.kinds:echo", title="kept", protect="tests.jobs.kinds:protected"),
]


@pytest.fixture(autouse=True)
def test_kinds(data_dir):
    for k in TEST_KINDS:
        jobs.register(k)
    yield
    for j in jobs.list_jobs(reconcile=False):          # no worker outlives its test
        if j.alive:
            try:
                jobs.cancel(j.id, grace_s=0, timeout=15)
            except Exception:  # noqa: BLE001
                pass
    for k in TEST_KINDS:
        jobs.unregister(k.name)


def wait_for(pred, timeout: float = 30.0, poll: float = 0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(poll)
    raise AssertionError("condition not reached in time")
