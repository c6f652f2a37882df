"""Model objects: the registry feeds the catalogue and the samplers; a user's own g(w) runs
from text to a simulated flow; the shared root rule solves to 30 digits."""

import mpmath
import pytest
import sympy as sp

import theory
from numerics._generated.catalog import KERNELS
from theory import deep
from theory.geometries import GEOMETRIES, GeometryModel, Q
from theory.geometries import register as register_geometry
from theory.kernelspec import RootSpec
from theory.models import MODELS, ScalarModel, register
from verify.mir import simulate_model
from verify.precision import SAMPLERS


def test_every_registered_model_has_committed_kernels_and_samplers():
    for name, m in MODELS.items():
        names = {s.name for s in m.kernel_specs()}
        assert {f"mir5_{name}_g", f"mir5_{name}_dg", f"mir5_{name}_hess"} <= names
        assert names <= set(KERNELS) and names <= set(SAMPLERS)


def test_every_registered_geometry_has_committed_kernels_and_samplers():
    for name, g in GEOMETRIES.items():
        names = {s.name for s in g.kernel_specs()}
        assert names == {f"{name}_{w}" for w in g.kernels}
        assert names <= set(KERNELS) and names <= set(SAMPLERS)


def test_a_geometry_must_declare_the_parameters_of_its_potential():
    with pytest.raises(ValueError, match=r"params \['q'\] are not the arguments \['L', 'q'\]"):
        GeometryModel("mir1_without_L", deep.balanced, ("hess",), (Q,)).kernel_specs()
    with pytest.raises(ValueError, match="new Python identifier"):
        register_geometry(GeometryModel("mir1", deep.balanced, ("hess",), GEOMETRIES["mir1"].params))


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="new Python identifier"):
        register(ScalarModel("square", "w**2", "w^2", 0.5))
    with pytest.raises(ValueError, match="identifier"):
        register(ScalarModel("not a name", "w**2", "w^2", 0.5))


def test_a_users_model_runs_from_text_to_a_simulated_flow():
    m = theory.model("3*w + w**3/3", start=0.4)
    flow = simulate_model(m, qs=(1.0, 1.5, 2.0))
    assert flow.path_error <= 1e-9                       # 1e3 x the integrator rtol 1e-12
    assert flow.dual is None or flow.dual_error <= 1e-9
    assert "prediction vs simulation" in str(flow)


def test_a_wrong_potential_is_seen_by_the_comparison():
    flow = simulate_model(MODELS["sinh"], qs=(1.5,), q_factor=1.1)
    assert flow.dual_error > 1e-3


def test_root_rule_solves_to_thirty_digits_and_refuses_what_it_cannot_bracket():
    v, a = sp.Symbol("v", real=True), sp.Symbol("a", positive=True)
    root = RootSpec(v, v**3 + v - a, sp.Integer(0)).solve({a: 2})
    assert abs(root - 1) < mpmath.mpf(10) ** -29
    with pytest.raises(ArithmeticError):
        RootSpec(v, sp.exp(v), sp.Integer(0)).solve({}, maxiter=50)
