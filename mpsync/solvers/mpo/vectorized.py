"""The density matrix of a chain as a vectorised MPS: states, traces, moments.

Conventions (docs/physics.md#conventions; shared with :mod:`.liouvillian` and :mod:`.tdvp`):

- local index per site ``s = 2 i + j`` (ket i, bra j; 0 = down, 1 = up), local
  dimension 4, row-major vectorisation ``|rho>> = sum rho_ij |i>|j>``;
- MPS: a list of N arrays ``A[a]`` of shape ``(Dl, 4, Dr)``, ``Dl = 1`` at
  site 0 and ``Dr = 1`` at site N-1; the dense vector has index
  ``sum_a s_a 4**(N-1-a)`` (site 0 most significant);
- the trace is ``<<1|rho>>``, the contraction with
  :data:`mpsync.channels.VEC_IDENTITY` at every site, never the 2-norm;
- expectation values: ``Tr(rho O) = sum_ij rho_ij O_ji``, so a single-site
  operator O acts through the covector ``O.T.reshape(4)``; products of
  operators on different sites multiply their covectors.

All array operations go through autoray, so numpy, cupy or torch tensors work.
"""

from __future__ import annotations

import autoray as ar
import numpy as np

from ...channels import SM, SP, SZ, VEC_IDENTITY
from ...errors import TooLargeError
from ...result import Moments

__all__ = [
    "product_mps",
    "trace",
    "normalize_trace",
    "hermitian_conjugate",
    "hermitian_part",
    "to_dense_vector",
    "from_dense_vector",
    "covector",
    "expectation",
    "moments",
    "bond_dims",
    "canonicalize",
    "compress",
    "add",
]

#: Index permutation s = 2 i + j -> 2 j + i (swap ket and bra).
_SWAP = [0, 2, 1, 3]


def _backend(x):
    return ar.infer_backend(x)


def _like(v, x):
    """``v`` (numpy) as an array of the backend and dtype of ``x``."""
    be = _backend(x)
    dtype = ar.get_dtype_name(x)
    if "complex" not in dtype and np.iscomplexobj(v):
        dtype = "complex128"
    v = np.asarray(v, dtype=dtype)
    return v if be == "numpy" else ar.do("array", v, like=be)


def _scalar(x):
    return complex(ar.to_numpy(x))


def covector(op) -> np.ndarray:
    """The 4-vector c with ``Tr(rho_site O) = sum_s A[s] c[s]``: ``c = O^T`` flattened."""
    return np.asarray(op).T.reshape(4)


def bond_dims(mps) -> list:
    """The N - 1 bond dimensions."""
    return [int(ar.shape(a)[2]) for a in mps[:-1]]


# ----------------------------------------------------------------------------- construction
def product_mps(states, like="numpy", dtype="complex128"):
    """Product density matrix rho = (x)_a rho_a as an MPS of bond dimension 1.

    Parameters
    ----------
    states : list of (2, 2) arrays
        Single-site density matrices (e.g. :func:`mpsync.states.product_state`).
    like : str
        autoray backend.
    dtype : str

    Returns
    -------
    list of (1, 4, 1) arrays

    Examples
    --------
    >>> from mpsync.states import product_state
    >>> mps = product_mps(product_state("down", 3))
    >>> abs(trace(mps) - 1) < 1e-15
    True
    """
    out = []
    for rho in states:
        t = np.asarray(rho, dtype=dtype).reshape(1, 4, 1)  # row-major: s = 2 i + j
        out.append(t if like == "numpy" else ar.do("array", t, like=like))
    return out


def from_dense_vector(vec, n, max_bond=None, cutoff=0.0):
    """Split a dense 4^N vector into an MPS by successive SVDs (small N, tests)."""
    if n > 10:
        raise TooLargeError(f"from_dense_vector holds a 4^{n} vector; it is for N <= 10")
    vec = np.asarray(vec)
    out = []
    rest = vec.reshape(1, -1)
    for a in range(n - 1):
        dl = rest.shape[0]
        m = rest.reshape(dl * 4, -1)
        u, s, vh = np.linalg.svd(m, full_matrices=False)
        keep = _keep(s, max_bond, cutoff)
        out.append(u[:, :keep].reshape(dl, 4, keep))
        rest = s[:keep, None] * vh[:keep]
    out.append(rest.reshape(rest.shape[0], 4, 1))
    return out


def to_dense_vector(mps, max_n: int = 10):
    """The dense 4^N vector (site 0 most significant); for small-N tests only."""
    n = len(mps)
    if n > max_n:
        raise TooLargeError(f"to_dense_vector forms a 4^{n} vector; it is for N <= {max_n}")
    acc = ar.to_numpy(mps[0])[0]  # (4, Dr)
    for a in mps[1:]:
        a = ar.to_numpy(a)
        acc = np.tensordot(acc, a, axes=([1], [0]))
        acc = acc.reshape(-1, a.shape[2])
    return acc[:, 0]


# ----------------------------------------------------------------------------- trace
def _transfer(a, vec):
    """E[l, r] = sum_s A[l, s, r] vec[s]."""
    return ar.do("tensordot", a, _like(vec, a), axes=([1], [0]))


def trace(mps):
    """Tr rho = <<1|rho>> (complex in general; 1 for a normalised Hermitian state)."""
    env = None
    log = 0.0
    for a in mps:
        e = _transfer(a, VEC_IDENTITY)
        env = e if env is None else env @ e
        s = float(ar.to_numpy(ar.do("max", ar.do("abs", env))))
        if s > 0:
            env = env / s
            log += np.log(s)
    return _scalar(ar.do("reshape", env, (-1,))[0]) * np.exp(log)


def normalize_trace(mps):
    """A copy with Tr rho = 1, the factor spread evenly over the sites."""
    tr = trace(mps)
    if tr == 0:
        raise ValueError("the state has zero trace and cannot be trace-normalised")
    n = len(mps)
    mag = abs(tr) ** (1.0 / n)
    phase = tr / abs(tr)
    out = [a / mag for a in mps]
    out[0] = out[0] / phase
    return out


def hermitian_conjugate(mps):
    """|rho^dagger>>: complex conjugate with ket and bra swapped (s = 2i+j -> 2j+i)."""
    return [ar.do("conj", a[:, _SWAP, :]) for a in mps]


def _zeros(shape, x):
    be = _backend(x)
    return ar.do("zeros", shape, like=be, dtype=ar.to_backend_dtype(ar.get_dtype_name(x), like=be))


def add(mps1, mps2, c1=1.0, c2=1.0):
    """c1 |1>> + c2 |2>> by direct sums of the bond spaces (bond dims add)."""
    n = len(mps1)
    if n != len(mps2):
        raise ValueError("the two MPS have different lengths")
    out = []
    for k, (a, b) in enumerate(zip(mps1, mps2)):
        if k == 0:
            a, b = c1 * a, c2 * b
        if n == 1:
            out.append(a + b)
        elif k == 0:
            out.append(ar.do("concatenate", (a, b), axis=2))
        elif k == n - 1:
            out.append(ar.do("concatenate", (a, b), axis=0))
        else:
            la, _, ra = ar.shape(a)
            lb, _, rb = ar.shape(b)
            top = ar.do("concatenate", (a, _zeros((la, 4, rb), a)), axis=2)
            bot = ar.do("concatenate", (_zeros((lb, 4, ra), b), b), axis=2)
            out.append(ar.do("concatenate", (top, bot), axis=0))
    return out


def hermitian_part(mps, max_bond=None, cutoff=1e-12):
    """(rho + rho^dagger) / 2, compressed back with :func:`compress`.

    The sum doubles the bond dimension before compression; cost O(N chi^3).
    """
    out = add(mps, hermitian_conjugate(mps), 0.5, 0.5)
    return compress(out, max_bond=max_bond, cutoff=cutoff)


# ----------------------------------------------------------------------------- canonical forms
def _keep(s, max_bond, cutoff):
    s = np.asarray(ar.to_numpy(s))
    if s.size == 0 or s[0] == 0:
        return 1
    keep = int(np.count_nonzero(s > cutoff * s[0])) if cutoff > 0 else s.size
    if max_bond is not None:
        keep = min(keep, int(max_bond))
    return max(keep, 1)


def canonicalize(mps, center=None):
    """Mixed-canonical form by QR sweeps: sites left of ``center`` left-isometric,
    right of it right-isometric; the norm lives on the centre (default: last site)."""
    n = len(mps)
    center = n - 1 if center is None else int(center)
    out = list(mps)
    for k in range(center):
        dl, d, dr = ar.shape(out[k])
        q, r = ar.do("linalg.qr", ar.do("reshape", out[k], (dl * d, dr)))
        out[k] = ar.do("reshape", q, (dl, d, -1))
        out[k + 1] = ar.do("tensordot", r, out[k + 1], axes=([1], [0]))
    for k in range(n - 1, center, -1):
        dl, d, dr = ar.shape(out[k])
        m = ar.do("reshape", out[k], (dl, d * dr))
        q, r = ar.do("linalg.qr", ar.do("transpose", m))
        out[k] = ar.do("reshape", ar.do("transpose", q), (-1, d, dr))
        out[k - 1] = ar.do("tensordot", out[k - 1], ar.do("transpose", r), axes=([2], [0]))
    return out


def compress(mps, max_bond=None, cutoff=1e-12):
    """SVD compression: left-canonicalize, then truncate from the right.

    Singular values below ``cutoff`` times the largest at each bond are dropped,
    and at most ``max_bond`` kept. The 2-norm is kept on site 0; renormalize the
    trace afterwards with :func:`normalize_trace` if needed.
    """
    n = len(mps)
    out = canonicalize(mps, center=n - 1)
    for k in range(n - 1, 0, -1):
        dl, d, dr = ar.shape(out[k])
        m = ar.do("reshape", out[k], (dl, d * dr))
        u, s, vh = ar.do("linalg.svd", m, full_matrices=False)
        keep = _keep(s, max_bond, cutoff)
        out[k] = ar.do("reshape", vh[:keep], (keep, d, dr))
        us = u[:, :keep] * ar.do("reshape", s[:keep], (1, keep))
        out[k - 1] = ar.do("tensordot", out[k - 1], us, axes=([2], [0]))
    return out


# ----------------------------------------------------------------------------- observables
def expectation(mps, ops):
    """Tr(rho prod_a O_a) / Tr(rho) for a dict ``{site: 2x2 operator}``."""
    num = None
    den = None
    for k, a in enumerate(mps):
        en = _transfer(a, covector(ops[k]) if k in ops else VEC_IDENTITY)
        ed = _transfer(a, VEC_IDENTITY)
        num = en if num is None else num @ en
        den = ed if den is None else den @ ed
        s = float(ar.to_numpy(ar.do("max", ar.do("abs", den))))
        if s > 0:
            num, den = num / s, den / s
    return _scalar(ar.do("reshape", num, (-1,))[0]) / _scalar(ar.do("reshape", den, (-1,))[0])


def _environments(mps, ops):
    """Transfer matrices E[name][a] for each named operator, and normalised left /
    right identity environments with their per-site scale factors."""
    n = len(mps)
    trans = {name: [_transfer(a, covector(op)) for a in mps] for name, op in ops.items()}
    eye = trans["I"]
    left = [None] * n   # left[a]: row vector (1, Dl_a)
    right = [None] * n  # right[a]: column vector (Dr_a, 1)
    lscale = np.ones(n)
    x = ar.do("reshape", eye[0][:1, :1] * 0 + 1, (1, 1))
    for a in range(n):
        left[a] = x
        x = x @ eye[a]
        s = float(ar.to_numpy(ar.do("max", ar.do("abs", x))))
        s = s if s > 0 else 1.0
        lscale[a] = s
        x = x / s
    y = ar.do("reshape", eye[-1][:1, :1] * 0 + 1, (1, 1))
    for a in range(n - 1, -1, -1):
        right[a] = y
        y = eye[a] @ y
        s = float(ar.to_numpy(ar.do("max", ar.do("abs", y))))
        y = y / (s if s > 0 else 1.0)
    return trans, left, right, lscale


def _pair_sweep(trans, left, right, lscale, pairs):
    """<L_a R_b> / Tr for a < b and every (L, R) in ``pairs``, O(N^2 chi^2).

    One sweep over b carries, for every left operator, the matrix of
    environments X[a] = left[a] E_a[L] E_{a+1}[I] ... E_{b-1}[I] (rows a < b),
    normalised with the same per-site scales as the left environment, so that
    ``X[a] E_b[R] right[b] / (left[b] E_b[I] right[b])`` is the normalised
    correlation.
    """
    n = len(left)
    eye = trans["I"]
    lefts = sorted({p[0] for p in pairs})
    out = {p: np.zeros((n, n), dtype=complex) for p in pairs}
    xs = {name: None for name in lefts}
    for b in range(n):
        tb = _scalar(ar.do("reshape", left[b] @ eye[b] @ right[b], (-1,))[0])
        if b > 0:
            for p in pairs:
                x = xs[p[0]]
                v = ar.to_numpy(ar.do("reshape", x @ (trans[p[1]][b] @ right[b]), (-1,)))
                out[p][:b, b] = v / tb
        for name in lefts:
            new = left[b] @ trans[name][b]
            xs[name] = new if xs[name] is None else ar.do("concatenate", (xs[name] @ eye[b], new), axis=0)
            xs[name] = xs[name] / lscale[b]
    return out


def moments(mps, coherences="auto", tol=1e-12) -> Moments:
    """One- and two-point moments of a vectorised state, normalised by its trace.

    sz_a = Tr(rho sz_a), C_ab = Tr(rho s+_a s-_b) (diagonal (1 + sz_a)/2),
    zz_ab = Tr(rho sz_a sz_b) (diagonal 1), from left and right trace
    environments: O(N chi^2) per sweep for one-point functions and one
    O(N^2 chi^2) sweep for all pairs (not N^2 independent contractions).

    Parameters
    ----------
    mps : list of (Dl, 4, Dr) arrays
    coherences : {"auto", True, False}
        Also compute <s-_a>, <sz_a s-_b> and <s-_a s-_b> (U(1)-breaking
        moments); ``"auto"`` does so when max |<s-_a>| > ``tol``.

    Returns
    -------
    mpsync.result.Moments
    """
    n = len(mps)
    ops = {"I": np.eye(2), "+": SP, "-": SM, "z": SZ}
    trans, left, right, lscale = _environments(mps, ops)

    def one(name):
        out = np.zeros(n, dtype=complex)
        for a in range(n):
            num = left[a] @ trans[name][a] @ right[a]
            den = left[a] @ trans["I"][a] @ right[a]
            out[a] = _scalar(ar.do("reshape", num, (-1,))[0]) / _scalar(ar.do("reshape", den, (-1,))[0])
        return out

    sz = one("z")
    sm = one("-")
    want = bool(coherences) if coherences != "auto" else bool(np.max(np.abs(sm), initial=0.0) > tol)
    pairs = [("+", "-"), ("-", "+"), ("z", "z")]
    if want:
        pairs += [("z", "-"), ("-", "z"), ("-", "-")]
    res = _pair_sweep(trans, left, right, lscale, pairs)
    corr = res[("+", "-")] + res[("-", "+")].T  # <s+_a s-_b>, a > b from <s-_b s+_a>
    corr[np.diag_indices(n)] = (1 + sz) / 2
    zz = res[("z", "z")] + res[("z", "z")].T
    zz[np.diag_indices(n)] = 1.0
    kw = {}
    if want:
        zsm = res[("z", "-")] + res[("-", "z")].T
        smsm = res[("-", "-")] + res[("-", "-")].T
        kw = dict(sm=sm, zsm=zsm, smsm=smsm)
    return Moments(np.real(sz), corr, np.real(zz), **kw)
