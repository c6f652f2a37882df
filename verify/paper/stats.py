"""Statistics of the paper experiments: intervals over seeds and escape exponents.

* :func:`mean_interval`: mean and two-sided 95 % Student-t interval of the seeds' values,
  ``mean +- t_{0.975, n-1} s / sqrt(n)`` (one value: no interval, reported as NaN bounds),
  intersected with the quantity's range where it has one (an accuracy in ``[0, 1]``, a loss
  ``>= 0``): the intersection keeps the coverage and never shows impossible values.
* :func:`log_interval`: the same on ``log`` of positive values, returned as ``exp``: the
  geometric mean and its interval, for quantities that span decades (drawn on log axes).
* :func:`fit_exponent`: least squares ``log T = c + e log alpha`` over every escaped run
  (all seeds), the slope ``e`` with its 95 % t interval from the slope's standard error;
  runs stopped by their budget are censored and counted, never fitted.
* :func:`per_decade`: least squares ``T = a + b log10(1/alpha)``, the growth per decade
  (the measurement that separates a logarithmic class from a bounded one).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def _finite(values) -> np.ndarray:
    return np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)


def mean_interval(values, bounds=(-math.inf, math.inf)) -> tuple[float, float, float]:
    """``(mean, low, high)`` of the finite values (95 % t interval, clipped to ``bounds``);
    NaN if there are none, NaN bounds for a single value."""
    v = _finite(values)
    if v.size == 0:
        return math.nan, math.nan, math.nan
    m = float(v.mean())
    if v.size == 1:
        return m, math.nan, math.nan
    h = float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return m, max(m - h, bounds[0]), min(m + h, bounds[1])


def log_interval(values) -> tuple[float, float, float]:
    """Geometric mean of the positive finite values and its 95 % interval (the t interval of
    their logarithms, exponentiated); NaN if there are none."""
    v = _finite(values)
    v = v[v > 0]
    return tuple(math.exp(x) if math.isfinite(x) else math.nan for x in mean_interval(np.log(v)))


def _line(x, y):
    """Slope, its 95 % half-width and the intercept of the least-squares line through (x, y)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size < 3 or np.ptp(x) == 0:
        return math.nan, math.nan, math.nan
    res = stats.linregress(x, y)
    return float(res.slope), float(stats.t.ppf(0.975, x.size - 2) * res.stderr), float(res.intercept)


def fit_exponent(alphas, steps, escaped) -> dict:
    """Power-law exponent of the escape steps in ``alpha`` over the escaped runs.

    Returns ``exponent``, ``half_width`` (95 %), ``fitted`` (runs used) and ``censored``
    (runs that hit their step budget). Fewer than three escaped runs at two or more
    distinct ``alpha`` give NaN.
    """
    a, s, ok = (np.asarray(v) for v in (alphas, steps, escaped))
    ok = ok.astype(bool) & np.isfinite(s.astype(float)) & (s.astype(float) > 0)
    slope, half, _ = _line(np.log(a[ok].astype(float)), np.log(s[ok].astype(float)))
    return dict(exponent=slope, half_width=half, fitted=int(ok.sum()), censored=int((~ok).sum()))


def per_decade(alphas, steps, escaped) -> tuple[float, float]:
    """Growth of the escape steps per decade of ``1/alpha`` (slope, 95 % half-width)."""
    a, s, ok = (np.asarray(v) for v in (alphas, steps, escaped))
    ok = ok.astype(bool)
    slope, half, _ = _line(-np.log10(a[ok].astype(float)), s[ok].astype(float))
    return slope, half


__all__ = ["mean_interval", "log_interval", "fit_exponent", "per_decade"]
