"""LaTeX primitives of the documents: SymPy printing, display fitting, text and ASCII math.

* :func:`math` prints a SymPy object with :class:`DocPrinter`: ``sympy.latex`` except that
  a symbol whose name is already LaTeX (``R''(x_i)``, ``-\\alpha\\,\\partial_\\alpha T``) is
  printed verbatim instead of being split into sub/superscripts at every ``_``/``^``.
* :func:`display` typesets a display formula that never runs into the margin: an
  equation whose side is a long sum is broken after ``=`` and between terms, and every
  line is scaled down (``\\fitmath``) if it is still wider than the text.
* :func:`asciimath` turns the catalogue's ASCII formulas (``R''(x) = |x|^(-m) / L``)
  into LaTeX; :func:`markdown` handles the catalogue's prose (code spans, bold);
  :func:`prose` handles plain sentences with embedded formulas (check claims).
* :func:`number` prints a measured float (3 significant digits) for the tables.
"""

from __future__ import annotations

import math as _math
import re

import sympy as sp
from sympy.printing.latex import LatexPrinter

# ----------------------------------------------------------------------------- SymPy

_LATEX_NAME = re.compile(r"[\\|() ',{]")


class DocPrinter(LatexPrinter):
    """``sympy.latex``, with two changes: symbols whose names are written in LaTeX print
    verbatim, and a ``Piecewise`` that is a term of a sum or the base of a power is
    parenthesized (``sympy.latex`` prints ``cases + 1``, which reads as part of the
    last case)."""

    def doprint(self, expr):
        self._wrapped = set()
        stack = [expr]
        while stack:
            node = stack.pop()
            if isinstance(node, (sp.Add, sp.Pow)):
                self._wrapped |= {id(a) for a in node.args if isinstance(a, sp.Piecewise)}
            stack.extend(a for a in getattr(node, "args", ()) if isinstance(a, sp.Basic))
        return super().doprint(expr)

    def _print_Piecewise(self, expr):
        tex = super()._print_Piecewise(expr)
        return rf"\left({tex}\right)" if id(expr) in getattr(self, "_wrapped", ()) else tex

    def _print_Symbol(self, expr, style="plain"):
        if _LATEX_NAME.search(expr.name):
            return expr.name
        return super()._print_Symbol(expr, style)


def math(expr) -> str:
    """The LaTeX of a SymPy object (no math delimiters)."""
    return DocPrinter().doprint(sp.sympify(expr))


def _visible_width(tex: str) -> float:
    """Rough printed width of a LaTeX formula in characters: fractions and environments
    (``cases``, ``matrix``) count their widest line, scripts 0.7, spacing nothing. Used
    only to choose line breaks; ``\\fitmath`` guarantees the fit."""
    width, i = 0.0, 0
    while i < len(tex):
        ch = tex[i]
        if tex.startswith(r"\frac", i):
            num, j = _group(tex, i + 5)
            den, k = _group(tex, j)
            width += max(_visible_width(num), _visible_width(den))
            i = k
        elif tex.startswith(r"\begin{", i):
            env, j = _group(tex, i + 6)
            body, k = _environment(tex, j, env)
            width += 1 + max(_visible_width(row) for row in _rows(body))
            i = k
        elif ch in "^_":
            if tex[i + 1:i + 2] == "{":
                arg, j = _group(tex, i + 1)
            else:
                arg = re.match(r"\s*(\\[A-Za-z]+|.?)", tex[i + 1:]).group(0)
                j = i + 1 + len(arg)
            width += 0.7 * _visible_width(arg)
            i = j
        elif ch == "\\":
            m_ = re.match(r"\\([A-Za-z]+|.?)", tex[i:])
            if m_.group(1) not in ("left", "right", "middle", ",", ";", ":", "!", "operatorname",
                                   "mathrm", "text", "limits", "displaystyle", "quad"):
                width += 1
            i += len(m_.group(0))
        elif ch in "{} &":
            i += 1
        else:                         # binary operators and relations carry spacing
            width += 2.5 if ch in "+-=<>" else 1
            i += 1
    return width


def _group(tex: str, i: int) -> tuple[str, int]:
    """The brace group starting at ``tex[i] == '{'``: (contents, index after it)."""
    depth = 0
    for j in range(i, len(tex)):
        depth += {"{": 1, "}": -1}.get(tex[j], 0)
        if depth == 0:
            return tex[i + 1:j], j + 1
    raise ValueError(f"unbalanced braces in {tex!r}")


def _environment(tex: str, i: int, env: str) -> tuple[str, int]:
    """Body of the environment ``env`` opened just before ``tex[i]`` (nesting allowed)."""
    opening, closing = rf"\begin{{{env}}}", rf"\end{{{env}}}"
    depth, j = 1, i
    while depth:
        a, b = tex.find(opening, j), tex.find(closing, j)
        if b < 0:
            raise ValueError(f"unclosed {env} in {tex!r}")
        if 0 <= a < b:
            depth, j = depth + 1, a + len(opening)
        else:
            depth, j = depth - 1, b + len(closing)
    return tex[i:j - len(closing)], j


def _rows(body: str) -> list[str]:
    """Rows of an environment body: split at ``\\`` outside braces and inner environments."""
    rows, depth, start, i = [], 0, 0, 0
    while i < len(body):
        if body.startswith(r"\begin{", i):
            depth += 1
        elif body.startswith(r"\end{", i):
            depth -= 1
        elif body[i] in "{}":
            depth += 1 if body[i] == "{" else -1
        elif body.startswith(r"\\", i) and depth == 0:
            rows.append(body[start:i])
            start, i = i + 2, i + 2
            continue
        i += 1
    return rows + [body[start:]]


LINE = 60          # characters of display math that fit the text width (11pt, 2.2 cm margins)
_REL = {"==": "=", "<=": r"\leq", ">=": r"\geq", "<": "<", ">": ">", "!=": r"\neq"}


def _chunks(expr, lead: str = "") -> list[str]:
    """Printed pieces of ``expr`` that a line may break between: the terms of a sum
    (each with its sign), or the whole expression."""
    printer = DocPrinter()
    if not isinstance(expr, sp.Add):
        return [lead + printer.doprint(expr)]
    printer.doprint(expr)             # marks the Piecewise terms to parenthesize
    out = []
    for k, term in enumerate(printer._as_ordered_terms(expr)):
        tex = printer._print(term)
        sign, tex = ("-", tex[1:].lstrip()) if tex.startswith("-") else ("+", tex)
        if k == 0:
            out.append(lead + ("-" + tex if sign == "-" else tex))
        else:                         # {}+ keeps the binary spacing at a line start
            out.append(f"{{}}{sign} {tex}")
    return out


def display(expr) -> str:
    """A display formula for ``expr`` that fits the text width (see the module doc)."""
    expr = sp.sympify(expr)
    tex = math(expr)
    if _visible_width(tex) <= LINE:
        return f"\\[\\fitmath{{{tex}}}\\]"
    if isinstance(expr, sp.core.relational.Relational):
        lhs, rhs = expr.args
        chunks = _chunks(lhs) + _chunks(rhs, f"{_REL[expr.rel_op]} ")
    else:
        chunks = _chunks(expr)
    if len(chunks) <= 2:                # nothing to break between but the relation
        return f"\\[\\fitmath{{{tex}}}\\]"
    lines = [chunks[0]]
    for chunk in chunks[1:]:
        if _visible_width(lines[-1] + chunk) > LINE:
            lines.append(r"\quad " + chunk)
        else:
            lines[-1] += " " + chunk
    if len(lines) == 1:
        return f"\\[\\fitmath{{{tex}}}\\]"
    return "\\begin{align*}\n" + " \\\\\n".join(f"& \\fitmath{{{ln}}}" for ln in lines) + \
        "\n\\end{align*}"


# ----------------------------------------------------------------------------- text

_TEXT_ESCAPES = {"\\": r"$\backslash$", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                 "_": r"\_", "{": r"\{", "}": r"\}", "~": r"$\sim$", "^": r"\^{}", "<": "$<$",
                 ">": "$>$", "|": "$|$"}


def escape(text: str) -> str:
    """Plain text made safe for LaTeX."""
    return "".join(_TEXT_ESCAPES.get(ch, ch) for ch in str(text))


def heading(tex: str, plain: str) -> str:
    """A section title: ``tex`` in the text, ``plain`` in the PDF bookmarks."""
    plain = re.sub(r"[_^{}$\\&%#~]", "", plain)
    return rf"\texorpdfstring{{{tex}}}{{{plain}}}" if "$" in tex else tex


def code(text: str) -> str:
    """Monospaced code (kernel signatures, commands), breakable after commas."""
    tt = "".join({"\\": r"\textbackslash{}", "~": r"\textasciitilde{}", "<": r"\textless{}",
                  ">": r"\textgreater{}", "|": r"\textbar{}"}.get(ch, escape(ch)) for ch in str(text))
    tt = tt.replace("--", "-{}-").replace(", ", r", \allowbreak{}").replace("/", r"/\allowbreak{}")
    return r"\texttt{" + tt + "}"


# ----------------------------------------------------------------------------- ASCII math

_GREEK = {name: "\\" + name for name in (
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "kappa", "lambda", "mu",
    "nu", "xi", "pi", "rho", "sigma", "tau", "phi", "chi", "psi", "omega", "Gamma", "Delta",
    "Theta", "Lambda", "Xi", "Pi", "Sigma", "Phi", "Psi", "Omega")}
_GREEK.update(eps=r"\varepsilon", lam=r"\lambda")
_FUNCS = {"log": r"\log", "exp": r"\exp", "sinh": r"\sinh", "cosh": r"\cosh", "tanh": r"\tanh",
          "max": r"\max", "min": r"\min", "sup": r"\sup", "lim": r"\lim",
          "sign": r"\operatorname{sign}", "arcsinh": r"\operatorname{arcsinh}",
          "asinh": r"\operatorname{arsinh}", "argmin": r"\operatorname{argmin}",
          "argmax": r"\operatorname{argmax}", "integral": r"\int", "int": r"\int", "sum": r"\sum",
          "prod": r"\prod", "grad": r"\nabla", "in": r"\in", "iff": r"\iff", "Theta": r"\Theta"}
_WORDS = {"at", "of", "the", "and", "or", "if", "for", "to", "is"}
_TOKEN = re.compile(r"\s+|\*\*|\|\||->|<-|<=|>=|!=|\.\.|2F1|\d+(?:\.\d+)?(?:e[-+]?\d+)?|"
                    r"[A-Za-z]+\d*|.", re.S)


def _number(tok: str) -> str:
    if "e" not in tok:
        return tok
    mant, expo = tok.split("e")
    expo = str(int(expo))
    return f"10^{{{expo}}}" if float(mant) == 1 else f"{mant}\\times 10^{{{expo}}}"


def _word(tok: str, nxt: str) -> str:
    letters = re.match(r"[A-Za-z]+", tok).group(0)
    digits = tok[len(letters):]
    if letters == "inf":
        out = r"\inf" if nxt.startswith(" ") and re.match(r" [A-Za-z]", nxt) else r"\infty"
    elif letters == "l" and nxt.startswith("_"):
        out = r"\ell"
    elif letters in _GREEK:
        out = _GREEK[letters]
    elif letters[:1] == "d" and letters[1:] in _GREEK:          # dalpha: a differential
        out = "d" + _GREEK[letters[1:]]
    elif letters in _FUNCS:
        out = _FUNCS[letters]
    elif len(letters) <= 2 and letters not in _WORDS:
        out = letters
    else:
        out = rf"\text{{{letters}}}"
    if digits:
        out += f"_{{{digits}}}"
    return out + (" " if out.startswith("\\") and out[-1].isalpha() else "")


def _closing(s: str, i: int, open_: str, close: str) -> int:
    depth = 0
    for j in range(i, len(s)):
        depth += 1 if s[j] == open_ else -1 if s[j] == close else 0
        if depth == 0:
            return j
    raise ValueError(f"unbalanced {open_}{close} in {s!r}")


def _script(s: str, i: int) -> tuple[str, int]:
    """The argument of ``^``/``_`` starting at ``s[i]``: (LaTeX, index after it)."""
    sign = ""
    if s[i:i + 1] == "-":
        sign, i = "-", i + 1
    if s[i:i + 1] in "({":
        j = _closing(s, i, s[i], ")" if s[i] == "(" else "}")
        inner = asciimath(s[i + 1:j])
        return (f"{sign}({inner})" if sign and s[i] == "(" else sign + inner), j + 1
    m_ = _TOKEN.match(s, i)
    tok = m_.group(0)
    if re.fullmatch(r"[A-Za-z]+", tok) and tok not in _GREEK and tok != "inf" and len(tok) > 2:
        return sign + rf"\mathrm{{{tok}}}", m_.end()
    return sign + asciimath(tok).strip(), m_.end()


def asciimath(s: str) -> str:
    """LaTeX (math mode, no delimiters) of a formula written in the catalogue's ASCII:
    ``^(...)``/``_{...}`` scripts, ``sqrt(..)``, greek names, ``integral``/``sum``/``prod``,
    ``<=``/``->``/``||``, ``2F1``, ``<a, b>`` brackets, ``x*`` for a minimizer."""
    s = re.sub(r"<([^<>=]*,[^<>=]*)>", "\x01\\1\x02", s)
    out, i = [], 0
    while i < len(s):
        m_ = _TOKEN.match(s, i)
        tok, j = m_.group(0), m_.end()
        nxt = s[j:]
        if tok.isspace():
            out.append(" ")
        elif tok in ("^", "_", "**"):
            arg, j = _script(s, j)
            out.append(f"{tok[0] if tok != '**' else '^'}{{{arg}}}")
        elif tok in ("sqrt", "Abs") and nxt.startswith("("):
            k = _closing(s, j, "(", ")")
            inner = asciimath(s[j + 1:k])
            out.append(rf"\sqrt{{{inner}}}" if tok == "sqrt" else rf"\left|{inner}\right|")
            j = k + 1
        elif tok == "{":
            k = _closing(s, i, "{", "}")
            out.append(rf"\{{{asciimath(s[i + 1:k])}\}}")
            j = k + 1
        elif tok == "*":
            starred = s[i - 1:i].isalpha() and re.match(r"\s|[),/]|$", nxt)    # x* = ..., gamma*
            out.append("^*" if starred else r" \cdot ")
        elif tok[0].isdigit() and tok != "2F1":
            out.append(_number(tok))
        elif tok[0].isalpha():
            out.append(_word(tok, nxt))
        else:
            out.append({"||": r"\|", "->": r"\to ", "<-": r"\leftarrow ", "<=": r"\le ",
                        ">=": r"\ge ", "!=": r"\ne ", "..": r",\dots,", "2F1": r"{}_2F_1",
                        "~": r"\sim ", "\x01": r"\langle ", "\x02": r"\rangle ", "%": r"\%",
                        "&": r"\&", "#": r"\#", "$": r"\$", "\\": r"\backslash "}.get(tok, tok))
        i = j
    tex = "".join(out).strip()
    # consecutive words of text are one \text{...} (spaces in math mode are dropped)
    merged = re.compile(r"\\text\{([^}]*)\}\s+\\text\{")
    while merged.search(tex):
        tex = merged.sub(r"\\text{\1 ", tex)
    return tex


def inline(tex: str) -> str:
    """``$tex$`` for running text: top-level ``\\text{...}`` words are set outside math mode,
    so that a line can break between them."""
    pieces, depth, start, i = [], 0, 0, 0
    while i < len(tex):
        if tex.startswith(r"\text{", i) and depth == 0:
            words, j = _group(tex, i + 5)
            pieces += [("math", tex[start:i]), ("text", words)]
            start = i = j
            continue
        depth += {"{": 1, "}": -1}.get(tex[i], 0)
        i += 1
    pieces.append(("math", tex[start:]))
    out = [f"${body.strip()}$" if kind == "math" else body for kind, body in pieces if body.strip()]
    return " ".join(out)


def _math_or_code(formula: str) -> str:
    """Inline LaTeX of an ASCII formula; monospace if it cannot be read (unbalanced brackets)."""
    try:
        return inline(asciimath(formula))
    except ValueError:
        return code(formula)


def _inline_code(span: str) -> str:
    """A catalogue code span: a formula, or an identifier/command in monospace."""
    if re.search(r"python |\w/\w+\.\w", span) or (
            re.fullmatch(r"[A-Za-z]{3,}\w*", span) and span not in _GREEK and span not in _FUNCS):
        return code(span)
    return _math_or_code(span)


def markdown(text: str) -> str:
    """The catalogue's Markdown prose: code spans become formulas, ``**x**`` bold."""
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(_inline_code(part[1:-1]))
        else:
            esc = escape(part)
            esc = re.sub(r"\*\*(.+?)\*\*", r"\\textbf{\1}", esc)
            esc = re.sub(r'"([^"]*)"', r"``\1''", esc)
            out.append(esc)
    return "".join(out)


_MATHY = re.compile(r"[\^_|=<>+*/~]|^-|\d[A-Za-z]|[A-Za-z]\d|[A-Za-z]\(|^Abs\(|^[A-Za-z]'+|'\(")
_OPERATOR = re.compile(r"[-=<>+*/]+|!=|->|\x03")


def _is_math_word(core: str) -> bool:
    if not core:
        return False
    if re.fullmatch(r"[A-Za-z]+(-[A-Za-z]+)+|\d+(st|nd|rd|th)(-\w+)?", core):
        return False                                    # closed-form, 7th-order
    if re.fullmatch(r"[-+]?\d+(\.\d+)?(e[-+]?\d+)?|[-=<>+*/]+|<=|>=|->|!=", core):
        return True
    if core in _GREEK or (len(core) == 1 and core not in "aAI"):
        return True
    return bool(_MATHY.search(core))


def _split_word(word: str) -> tuple[str, str, str]:
    """``(prefix, core, suffix)``: unbalanced parentheses and trailing punctuation apart."""
    pre = ""
    while word.startswith("(") and word.count("(") > word.count(")"):
        pre, word = pre + "(", word[1:]
    suf = ""
    while word and (word[-1] in ",.;:" or (word[-1] == ")" and word.count(")") > word.count("("))):
        suf, word = word[-1] + suf, word[:-1]
    return pre, word, suf


def _opens(word: str) -> bool:
    """Does ``word`` open a bracket that a later word closes (``(``, ``{``, ``<z,``)?"""
    return (word.count("(") > word.count(")") or word.count("{") > word.count("}")
            or bool(re.search(r"<[A-Za-z][^>]*$", word)))


def prose(text: str) -> str:
    """A sentence with formulas that are not delimited (the checks' claims and notes):
    words that look like formulas are typeset as math, and joined into one formula when
    an operator links them (``R'' = x^-m/L``); brackets and punctuation around a formula
    stay outside it, attached."""
    words = []
    for w in str(text).split():       # a formula with spaces inside brackets is one word
        if words and _opens(words[-1]) and _MATHY.search(words[-1]):
            words[-1] += " " + w
        else:
            words.append(w)
    units, prev = [], None            # [prefix, [cores], suffix, is_math]
    for w in words:
        pre, core, suf = _split_word(w)
        if core == "x" and prev is not None and re.fullmatch(r"[\d.e+-]+", prev):
            core, is_math = "\x03", True            # "1e3 x rtol": a product
        else:
            is_math = _is_math_word(core)
        last = units[-1] if units else None
        linked = last is not None and (_OPERATOR.fullmatch(last[1][-1]) or _OPERATOR.match(core))
        if is_math and last and last[3] and not last[2] and not pre and linked:
            last[1].append(core)
            last[2] = suf
        else:
            units.append([pre, [core], suf, is_math])
        prev = core
    out = []
    for pre, cores, suf, is_math in units:
        body = _math_or_code(" ".join(cores)) if is_math else escape(" ".join(cores))
        out.append(escape(pre) + body + escape(suf))
    return " ".join(out).replace("\x03", r"\times")


# ----------------------------------------------------------------------------- numbers

def number(v) -> str:
    """A measured value for the tables, in math mode: 3 significant digits,
    ``m\\times 10^{e}`` (``10^{e}`` when ``m = 1``), ``\\infty``/``\\mathrm{NaN}``."""
    v = float(v)
    if _math.isnan(v):
        return r"$\mathrm{NaN}$"
    if _math.isinf(v):
        return r"$\infty$" if v > 0 else r"$-\infty$"
    if v == 0:
        return "$0$"
    mant, expo = f"{v:.2e}".split("e")
    expo = int(expo)
    if -2 <= expo <= 2:
        return f"${float(f'{v:.3g}'):g}$"
    if mant in ("1.00", "-1.00"):
        return f"${'-' if v < 0 else ''}10^{{{expo}}}$"
    return f"${mant}\\times 10^{{{expo}}}$"


PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[margin=2.2cm]{geometry}
\usepackage{amsmath,amssymb,graphicx,booktabs,xcolor,float,array,tabularx}
\usepackage[hidelinks]{hyperref}
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.5ex}
\allowdisplaybreaks
\setlength{\emergencystretch}{3em}
\tolerance=1500
% a display formula wider than the line is scaled down to the line width
\newsavebox{\fitbox}
\newcommand{\fitmath}[1]{\sbox{\fitbox}{$\displaystyle #1$}%
  \ifdim\wd\fitbox>\dimexpr\linewidth-4em\relax
    \resizebox{\dimexpr\linewidth-4em\relax}{!}{\usebox{\fitbox}}\else\usebox{\fitbox}\fi}
\newcommand{\pass}{\textcolor{green!50!black}{PASS}}
\newcommand{\fail}{\textcolor{red!70!black}{FAIL}}
"""
