"""Verification of the theorem catalog against simulations (``python -m verify.all``)."""

FAMILIES = ("bal", "mir", "esc", "ib", "dec", "opt")


def load_checks():
    """Import every family module so that its checks register themselves."""
    import importlib

    for fam in FAMILIES:
        importlib.import_module(f"verify.{fam}")
