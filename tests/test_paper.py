"""The paper experiments (``python -m verify.paper``): statistics, Lanczos, margins, the
task runner (resume, Dask LocalCluster) and the quick command end to end."""

import math
import os

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")
pytest.importorskip("tqdm")

from verify.paper import dln, finetune, predict, sparse  # noqa: E402
from verify.paper.lanczos import hessian_vector_product, lanczos  # noqa: E402
from verify.paper.runner import Store, execute, task_key  # noqa: E402
from verify.paper.stats import fit_exponent, log_interval, mean_interval  # noqa: E402


def test_mean_interval_is_the_student_t_interval():
    m, lo, hi = mean_interval([1.0, 2.0, 3.0, float("nan")])      # NaN is dropped, never averaged
    half = 4.30265273 / math.sqrt(3)                                # t_{0.975, 2} (tables), s = 1
    assert (m, lo, hi) == pytest.approx((2.0, 2.0 - half, 2.0 + half), rel=1e-8)
    assert all(math.isnan(v) for v in mean_interval([float("nan")]))
    assert math.isnan(mean_interval([5.0])[1])


def test_intervals_stay_in_the_quantitys_range():
    m, lo, hi = mean_interval([0.9, 1.0, 1.0], bounds=(0.0, 1.0))     # t interval [0.69, 1.21] cut at 1
    assert (lo, hi) == pytest.approx((m - 4.30265273 * np.std([0.9, 1, 1], ddof=1) / math.sqrt(3), 1.0))
    assert mean_interval([1e-3, 1.0, 2.0], bounds=(0.0, math.inf))[1] == 0.0
    g, glo, ghi = log_interval([1e-6, 1e-4, 1e-2])                     # logs -6, -4, -2 (base 10)
    half = 4.30265273 * 2 / math.sqrt(3) * math.log(10)
    assert (g, glo, ghi) == pytest.approx((1e-4, 1e-4 * math.exp(-half), 1e-4 * math.exp(half)), rel=1e-8)
    assert glo > 0


def test_fit_exponent_recovers_a_power_and_skips_censored_runs():
    alphas = np.repeat([1e-4, 1e-3, 1e-2, 1e-1], 3)
    steps = 5.0 * alphas ** -1.3 * np.tile([0.9, 1.0, 1.1], 4)
    escaped = np.ones_like(alphas, dtype=bool)
    escaped[0] = False
    steps[0] = 1.0                                                # a censored run must not enter the fit
    fit = fit_exponent(alphas, steps, escaped)
    assert fit["exponent"] == pytest.approx(-1.3, abs=1e-2)
    assert fit["censored"] == 1 and fit["fitted"] == 11 and fit["half_width"] < 0.05
    assert math.isnan(fit_exponent([1e-2, 1e-1], [3.0, 2.0], [True, True])["exponent"])


def test_lanczos_matches_the_dense_hessian_of_an_adapter():
    torch.manual_seed(0)
    X, y = torch.randn(30, 6, dtype=torch.float64), torch.randint(0, 3, (30,))
    gen = torch.Generator().manual_seed(1)
    fac = finetune.adapter((3, 6), 2, 0.5, gen)
    loss = lambda: torch.nn.functional.cross_entropy(X @ finetune.product(fac).T, y)   # noqa: E731
    n = sum(f.numel() for f in fac)
    flat = lambda v: torch.nn.functional.cross_entropy(                            # noqa: E731
        X @ (v[24:].reshape(3, 4) @ v[:24].reshape(4, 6)).T, y)                   # F_2 F_1, flattened in order
    dense = torch.linalg.eigvalsh(torch.autograd.functional.hessian(flat, torch.cat([f.detach().reshape(-1)
                                                                                     for f in fac])))
    ritz = lanczos(hessian_vector_product(loss, fac), n, n).numpy()
    # a Krylov space sees each distinct eigenvalue once: every Ritz value is an eigenvalue
    assert np.abs(ritz[:, None] - dense.numpy()[None, :]).min(1).max() < 1e-8
    assert len(ritz) >= len(np.unique(np.round(dense.numpy(), 6))) - 1
    top = lanczos(hessian_vector_product(loss, fac), n, 20)          # extremes converge first
    assert float(top.max()) == pytest.approx(float(dense.max()), rel=1e-6)
    assert float(top.min()) == pytest.approx(float(dense.min()), rel=1e-6)


@pytest.mark.parametrize("L", [2, 3])
def test_small_adapters_start_at_a_saddle(L):
    """The factor gradient at scale alpha is O(alpha^(L-1)): ten times smaller alpha, 10^(L-1) smaller."""
    base = finetune.pretrained(0)
    X, y, _, _ = finetune.digits()["B"]
    norms = []
    for alpha in (1e-3, 1e-2):
        fac = [finetune.adapter(base[0].shape, L, alpha, torch.Generator().manual_seed(3)),
               finetune.adapter(base[2].shape, L, alpha, torch.Generator().manual_seed(4))]
        loss = torch.nn.functional.cross_entropy(finetune.logits(base, fac, X), y)
        g = torch.autograd.grad(loss, [f for a in fac for f in a])
        norms.append(float(sum(x.norm() ** 2 for x in g) ** 0.5))
    assert norms[1] / norms[0] == pytest.approx(10.0 ** (L - 1), rel=0.05)


def test_max_margin_in_closed_form():
    """One point z = (1, 1), label +1: min ||x||_r s.t. x1 + x2 >= 1 is at x = (1/2, 1/2) for r > 1
    (margin 1/||x||_r = 2^(1 - 1/r)) and has ||x||_1 = 1 (margin 1)."""
    Z, lab = np.array([[1.0, 1.0]]), np.array([1.0])
    assert sparse.max_margin(Z, lab, 1.0) == pytest.approx(1.0, rel=1e-8)
    assert sparse.max_margin(Z, lab, math.inf) == pytest.approx(2.0, rel=1e-8)
    for r in (1.5, 2.0, 3.0):
        assert sparse.max_margin(Z, lab, r) == pytest.approx(2 ** (1 - 1 / r), rel=1e-5)
    assert math.isnan(sparse.max_margin(Z, lab, 0.75))
    rng = np.random.default_rng(0)
    Z, lab, *_ = sparse.problem(0)
    for r in (1.0, 2.0, math.inf):                               # no direction beats the optimum
        best = sparse.max_margin(Z, lab, r)
        assert max(sparse.margin(x, Z, lab, r) for x in rng.standard_normal((200, sparse.K))) < best


def test_dln_batched_rows_step_as_alone():
    both = dln.optimizer(0, "adam", 1e-2, (1e-2, 1e-1), 60)["rows"]
    alone = dln.optimizer(0, "adam", 1e-2, (1e-1,), 60)["rows"]
    assert both[1]["final_loss"] == pytest.approx(alone[0]["final_loss"], rel=1e-12)


def test_decay_threshold_is_dec3():
    """DEC-3: coupled decay at L >= 3 collapses below alpha = (nu / y)^(1 / (L - 2)) to leading order
    in nu / y (the exact boundary, the small root of the equilibrium equation, differs by
    O(nu / y)^2 relatively: 0.1 % at L = 3, 0.5 % at L = 4 for nu / y = 0.1)."""
    assert predict.decay_threshold(3, "sgd", 0.1, (0.01, 1.0)) == pytest.approx(0.1, rel=1e-2)
    assert predict.decay_threshold(4, "adam", 0.1, (0.01, 1.0)) == pytest.approx(0.1 ** 0.5, rel=1e-2)
    assert predict.decay_threshold(3, "sgd", 0.1, (0.01, 1.0)) > 0.1           # the correction's sign
    assert math.isnan(predict.decay_threshold(4, "adamw", 0.1, (0.01, 1.0)))   # SignGF + decoupled escapes
    assert predict.escape_prediction(3, 2.0) == ("polynomial", -1.0)
    assert predict.escape_prediction(3, 1.5) == ("logarithmic", 0.0)


def counted(task):
    if task.get("fail"):
        raise RuntimeError("interrupted")
    return {"rows": [{"value": task["seed"] ** 2}], "curves": [{"series": "s", "x": 1, "y": task["seed"]}]}


def test_interrupted_sweep_resumes_without_redoing(tmp_path):
    store = Store(str(tmp_path))
    tasks = [dict(experiment="toy", seed=s) for s in range(4)]
    with pytest.raises(RuntimeError):
        execute(counted, tasks[:2] + [dict(tasks[2], fail=True)], store, workers=1, progress=False)
    assert store.done(["toy"]) == {task_key(t) for t in tasks[:2]}
    assert execute(counted, tasks, store, workers=1, progress=False) == 2
    rows = store.rows("toy")
    assert sorted(r["value"] for r in rows) == [0, 1, 4, 9]
    assert len(store.curves()) == 4
    assert execute(counted, tasks, store, workers=1, progress=False) == 0


def test_dask_local_cluster_runs_the_tasks(tmp_path, monkeypatch):
    distributed = pytest.importorskip("dask.distributed")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    from verify.paper.plan import run_task

    tasks = [dict(experiment="sparse", q=q, L=2, alpha=0.1, lr=0.05, steps=20, seed=0) for q in (1.0, 2.0)]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        store = Store(str(tmp_path))
        assert execute(run_task, tasks, store, scheduler=cl.scheduler_address, progress=False) == 2
    rows = store.rows("sparse")
    assert sorted(r["q"] for r in rows) == [1.0, 2.0]
    assert all(math.isfinite(r["margin"]) for r in rows)


def test_quick_command_writes_report_csv_and_figures(tmp_path, capsys):
    from verify.paper.__main__ import main

    rc = main([str(tmp_path), "--quick", "--no-progress"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    if rc == 3 and "(budget)" in last:      # a flow's wall budget is a hang guard: a skip, never a verdict
        pytest.skip(f"a quick flow ran past its wall budget on this machine: {last}")
    assert rc == 0 and last.startswith("COMPLETE"), last
    files = set(os.listdir(tmp_path))
    assert {"report.md", "finetune.csv", "escape.csv", "decay.csv", "dln_flow.csv", "dln_optimizer.csv",
            "sparse.csv", "curves.csv"} <= files
    assert {"finetune.png", "escape.png", "dln.png", "sparse.png", "decay.png"} <= files
    text = (tmp_path / "report.md").read_text()
    for heading in ("Fine-tuning", "Steps to escape", "Deep diagonal regression", "Sparse classification",
                    "Decay at depth"):
        assert heading in text
    assert "ESC-2" in text and "DEC-3" in text and "theory covers" in text
    assert "makes no statement" in text and "by analogy" in text       # settings outside the theorems say so
    assert "nan" not in text.lower().replace("n/a", "")

    from docs.experiments import section                 # the PDF's section, from the stored results

    tex = section(tmp_path, tmp_path / "doc")
    assert "\\section{Experiments}" in tex and "\\begin{tabularx}" in tex and "ESC-2" in tex
    assert (tmp_path / "doc" / "figures" / "paper-escape.png").exists()
    assert "No stored results" in section(tmp_path / "missing", tmp_path / "doc")


def test_a_flow_stopped_on_its_budget_makes_the_run_partial(tmp_path):
    from verify.paper.__main__ import verdict

    class Rows:
        def __init__(self, statuses):
            self.statuses = statuses

        def rows(self, experiment):
            assert experiment == "dln_flow"
            return [{"status": s} for s in self.statuses]

    assert verdict(Rows(["escaped", "t_end"]))[1]
    line, complete = verdict(Rows(["escaped", "budget", "steps"]))
    assert not complete and line.startswith("PARTIAL: 2 of 3 flows") and "budget, steps" in line
