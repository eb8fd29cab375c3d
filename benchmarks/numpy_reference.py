"""Plain NumPy classical precoders: the outside reference of ``mimofm bench classical``.

Not part of the package and deliberately written as a careful engineer would write them in NumPy, without
mimofm's kernels: batched ``np.linalg`` calls on the ``K × K`` Gram matrix, vectorised water-filling and
μ bisection. The WMMSE here is *batch-synchronous*: the whole batch iterates until its last sample meets
the stopping rule, which is how a batched NumPy loop is usually written. It starts, like mimofm's, from the
best of ZF-WF, RZF (α = K) and MRT, and returns the best iterate, so both give the same sum rates.

Every function takes the SNR-scaled channel ``h`` ``[B, K, N]`` (unit power, unit noise), computes in
``h``'s precision (complex64 → float32 maths, complex128 → float64), and returns ``W`` ``[B, N, K]`` with
``‖W‖_F² = 1``.
"""

from __future__ import annotations

import numpy as np

BISECTION_STEPS = 64


def gram(h: np.ndarray) -> np.ndarray:
    """``H H^H``: ``[B, K, N]`` -> ``[B, K, K]``."""
    return h @ h.conj().transpose(0, 2, 1)


def _unit_power(w: np.ndarray) -> np.ndarray:
    p = np.sum(w.real**2 + w.imag**2, axis=(1, 2))
    return w / np.sqrt(np.where(p > 0, p, 1.0))[:, None, None]


def sum_rate(h: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Sum rate ``[B]`` (bit/s/Hz, unit noise) of ``W`` ``[B, N, K]`` on ``h`` ``[B, K, N]``."""
    p = np.abs(h @ w) ** 2
    s = np.diagonal(p, axis1=1, axis2=2)
    return np.log2(1.0 + s / (p.sum(-1) - s + 1.0)).sum(-1)


def water_filling(floors: np.ndarray, budget: float = 1.0) -> np.ndarray:
    """``q_k = (ν − f_k)^+`` with ``Σ q_k = budget``, vectorised over the batch: ``[B, K]`` -> ``[B, K]``."""
    f = np.sort(floors, axis=-1)
    m = np.arange(1, f.shape[-1] + 1)
    levels = (budget + np.cumsum(f, -1)) / m
    n = np.maximum((levels > f).sum(-1), 1)
    nu = np.take_along_axis(levels, (n - 1)[:, None], -1)
    return np.maximum(nu - floors, 0.0)


def zf_wf(h: np.ndarray) -> np.ndarray:
    """Zero forcing with water-filling powers."""
    ginv = np.linalg.inv(gram(h))
    c = np.real(np.diagonal(ginv, axis1=1, axis2=2))
    q = water_filling(c)
    w = (h.conj().transpose(0, 2, 1) @ ginv) * np.sqrt(q / c)[:, None, :]
    return _unit_power(w)


def rzf(h: np.ndarray, alpha: float | None = None) -> np.ndarray:
    """Regularised ZF, ``α = K`` (unit power and noise), one global power scale."""
    k = h.shape[1]
    a = float(k) if alpha is None else alpha
    x = np.linalg.inv(gram(h) + a * np.eye(k, dtype=h.dtype))
    return _unit_power(h.conj().transpose(0, 2, 1) @ x)


def zf(h: np.ndarray) -> np.ndarray:
    """Zero forcing, one global power scale."""
    return _unit_power(h.conj().transpose(0, 2, 1) @ np.linalg.inv(gram(h)))


def rzf_eq(h: np.ndarray) -> np.ndarray:
    """Regularised ZF, ``α = K``, every column at power ``1/K`` (equal power per user)."""
    k = h.shape[1]
    w = h.conj().transpose(0, 2, 1) @ np.linalg.inv(gram(h) + k * np.eye(k, dtype=h.dtype))
    return w / np.sqrt(k * np.sum(w.real**2 + w.imag**2, axis=1, keepdims=True))


def mrt(h: np.ndarray) -> np.ndarray:
    """Maximum-ratio transmission."""
    return _unit_power(h.conj().transpose(0, 2, 1))


def _rates_x(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    p = np.abs(g @ x) ** 2
    s = np.diagonal(p, axis1=1, axis2=2)
    return np.log2(1.0 + s / (p.sum(-1) - s + 1.0)).sum(-1)


def _normalise_x(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    p = np.real(np.einsum("bik,bij,bjk->b", x.conj(), g, x))
    return x / np.sqrt(np.where(p > 0, p, 1.0))[:, None, None]


def _wmmse_step(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    """One user-space WMMSE update ``X -> X'`` (``W = H^H X``) with the exact power constraint."""
    e = g @ x
    p = np.abs(e) ** 2
    s = np.diagonal(p, axis1=1, axis2=2)
    interf = p.sum(-1) - s + 1.0
    u = np.diagonal(e, axis1=1, axis2=2) / (interf + s)
    v = (interf + s) / interf
    d = v * np.abs(u) ** 2
    c = np.sqrt(v) * np.exp(1j * np.angle(u))
    sd = np.sqrt(d)
    lam, q = np.linalg.eigh(sd[:, :, None] * g * sd[:, None, :])
    lam = np.maximum(lam, 0.0)
    phi = q.conj().transpose(0, 2, 1) * c[:, None, :]
    a = lam * np.sum(np.abs(phi) ** 2, -1)
    pos = lam > lam.max(-1, keepdims=True) * 1e-12
    lam_s = np.where(pos, lam, 1.0)

    def f(mu):
        return np.where(pos, a / (lam_s + mu[:, None]) ** 2, 0.0).sum(-1)

    lo = np.zeros(len(g))
    hi = np.sqrt(a.sum(-1))
    need = f(lo) > 1.0
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        over = f(mid) > 1.0
        lo = np.where(over, mid, lo)
        hi = np.where(over, hi, mid)
    mu = np.where(need, hi, 0.0)
    inv = np.where(pos, 1.0 / (lam_s + mu[:, None]), 0.0)
    return (sd[:, :, None] * (q * inv[:, None, :])) @ phi


def wmmse(h: np.ndarray, tol: float = 1e-3, max_iter: int = 100, iterations: int | None = None):
    """Batch-synchronous user-space WMMSE. ``iterations``: run exactly that many updates (truncated).

    Returns ``(W [B, N, K], iterations run)``.
    """
    g = gram(h)
    k = h.shape[1]
    eye = np.eye(k, dtype=h.dtype)
    starts = [np.linalg.inv(g) @ (h @ zf_wf(h)), np.linalg.inv(g + k * eye), np.broadcast_to(eye, g.shape)]
    starts = [_normalise_x(g, x) for x in starts]
    r0 = np.stack([_rates_x(g, x) for x in starts])
    x = np.stack(starts)[r0.argmax(0), np.arange(len(g))]
    r = r0.max(0)
    best_x, best_r = x, r
    n_iter = max_iter if iterations is None else iterations
    done = 0
    for _ in range(n_iter):
        done += 1
        x = _wmmse_step(g, x)
        rn = _rates_x(g, x)
        better = rn > best_r
        best_x = np.where(better[:, None, None], x, best_x)
        best_r = np.where(better, rn, best_r)
        if iterations is None and np.all(np.abs(rn - r) <= tol * np.abs(r)):
            break
        r = rn
    return _unit_power(h.conj().transpose(0, 2, 1) @ best_x), done


REFERENCES = {
    "zf": zf,
    "zf-wf": zf_wf,
    "rzf": rzf,
    "rzf-eq": rzf_eq,
    "mrt": mrt,
    "wmmse": lambda h: wmmse(h)[0],
    "wmmse-1": lambda h: wmmse(h, iterations=1)[0],
    "wmmse-3": lambda h: wmmse(h, iterations=3)[0],
    "wmmse-10": lambda h: wmmse(h, iterations=10)[0],
}
"""mimofm precoder name -> the NumPy reference of the same algorithm (``h [B, K, N]`` -> ``W [B, N, K]``)."""
