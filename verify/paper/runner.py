"""The task runner of the paper experiments: independent seeded tasks, stored as they finish.

A task is a plain dict ``{"experiment": name, ...parameters, "seed": s}``; its key is its
canonical JSON. ``execute(fn, tasks, store)`` runs ``fn(task)`` for every task the store
does not hold yet, in local processes (``workers``, a tqdm progress bar) or on an existing
Dask cluster (``scheduler`` = its address, through ``dask.distributed``), and appends each
finished task's rows to ``<out>/<experiment>.csv`` and its curves to ``<out>/curves.csv``
the moment it finishes. An interrupted sweep rerun on the same folder skips the tasks whose
rows are stored. ``fn`` returns ``{"rows": [dict, ...], "curves": [dict, ...]}``; every row
and curve point is stamped with the task's key (rows also with the task's scalar parameters).
"""

from __future__ import annotations

import csv
import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context

CURVES = "curves.csv"
CURVE_COLUMNS = ("task", "experiment", "series", "x", "y")


def task_key(task: dict) -> str:
    return json.dumps(task, sort_keys=True, separators=(",", ":"))


class Store:
    """CSV files in ``out``: one per experiment (rows) and ``curves.csv`` (long format)."""

    def __init__(self, out: str):
        self.out = out
        os.makedirs(out, exist_ok=True)

    def path(self, experiment: str) -> str:
        return os.path.join(self.out, f"{experiment}.csv")

    def done(self, experiments) -> set[str]:
        """Keys of the tasks whose rows are stored."""
        return {r["task"] for e in experiments for r in self.rows(e)}

    def rows(self, experiment: str) -> list[dict]:
        path = self.path(experiment)
        if not os.path.exists(path):
            return []
        with open(path, newline="") as fh:
            return [_parse(r) for r in csv.DictReader(fh)]

    def curves(self) -> list[dict]:
        """Stored curve points of finished tasks (points of a task cut before its rows were
        written are left out)."""
        path = os.path.join(self.out, CURVES)
        if not os.path.exists(path):
            return []
        with open(path, newline="") as fh:
            pts = [_parse(r) for r in csv.DictReader(fh)]
        done = self.done({p["experiment"] for p in pts})
        return [p for p in pts if p["task"] in done]

    def add(self, task: dict, result: dict) -> None:
        """Append a finished task: curves first, rows last (the rows mark it done)."""
        key = task_key(task)
        _append(os.path.join(self.out, CURVES), CURVE_COLUMNS,
                [dict(c, task=key, experiment=task["experiment"]) for c in result.get("curves", [])])
        params = {k: v for k, v in task.items() if not isinstance(v, (list, tuple, dict))}
        rows = [{"task": key, **params, **r} for r in result["rows"]]
        _append(self.path(task["experiment"]), tuple(rows[0]), rows)


def _append(path, columns, rows):
    if not rows:
        return
    new = not os.path.exists(path)
    if not new:
        with open(path, newline="") as fh:
            columns = next(csv.reader(fh))
    with open(path, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="raise")
        if new:
            w.writeheader()
        w.writerows(rows)
        fh.flush()
        os.fsync(fh.fileno())


def _parse(row: dict) -> dict:
    """CSV strings back to numbers where they are numbers (empty stays empty)."""
    out = {}
    for k, v in row.items():
        try:
            out[k] = int(v)
        except ValueError:
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


def execute(fn, tasks, store: Store, workers: int = 2, scheduler: str | None = None,
            progress: bool = True) -> int:
    """Run the tasks the store lacks; returns how many ran. Tasks run in the given order."""
    from tqdm import tqdm

    done = store.done({t["experiment"] for t in tasks})
    todo = [t for t in tasks if task_key(t) not in done]
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), disable=not progress, unit="task",
               desc="paper experiments")
    try:
        for task, result in _results(fn, todo, workers, scheduler):
            store.add(task, result)
            bar.set_postfix_str(task["experiment"], refresh=False)
            bar.update()
    finally:
        bar.close()
    return len(todo)


def _results(fn, todo, workers, scheduler):
    if not todo:
        return
    if scheduler:
        from dask.distributed import Client, as_completed as dask_completed

        with Client(scheduler) as client:
            futures = {client.submit(fn, t, key=f"paper-{i}-{abs(hash(task_key(t)))}", pure=False): t
                       for i, t in enumerate(todo)}
            for fut in dask_completed(futures):
                yield futures[fut], fut.result()
        return
    if workers == 1:
        for t in todo:
            yield t, fn(t)
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(fn, t): t for t in todo}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()


__all__ = ["Store", "execute", "task_key", "CURVES"]
