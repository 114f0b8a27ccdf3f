r"""Root solve of the U(1) cumulant equations (the engine of ``cumulant.steady_state``).

Reduced equations
    In the steady state d<sz_a sz_b>/dt = 0 is linear in zz with the constant
    coefficient -2Q, so zz is eliminated exactly,

    .. math::

        zz_{cd} = \frac{D(s_c + s_d) + 4 f_{cd}\,\mathrm{Re}\,C_{cd}
                  - 4 s_d\,\mathrm{Re}\,w_{cd} - 4 s_c\,\mathrm{Re}\,w_{dc}}{2Q},
        \qquad w_{cd} = \sum_a K_{ca}C_{ca} - K_{cd}C_{cd},

    and the unknowns are one N x N matrix X: X_cc = <sz_c>, X_cd = C_cd =
    <s+_c s-_d> (real symmetric when g = 0 and delta is uniform, Hermitian
    otherwise). With s = diag(X), C = X with diagonal (1 + s)/2, the residual
    is R = P + P^H with diagonal d<sz>/dt = -Q s + D - 4 Re v, where

    .. math::

        P = \mathrm{diag}(s) K^* C + f\circ\Big[\tfrac{D}{4Q} s\,1^T
            - \tfrac{1}{Q}\,\mathrm{Re}(w)\,\mathrm{diag}(s) - \tfrac14 s s^T\Big]
            + \tfrac{f\circ f}{2Q}\circ \mathrm{Re}\,C + (i\delta - Q/2)\circ C,

    the pair equation of :func:`mpsync.solvers.moment_equations.rhs_u1` with zz
    substituted (Q = Gamma + W, D = W - Gamma, K = (f + i g)/2 with zero
    diagonal). Half the unknowns of the (sz, C, zz) form, the same roots.

Newton-GMRES with pseudo-transient continuation
    Each step solves (1/dt - J) dX = R(X) by GMRES (J X is exact: the equations
    are quadratic; one matrix product), an implicit Euler step of the reduced
    dynamics, with dt growing as res_old / res_new until the steps are Newton
    steps (Kelley & Keyes 1998). Preconditioner: the Lyapunov part of J,
    Y -> A Y + Y A^H - Y/dt with A = i delta - Q/2 + diag(s) K^*, inverted in
    the eigenbasis of A (exact through one symmetric eigensolve of
    |S|^{1/2} K |S|^{1/2} when the equations are real and s has one sign;
    otherwise with s and delta replaced by their means in the eigenbasis of K^*).

    Why the continuation is needed, and its one safeguard: a synchronising
    ensemble has an unstable uncorrelated root, and implicit Euler with a long
    step converges to whichever root is near. While the rightmost eigenvalue a
    of A is positive (the collective pair mode grows) dt is capped at
    ``cap / a``, so that the step amplifies that mode as the dynamics does
    (by 1 / (1 - 2 cap) per step) instead of projecting it out. A root that is
    still unstable (rightmost a > threshold Q) is rejected, kicked along its
    unstable mode and continued.

Cost per GMRES iteration: five N x N matrix products (single precision while
the Newton forcing term is loose) and about fifteen O(N^2) passes; memory
~(krylov + 20) N^2 numbers.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.sparse import linalg as spla

from ..moment_equations import Couplings

__all__ = ["ReducedU1", "Jacobian", "LyapunovPreconditioner", "newton_ptc", "kick", "rightmost_mode",
           "is_physical"]


class ReducedU1:
    """The U(1) cumulant equations with <sz sz> eliminated (see module docstring).

    Parameters
    ----------
    cp : Couplings

    Attributes
    ----------
    dtype : numpy dtype
        float64 when the equations are real (g = 0, uniform delta), else complex128.
    """

    def __init__(self, cp: Couplings):
        self.cp = cp
        self.n = cp.n
        self.real = cp.real
        self.dtype = np.float64 if cp.real else np.complex128
        self.K = np.real(cp.K) if cp.real else cp.K
        self.Kc = np.real(cp.Kc) if cp.real else cp.Kc
        self.f = cp.f
        self.Q, self.D = cp.Q, cp.D
        self.ffQ = cp.f * cp.f / (2.0 * cp.Q)
        # (i delta_c - Q/2), a row scaling of C
        self.row_rate = (1j * cp.delta - 0.5 * cp.Q) if not cp.uniform_delta else None

    # ------------------------------------------------------------------ layout
    @property
    def size(self) -> int:
        """Length of the real vector seen by GMRES."""
        return self.n * self.n * (1 if self.real else 2)

    def matrix(self, v):
        """Real GMRES vector -> N x N view (no copy)."""
        v = np.ascontiguousarray(v)
        return v.reshape(self.n, self.n) if self.real else v.view(np.complex128).reshape(self.n, self.n)

    def vector(self, X):
        """N x N -> real GMRES vector (no copy when contiguous)."""
        X = np.ascontiguousarray(X, dtype=self.dtype)
        return X.ravel() if self.real else X.view(np.float64).ravel()

    def pack(self, sz, C):
        """(sz, C) -> X."""
        X = np.array(np.real(C) if self.real else C, dtype=self.dtype)
        np.fill_diagonal(X, sz)
        return X

    def split(self, X):
        """X -> (sz, C) with C's diagonal (1 + sz)/2."""
        sz = np.real(np.diagonal(X)).copy()
        C = np.array(X, dtype=self.dtype)
        np.fill_diagonal(C, 0.5 * (1.0 + sz))
        return sz, C

    # ------------------------------------------------------------------ equations
    def _rows(self, C):
        """v_c = sum_a K_ca C_ca and Re w_cd = Re(v_c - K_cd C_cd)."""
        KC = self.K * C
        v = KC.sum(axis=1)
        return v, np.real(v)[:, None] - np.real(KC)

    def residual(self, X, keep: bool = False):
        """R(X): d/dt of (sz, C) with zz slaved; diagonal d<sz>/dt.

        With ``keep`` the intermediate products are stored for :meth:`jacobian`.
        """
        sz, C = self.split(X)
        v, w = self._rows(C)
        KhC = self.Kc @ C
        f, Q, D = self.f, self.Q, self.D
        P = sz[:, None] * KhC
        P += f * ((D / (4.0 * Q)) * sz[:, None] - (w * sz[None, :]) / Q - 0.25 * np.outer(sz, sz))
        if self.real:
            P += (self.ffQ - 0.5 * Q) * C
        else:
            P += self.ffQ * np.real(C)
            P += (self.row_rate[:, None] if self.row_rate is not None else -0.5 * Q) * C
        R = P + P.conj().T
        np.fill_diagonal(R, -Q * sz + D - 4.0 * np.real(v))
        if keep:
            self._kept = (X, sz, KhC, w)
        return R

    def zz(self, X):
        """<sz_c sz_d> slaved to (sz, C) (diagonal 1)."""
        sz, C = self.split(X)
        _, w = self._rows(C)
        B = w * sz[None, :]
        zz = (self.D * (sz[:, None] + sz[None, :]) + 4.0 * self.f * np.real(C) - 4.0 * (B + B.T)) / (2.0 * self.Q)
        np.fill_diagonal(zz, 1.0)
        return zz

    def jacobian(self, X):
        """J at X as a callable on N x N matrices (uses :meth:`residual`'s kept products)."""
        kept = getattr(self, "_kept", None)
        if kept is None or kept[0] is not X:
            self.residual(X, keep=True)
        return Jacobian(self, *self._kept[1:])


class Jacobian:
    r"""J dX of :class:`ReducedU1` (exact; the equations are quadratic).

    dP = diag(s) K^* dX + diag(ds) G1 - F2 diag(ds) - diag(Re dv) F3
         + F3 o Re(K o dX) + (f o f / 2Q) o Re dX + (i delta - Q/2) o dX,
    J dX = dP + dP^H (diagonal: -Q ds - 4 Re dv), where ds = diag(dX),
    dv = rowsum(K o dX), G1 = K^* C + f o (D/4Q - s^T/2), F2 = f o Re(w)/Q +
    diag(s) K^*/2 (the latter because X holds s, not s/2, on its diagonal) and
    F3 = f o s^T / Q. ``shift`` subtracts shift * dX (pseudo-transient term).
    """

    def __init__(self, red: ReducedU1, sz, KhC, w):
        self.red = red
        f, Q, D = red.f, red.Q, red.D
        self.sz = sz
        self.G1 = KhC + f * ((D / (4.0 * Q)) - 0.5 * sz[None, :])
        self.F2 = f * w / Q + (0.5 * sz[:, None]) * red.Kc
        self.F3 = f * (sz[None, :] / Q)
        if red.real:
            self.F4 = red.ffQ + self.F3 * red.K - 0.5 * Q
        self.shift = 0.0
        self.single = False
        n = red.n
        self._P = np.empty((n, n), red.dtype)
        self._T = np.empty((n, n), red.dtype)

    def __call__(self, dX):
        red = self.red
        K, Q = red.K, red.Q
        ds = np.real(np.diagonal(dX)).copy()
        dv = np.einsum("ij,ij->i", K, dX)
        dvr = np.real(dv)
        if self.single:
            KdX = red.cp.single_precision_Kc() @ dX.astype(np.float32 if red.real else np.complex64)
        else:
            KdX = red.Kc @ dX
        P, T = self._P, self._T
        np.multiply(KdX, self.sz[:, None], out=P)
        np.multiply(self.G1, ds[:, None], out=T)
        P += T
        np.multiply(self.F2, ds[None, :], out=T)
        P -= T
        np.multiply(self.F3, dvr[:, None], out=T)
        P -= T
        if red.real:
            np.multiply(self.F4, dX, out=T)
            P += T
            if self.shift:
                P -= (0.5 * self.shift) * dX
            R = P + P.T
        else:
            P += self.F3 * np.real(K * dX) + red.ffQ * np.real(dX)
            rate = red.row_rate[:, None] if red.row_rate is not None else -0.5 * Q
            P += (rate - 0.5 * self.shift) * dX
            R = P + P.conj().T
        np.fill_diagonal(R, -(Q + self.shift) * ds - 4.0 * dvr)
        return R


class LyapunovPreconditioner:
    """Inverse of Y -> A Y + Y A^H - shift Y on the pair block; -1/(Q + shift) on <sz>.

    Parameters
    ----------
    red : ReducedU1
    floor : float
        Denominators a_i + a_j^* - shift are kept <= -floor * Q (a mode that
        grows at the current <sz> is treated as marginally damped).

    Attributes
    ----------
    a_max : float
        Rightmost Re a_i of the current eigenbasis (exact when ``exact``).
    """

    def __init__(self, red: ReducedU1, floor: float = 0.05):
        self.red = red
        self.floor = floor
        self.shift = 0.0
        self.single = False
        self.sz_used = None
        self.exact = False
        self._base = None
        self.a_max = float("nan")

    @property
    def base(self):
        """Eigen-decomposition of K^* (used when the exact form does not apply)."""
        if self._base is None:
            red = self.red
            if red.cp.has_g:
                lam, V = np.linalg.eig(red.Kc)
                self._base = (V, np.linalg.inv(V), lam)
            else:
                lam, V = np.linalg.eigh(np.real(red.K))
                self._base = (V, V.T, lam)
        return self._base

    def set_sz(self, sz):
        """Rebuild the eigenbasis of A for the current <sz> (one eigensolve)."""
        red = self.red
        cp = red.cp
        sz = np.asarray(sz, float)
        self.sz_used = sz.copy()
        if red.real and (np.all(sz > 1e-3) or np.all(sz < -1e-3)):
            # diag(s) K = sign S^{1/2} (S^{1/2} K S^{1/2}) S^{-1/2}, S = |diag(s)|
            sign = 1.0 if sz[0] > 0 else -1.0
            r = np.sqrt(np.abs(sz))
            lam, U = np.linalg.eigh(r[:, None] * red.K * r[None, :])
            V, Vi, a = r[:, None] * U, (U / r[:, None]).T, -0.5 * cp.Q + sign * lam
            self.exact = True
        else:
            V, Vi, lam = self.base
            a = 1j * np.mean(cp.delta) - 0.5 * cp.Q + float(np.mean(sz)) * lam
            self.exact = False
        self.a_max = float(np.max(np.real(a)))
        self.V, self.Vi, self.a = V, Vi, a
        self.ViH, self.VH = Vi.conj().T, V.conj().T
        c32 = np.float32 if np.isrealobj(V) else np.complex64
        self.V32, self.Vi32 = V.astype(c32), Vi.astype(c32)
        self.ViH32, self.VH32 = self.ViH.astype(c32), self.VH.astype(c32)
        self._set_den()

    def maybe_update(self, sz, tol: float = 0.02):
        if self.sz_used is None or np.max(np.abs(sz - self.sz_used)) > tol:
            self.set_sz(sz)

    def set_shift(self, shift):
        if float(shift) != self.shift:
            self.shift = float(shift)
            if self.sz_used is not None:
                self._set_den()

    def _set_den(self):
        a = self.a
        den = a[:, None] + np.conj(a)[None, :]
        floor = -self.floor * self.red.Q
        if np.isrealobj(den):
            den = np.minimum(den - self.shift, floor)
        else:
            den = np.minimum(den.real - self.shift, floor) + 1j * den.imag
        self.inv_den = 1.0 / den
        self.inv_den32 = self.inv_den.astype(np.float32 if np.isrealobj(den) else np.complex64)

    def __call__(self, R):
        """Approximate solution Y of (J - shift) Y = R (R, Y: N x N)."""
        red = self.red
        rs = np.real(np.diagonal(R)).copy()
        if self.single:
            # a preconditioner only has to be approximate: single precision halves
            # the cost of its four products while the Newton forcing is loose
            Rc = R.astype(np.float32 if red.real else np.complex64)
            np.fill_diagonal(Rc, 0.0)
            Yh = self.Vi32 @ Rc @ self.ViH32
            Yh = Yh * self.inv_den32
            Y = self.V32 @ Yh @ self.VH32
        else:
            Rc = R.copy()
            np.fill_diagonal(Rc, 0.0)
            Yh = self.Vi @ Rc @ self.ViH
            Yh = Yh * self.inv_den
            Y = self.V @ Yh @ self.VH
        if red.real and np.iscomplexobj(Y):
            Y = Y.real
        # round-off breaks the (Hermitian) symmetry the equations rely on
        out = np.empty((red.n, red.n), red.dtype)
        np.add(Y, Y.conj().T, out=out)
        out *= 0.5
        np.fill_diagonal(out, rs / (-red.Q - self.shift))
        return out


def rightmost_mode(cp: Couplings, sz, vectors: bool = False):
    """Rightmost eigenvalue of A = i delta - Q/2 + diag(sz) K^* (and its eigenvector)."""
    sz = np.asarray(sz, float)
    diag = 1j * cp.delta - 0.5 * cp.Q
    n = cp.n
    if n > 200:
        op = spla.LinearOperator((n, n), matvec=lambda v: diag * v + sz * (cp.Kc @ v), dtype=complex)
        try:
            out = spla.eigs(op, k=1, which="LR", tol=1e-6, ncv=40, maxiter=2000,
                            return_eigenvectors=vectors)
            if vectors:
                return float(out[0][0].real), out[1][:, 0]
            return float(np.max(out.real))
        except spla.ArpackNoConvergence:
            pass
    A = sz[:, None] * cp.Kc + np.diag(diag)
    if vectors:
        lam, V = np.linalg.eig(A)
        k = int(np.argmax(lam.real))
        return float(lam[k].real), V[:, k]
    return float(np.max(np.linalg.eigvals(A).real))


def is_physical(sz, C, zz, tol: float = 1e-6) -> bool:
    """docs/physics.md#pitfall-cumulant-roots: reject roots with |sz| > 1, |C_ab| > 1/2 or |zz| > 1."""
    n = len(sz)
    off = ~np.eye(n, dtype=bool)
    return bool(np.all(np.abs(sz) <= 1 + tol) and np.all(np.abs(C[off]) <= 0.5 + tol)
                and np.all(np.abs(zz[off]) <= 1 + tol))


def _looks_physical(X, tol=1e-3):
    n = X.shape[0]
    if np.any(np.abs(np.diagonal(X)) > 1 + tol):
        return False
    # |C_cd| <= 1/2 off the diagonal (the diagonal holds sz, |sz| <= 1 checked above)
    big = np.abs(X) > 0.5 + tol
    return int(np.count_nonzero(big)) == int(np.count_nonzero(np.diagonal(big)))


def newton_ptc(red: ReducedU1, X, pre: LyapunovPreconditioner, tol, maxiter, krylov, dt, cap,
               log, report=None):
    """Newton-GMRES from X; pseudo-transient continuation while ``dt`` is not None.

    Returns (X, residual, number of residual evaluations, GMRES iterations).
    """
    t_start = time.perf_counter()
    Q = red.Q
    fx = red.residual(X, keep=True)
    res = float(np.max(np.abs(fx)))
    nfev, nkrylov = 1, 0
    size = red.size
    for it in range(maxiter):
        if res <= tol:
            break
        # forcing: loose far away; near the root just tight enough for one more step
        eta = min(1e-2, max(res, 0.01 * tol / res, 1e-10))
        pre.maybe_update(np.real(np.diagonal(X)))
        if dt is not None and pre.a_max > 0.01 * Q:
            dt = min(dt, cap / pre.a_max)
        growing = pre.a_max > 0.01 * Q
        shift = 0.0 if dt is None or (dt > 1e6 and not growing) or (res < 1e-6 and not growing) else 1.0 / dt
        jac = red.jacobian(X)
        jac.shift = shift
        jac.single = pre.single = eta > 1e-5
        pre.set_shift(shift)
        J = spla.LinearOperator((size, size), dtype=float,
                                matvec=lambda v: red.vector(jac(red.matrix(v))))
        M = spla.LinearOperator((size, size), dtype=float,
                                matvec=lambda v: red.vector(pre(red.matrix(v))))
        count = [0]

        def cb(_):
            count[0] += 1

        dxv, _ = spla.gmres(J, -red.vector(fx), M=M, rtol=eta, atol=0.0, restart=krylov,
                            maxiter=20, callback=cb, callback_type="pr_norm")
        nkrylov += count[0]
        dX = red.matrix(dxv)
        if shift:
            Xn = X + dX
            fn = red.residual(Xn, keep=True)
            nfev += 1
            rn = float(np.max(np.abs(fn)))
            if rn > 10.0 * res or not _looks_physical(Xn):
                dt *= 0.25       # too bold: retry from X with a shorter step
                lam = 0.0
            else:
                dt *= min(res / max(rn, 1e-300), 10.0)
                lam = 1.0
                X, fx, res = Xn, fn, rn
        else:
            lam = 1.0
            for _ in range(12):
                Xn = X + lam * dX
                fn = red.residual(Xn, keep=True)
                nfev += 1
                rn = float(np.max(np.abs(fn)))
                if rn < res or rn <= tol:
                    break
                lam *= 0.5
            X, fx, res = Xn, fn, rn
            if dt is not None:
                dt *= 10.0
        log.append(res)
        if report is not None:
            report(f"Newton {it + 1}: residual {res:.3e}, GMRES {count[0]}, step {lam:g}"
                   + (f", dt {1.0 / shift:.3g}" if shift else "")
                   + f", max Re a / Q {pre.a_max / Q:.3f}, {time.perf_counter() - t_start:.1f} s")
    pre.set_shift(0.0)
    return X, res, nfev, nkrylov


def kick(red: ReducedU1, X, vec, amplitude: float = 0.05):
    """Add a pair correlation along the unstable mode: C += eps v v^H, max |eps v_a v_b| = amplitude."""
    vec = np.asarray(vec)
    eps = amplitude / max(float(np.max(np.abs(vec)) ** 2), 1e-300)
    dC = eps * np.outer(vec, np.conj(vec))
    if red.real:
        dC = dC.real
    np.fill_diagonal(dC, 0.0)
    return X + dC
