"""Derivation documents: ``python -m docs.build`` writes ``docs/derivations.pdf``.

For each theorem family: the catalogue's statement, the SymPy derivation steps as
printed by ``sympy.latex``, the generated kernels, figures of prediction vs simulation,
and the verification table of a verify run whose JSON is written beside the PDF.
Families, derivations, kernels and checks are discovered (see :mod:`docs.sources`);
family figures are registered with :func:`docs.figures.figure`.
"""
