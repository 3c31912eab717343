"""Warm trial workers: trials train in long-lived worker processes that the next sweep reuses.

Every reported epoch carries ``trained_by`` (the pid of the process that trained it) and Tune's
own ``pid`` (the trial actor's), both in Tune's result.json files, so these tests see where each
epoch was trained.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import psutil
import pytest

from dltoolkit.tune import release_workers, sweep
from dltoolkit.tune.workers import MIN_MEMORY, WORKERS_ENV, prune_workers, wanted, warm_workers


def _epochs(out: Path) -> list[dict]:
    rows = []
    for path in (out / "tune").glob("*/result.json"):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    assert rows, f"no results in {out}"
    return rows


def _pids(workers) -> set[int]:
    import ray

    return {pid for _, pid in ray.get([w.where.remote() for w in workers])}


def _asha(make_spec):
    """Six trials of four epochs, two at a time; ASHA stops some after one or two epochs."""
    return make_spec(
        space={
            "train.optimizer.lr": {"loguniform": [0.0005, 0.3]},
            "graph.nodes.hidden.units": {"choice": [4, 8]},
        },
        train={"epochs": 4},
        samples=6,
        scheduler="asha",
        grace_period=1,
        max_concurrent=2,
    )


def test_trials_train_on_warm_workers_that_the_next_sweep_reuses(ray_session, make_spec, tmp_path):
    spec = _asha(make_spec)
    first = sweep(spec, out=tmp_path / "a", workers=True)
    second = sweep(spec, out=tmp_path / "b", workers=True)
    pool = _pids(warm_workers(0))
    a, b = _epochs(tmp_path / "a"), _epochs(tmp_path / "b")
    # every epoch of both sweeps, stopped trials included, was trained by a pool worker: a trial
    # that ASHA stopped gave its worker back (otherwise later trials would have trained in place)
    assert {r["trained_by"] for r in a + b} <= pool
    assert any(r["epoch"] < 4 for r in a), "ASHA stopped no trial early: the test proves less"
    # ... and not by Tune's trial actors, which are new processes in each sweep
    actors_a, actors_b = {r["pid"] for r in a}, {r["pid"] for r in b}
    assert not (actors_a | actors_b) & pool
    assert not actors_a & actors_b

    # the seeded search drew the same trials (ASHA's stops depend on which result came first)
    def configs(s):
        return sorted(tuple(sorted(r.config.items())) for r in s.records())

    assert configs(first) == configs(second) and len(configs(first)) == 6


def test_warm_workers_and_training_in_place_report_the_same_epochs(ray_session, make_spec, tmp_path):
    spec = make_spec(
        space={"train.optimizer.lr": {"loguniform": [0.001, 0.1]}}, train={"epochs": 3}, samples=2
    )
    warm = sweep(spec, out=tmp_path / "warm", workers=True)
    cold = sweep(spec, out=tmp_path / "cold", workers=False)
    in_place = _epochs(tmp_path / "cold")
    assert all(r["trained_by"] == r["pid"] for r in in_place)
    assert all(r["trained_by"] != r["pid"] for r in _epochs(tmp_path / "warm"))

    def curves(s):
        return {
            round(rec.config["train.optimizer.lr"], 12): [(row["epoch"], row["val_loss"]) for row in rec.rows]
            for rec in s.records()
        }

    got, expected = curves(warm), curves(cold)
    assert got.keys() == expected.keys() and len(got) == 2
    for lr, rows in expected.items():
        assert [e for e, _ in got[lr]] == [e for e, _ in rows] == [1, 2, 3]
        assert [v for _, v in got[lr]] == pytest.approx([v for _, v in rows], rel=1e-6, abs=1e-9)


def test_a_dead_worker_is_passed_over_and_dropped_from_the_pool(ray_session, make_spec, tmp_path):
    import ray

    workers = warm_workers(2)
    dead = workers[0]
    ray.kill(dead)
    s = sweep(make_spec(samples=3, max_concurrent=2), out=tmp_path / "s", workers=True)
    assert set(s.trials()["status"]) == {"TERMINATED"}
    live = _pids(workers[1:])
    rows = _epochs(tmp_path / "s")
    assert all(r["trained_by"] in live or r["trained_by"] == r["pid"] for r in rows)
    assert any(r["trained_by"] in live for r in rows)
    assert dead._actor_id not in {w._actor_id for w in warm_workers(0)}  # the sweep's end pruned it
    assert prune_workers() == len(warm_workers(0))


def test_release_workers_ends_their_processes(ray_session):
    pids = _pids(warm_workers(2))
    assert release_workers() >= 2
    deadline = time.monotonic() + 60
    while any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids):
        assert time.monotonic() < deadline, f"warm workers {pids} still running after release_workers()"
        time.sleep(0.2)
    assert warm_workers(0) == []


def test_warm_workers_follow_the_memory_ray_has_unless_told(monkeypatch):
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    assert wanted(MIN_MEMORY) and not wanted(1.4 * 2**30)  # a 2 GB Binder pod: off
    monkeypatch.setenv(WORKERS_ENV, "1")
    assert wanted(0)
    monkeypatch.setenv(WORKERS_ENV, "off")
    assert not wanted(64 * 2**30)


def test_a_new_ray_session_starts_new_workers(ray_session):
    import ray

    old = warm_workers(1)[0]
    ray.shutdown()  # job ids restart in a new Ray: the pool must still see it is new
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    fresh = warm_workers(1)
    assert len(fresh) == 1 and fresh[0]._actor_id != old._actor_id
    assert ray.get(fresh[0].where.remote(), timeout=120)[1] > 0


def test_the_first_wave_of_trial_actors_all_train(ray_session, make_spec, tmp_path):
    # Tune gives a trial whose actor is still starting to an actor whose trial has just ended
    # (and ends the starting one); warm workers finish tiny trials long before a second trial
    # actor has started, so without the first wave waiting for it one actor took every trial
    assert len(_pids(warm_workers(2))) == 2  # warm: trials train at once
    s = sweep(
        make_spec(train={"epochs": 1}, samples=4, max_concurrent=2, grace_period=1),
        out=tmp_path / "s",
        workers=True,
    )
    assert set(s.trials()["status"]) == {"TERMINATED"}
    rows = _epochs(tmp_path / "s")
    by_actor: dict[int, set[str]] = {}
    for r in rows:
        by_actor.setdefault(r["pid"], set()).add(r["trial_id"])
    assert len(by_actor) == 2, f"trials by Tune's trial actor: {by_actor}"
    assert len({r["trained_by"] for r in rows}) == 2


def test_a_first_wave_trial_waits_for_the_other_actors_but_not_for_ever(ray_session, monkeypatch):
    import threading
    import uuid

    from dltoolkit.tune import trainable
    from dltoolkit.tune.trainable import TrialInputs, _arrive, _end_wave

    worker = warm_workers(1)[:1]
    monkeypatch.setattr(trainable, "WAVE_S", 120.0)
    wave = TrialInputs(None, worker, uuid.uuid4().hex, together=2)
    _arrive(wave)
    ending = threading.Thread(target=_end_wave, args=(wave,), daemon=True)
    ending.start()
    ending.join(1.0)
    assert ending.is_alive(), "the first trial of a wave of two ended before the second actor started"
    _arrive(wave)  # the second trial actor has started
    ending.join(60)
    assert not ending.is_alive()

    monkeypatch.setattr(trainable, "WAVE_S", 0.5)
    alone = TrialInputs(None, worker, uuid.uuid4().hex, together=2)
    _arrive(alone)
    lonely = threading.Thread(target=_end_wave, args=(alone,), daemon=True)
    lonely.start()
    lonely.join(60)  # the second actor never starts (no CPU for it): the trial ends after WAVE_S
    assert not lonely.is_alive()


def test_a_trial_that_outlives_its_lease_ends_in_an_error_naming_the_lease(
    ray_session, make_spec, monkeypatch
):
    """A relay that stops asking for epochs longer than the lease: the worker stops the training
    and the relay then gets a TrainingError that says how to raise the lease, not a normal end."""
    import ray

    from dltoolkit.api import check
    from dltoolkit.errors import TrainingError
    from dltoolkit.tune.workers import LEASE_ENV, WORKER_MEMORY, TrialWorker

    spec = make_spec(train={"epochs": 200})
    data = ray.put(check(spec).data)
    worker = TrialWorker.options(num_cpus=0, memory=WORKER_MEMORY).remote(1.0)  # a 1 s lease
    try:
        assert ray.get(worker.start.remote("t1", spec, [data], None), timeout=300)
        first = ray.get(worker.next.remote("t1"), timeout=120)
        assert first[0] == "epoch" and first[2] == 1
        time.sleep(4)  # the relay is silent for longer than the lease
        items = [ray.get(worker.next.remote("t1"), timeout=60)]
        while items[-1][0] == "epoch":
            items.append(ray.get(worker.next.remote("t1"), timeout=60))
        assert len(items) < 10, "the training went on after its lease ran out"
        kind, error = items[-1][:2]
        assert kind == "error" and isinstance(error, TrainingError), items[-1]
        assert "t1" in str(error) and "lease" in str(error) and f"{LEASE_ENV}=600" in str(error)
        # the worker is free again for another trial
        assert ray.get(worker.start.remote("t2", spec, [data], None), timeout=60)
        assert ray.get(worker.next.remote("t2"), timeout=120)[0] == "epoch"
        ray.get(worker.release.remote("t2"))
    finally:
        ray.kill(worker)
    monkeypatch.setenv(LEASE_ENV, "soon")
    from dltoolkit.errors import SpecError
    from dltoolkit.tune.workers import lease_seconds

    with pytest.raises(SpecError, match=LEASE_ENV):
        lease_seconds()
    monkeypatch.setenv(LEASE_ENV, "600")
    assert lease_seconds() == 600.0


def test_warm_workers_declare_their_memory_to_ray(ray_session):
    import ray

    from dltoolkit.tune.workers import WORKER_MEMORY

    release_workers()

    def free() -> float:
        return ray.available_resources().get("memory", 0.0)

    deadline = time.monotonic() + 60
    before = free()
    while free() != before or time.monotonic() < deadline - 57:  # let earlier releases settle
        before = free()
        time.sleep(0.5)
    assert before >= WORKER_MEMORY, "this Ray has too little memory for the test"
    _pids(warm_workers(1))  # started
    while before - free() < WORKER_MEMORY:
        assert time.monotonic() < deadline, f"a warm worker holds {before - free():.0f} bytes of Ray's memory"
        time.sleep(0.2)
    assert before - free() == pytest.approx(WORKER_MEMORY, rel=1e-6)
    release_workers()


def test_a_job_past_its_lease_keeps_the_lease_error_and_a_released_one_does_not():
    """The bookkeeping behind the Ray test above, without Ray: a stale job's next epoch is refused
    with the lease error kept for the relay; a job its relay released ends quietly."""
    from dltoolkit.errors import TrainingError
    from dltoolkit.tune.workers import LEASE_ENV, _Aborted, _Job

    job = _Job("t9", lease=0.2)
    job.put(("epoch", {}, 1, b""))  # within the lease
    time.sleep(0.4)
    with pytest.raises(_Aborted):
        job.put(("epoch", {}, 2, b""))
    assert isinstance(job.expired, TrainingError)
    assert "t9" in str(job.expired) and "0.2 s" in str(job.expired) and LEASE_ENV in str(job.expired)

    released = _Job("t10", lease=60)
    released.abort.set()
    with pytest.raises(_Aborted):
        released.put(("epoch", {}, 1, b""))
    assert released.expired is None
