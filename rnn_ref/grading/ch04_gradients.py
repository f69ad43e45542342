r"""Checks for the assignment ch04_gradients (Jacobians through time, clipping, initialisation).

Each ``check_*`` takes the student's function and ``seeds``, runs it on random cases (N = 1,
T = 1, H != D, both nonlinearities, spectral radii of ``W_hh`` below and above 1, and the edge
cases each part names), and raises :class:`GradingError` naming the first problem. Expected
values come from a trusted copy of :mod:`rnn_ref.numpy` (``jacobian_product`` with ``k = 1`` is
the step Jacobian :math:`\mathrm{diag}(\phi'(a_t)) W_{hh}`), and only outside recording (see
``_expected``). The initialisations are random, so ``orthogonal_init`` is checked by its
properties (orthogonality, gain, reproducible from ``rng``, spread over the orthogonal group),
not entry by entry.
"""

from __future__ import annotations

import numpy as _np

from . import assert_array, assert_close
from ._cases import call_in_case as _call
from ._cases import expected as _expected
from ._guard import GradingError, restore_numpy, seal

__all__ = [
    "check_step_jacobian",
    "check_jacobian_norms",
    "check_clip_by_norm",
    "check_clip_by_value",
    "check_orthogonal_init",
    "check_identity_init",
]

NONLINEARITIES = ("tanh", "relu")
# (N, D, H, spectral radius of W_hh): batch of one, H != D, D = 1, radii below and above 1.
STEP_CASES = ((3, 4, 6, 0.9), (1, 3, 2, 1.5), (2, 5, 5, 0.5), (4, 1, 7, 1.2))
# (N, T, D, H, spectral radius of W_hh); T = 1 has the single lag k = 0.
NORM_CASES = ((3, 6, 4, 5, 0.9), (1, 8, 3, 3, 1.5), (2, 1, 2, 4, 1.2), (4, 5, 1, 6, 0.5))


def _ctx(label: str = "", **shape) -> str:
    parts = [label] if label else []
    return ", ".join(parts + [f"{k}={v}" for k, v in shape.items()])


def _w_hh(rng, H: int, radius: float):
    """A Gaussian (H, H) matrix rescaled to spectral radius ``radius``."""
    A = rng.normal(0.0, 1.0 / _np.sqrt(H), (H, H))
    return A * (radius / _np.max(_np.abs(_np.linalg.eigvals(A))))


def _params(rng, D: int, H: int, radius: float):
    return {
        "W_xh": rng.normal(0.0, 1.0 / _np.sqrt(D), (H, D)),
        "W_hh": _w_hh(rng, H, radius),
        "b_h": rng.normal(0.0, 0.3, H),
    }


# ---------------------------------------------------------------------------------------------
# Part 1: the step Jacobian
# ---------------------------------------------------------------------------------------------


def _step_hint(J, x, h_prev, params, nonlinearity) -> str:
    """Name a common mistake when the student's J equals it (grader side only)."""
    W = params["W_hh"]
    a = x @ params["W_xh"].T + h_prev @ W.T + params["b_h"]
    if nonlinearity == "tanh":
        d = 1.0 - _np.tanh(a) ** 2
        d_kink = d
    else:
        d, d_kink = (a > 0).astype(float), (a >= 0).astype(float)
    candidates = [
        (d[:, :, None] * W.T, "W_hh looks transposed: J[n, i, j] is dh[i]/dh_prev[j]"),
        (
            W[None] * d[:, None, :],
            "phi'(a) scales the columns of W_hh instead of its rows: J = diag(phi'(a)) W_hh",
        ),
        (_np.broadcast_to(W, J.shape), "the derivative phi'(a) of the nonlinearity is missing"),
    ]
    if nonlinearity == "relu":
        candidates.append((d_kink[:, :, None] * W, "relu'(0) must be 0 (a unit at a = 0 is off)"))
    for candidate, hint in candidates:
        if candidate.shape == J.shape and _np.allclose(J, candidate, rtol=1e-6, atol=1e-9):
            return f"; hint: {hint}"
    return ""


def _check_J(J, x, h_prev, params, nonlinearity, context) -> None:
    N, H = h_prev.shape
    J = assert_array("J", J, (N, H, H))
    expected = _expected("jacobian_product", x[:, None, :], h_prev, params, 1, nonlinearity)
    if expected is None:
        return
    try:
        assert_close("J", J, expected, dims=("n", "i", "j"), rtol=1e-6, atol=1e-9, context=context)
    except GradingError as e:
        hint = _step_hint(_np.asarray(J, dtype=float), x, h_prev, params, nonlinearity)
        raise GradingError(f"{e}{hint}") from None


def check_step_jacobian(step_jacobian, seeds=(0, 1, 2, 3)) -> None:
    """J[n] = diag(phi'(a[n])) W_hh, (N, H, H), for tanh and relu on every case, then relu
    with pre-activations exactly 0 (relu'(0) = 0)."""
    restore_numpy()
    for seed, (N, D, H, radius) in zip(seeds, STEP_CASES, strict=False):
        rng = _np.random.default_rng(seed)
        params = _params(rng, D, H, radius)
        x = rng.normal(0.0, 1.0, (N, D))
        h_prev = rng.normal(0.0, 0.5, (N, H))
        for nonlinearity in NONLINEARITIES:
            ctx = _ctx(nonlinearity, N=N, D=D, H=H, rho_W_hh=radius, seed=seed)
            args = (x, h_prev, params, nonlinearity)
            J = _call("step_jacobian", step_jacobian, *args, context=ctx, autograd=True)
            _check_J(J, *args, ctx)
    # x = 0 and h_prev = 0 give a = b_h exactly; half the units sit at the kink of relu.
    rng = _np.random.default_rng(seeds[0] if seeds else 0)
    N, D, H = 2, 3, 4
    params = _params(rng, D, H, 1.2)
    params["b_h"] = _np.array([0.0, 0.5, 0.0, -0.5])
    x, h_prev = _np.zeros((N, D)), _np.zeros((N, H))
    ctx = "relu with some pre-activations exactly 0"
    args = (x, h_prev, params, "relu")
    J = _call("step_jacobian", step_jacobian, *args, context=ctx, autograd=True)
    _check_J(J, *args, ctx)


# ---------------------------------------------------------------------------------------------
# Part 2: Jacobian norms over time lags
# ---------------------------------------------------------------------------------------------


def _norms_hint(norms, expected) -> str:
    err = _np.abs(_np.asarray(norms, dtype=float) - expected)
    wrong = _np.flatnonzero(err > 1e-9 + 1e-6 * _np.abs(expected))
    if wrong.size == 0:
        return ""
    k = int(wrong[0])
    if k == 0:
        return "; norms[0] is the norm of the empty product (the identity)"
    if k == 1:
        return (
            "; norms[1] is the (batch-mean) norm of one step Jacobian, that of the last step "
            "J_T: check the step Jacobian and which time step it is taken at"
        )
    return (
        f"; norms[0] and norms[1] are right, the first wrong lag is k={k}: check how the "
        "product J_T J_(T-1) ... J_(T-k+1) is built (the order of the factors, their time steps)"
    )


def _check_norms(fn, x, h0, params, nonlinearity, context) -> None:
    T = x.shape[1]
    args = (x, h0, params, nonlinearity)
    norms = _call("jacobian_norms", fn, *args, context=context, autograd=True)
    norms = assert_array("norms", norms, (T,))
    expected = _expected("jacobian_norms", x, h0, params, nonlinearity)
    if expected is None:
        return
    try:
        assert_close("norms", norms, expected, dims=("k",), rtol=1e-6, atol=1e-9, context=context)
    except GradingError as e:
        raise GradingError(f"{e}{_norms_hint(norms, expected)}") from None


def check_jacobian_norms(jacobian_norms, seeds=(10, 11, 12, 13)) -> None:
    """norms[k] = mean over n of ||dh_T/dh_(T-k)||_2, k = 0 .. T-1: tanh and relu on every case,
    relu at the kink (all pre-activations 0: every lag k >= 1 has norm 0), and an exploding relu
    (all units active, norms growing like rho^k)."""
    restore_numpy()
    for seed, (N, T, D, H, radius) in zip(seeds, NORM_CASES, strict=False):
        rng = _np.random.default_rng(seed)
        params = _params(rng, D, H, radius)
        x = rng.normal(0.0, 1.0, (N, T, D))
        h0 = rng.normal(0.0, 0.5, (N, H))
        for nonlinearity in NONLINEARITIES:
            ctx = _ctx(nonlinearity, N=N, T=T, D=D, H=H, rho_W_hh=radius, seed=seed)
            _check_norms(jacobian_norms, x, h0, params, nonlinearity, ctx)
    rng = _np.random.default_rng(seeds[0] if seeds else 0)
    N, T, D, H = 2, 5, 3, 4
    params = _params(rng, D, H, 1.5)
    params["b_h"] = _np.zeros(H)
    zeros = (_np.zeros((N, T, D)), _np.zeros((N, H)))
    ctx = "relu from h0 = 0 with zero inputs and bias (every pre-activation is 0)"
    _check_norms(jacobian_norms, *zeros, params, "relu", ctx)
    # A positive W_hh, state and bias keep every relu unit active: the product is W_hh^k.
    W = _np.abs(params["W_hh"])
    params["W_hh"] = W * (1.5 / _np.max(_np.abs(_np.linalg.eigvals(W))))
    params["b_h"] = _np.full(H, 0.1)
    h0 = _np.abs(rng.normal(0.0, 1.0, (N, H)))
    ctx = "relu with every unit active (the norms grow with the lag)"
    _check_norms(jacobian_norms, zeros[0], h0, params, "relu", ctx)


# ---------------------------------------------------------------------------------------------
# Parts 3 and 4: clipping
# ---------------------------------------------------------------------------------------------


def _global_norm(grads) -> float:
    return float(_np.sqrt(sum(float(_np.sum(g * g)) for g in grads.values())))


def _norm_cases(rng):
    """(label, grads, max_norm) covering the cases the assignment names."""
    H, D, V = 4, 3, 5
    rnn = {
        "W_xh": rng.normal(0.0, 2.0, (H, D)),
        "W_hh": rng.normal(0.0, 2.0, (H, H)),
        "b_h": rng.normal(0.0, 2.0, H),
    }
    norm = _global_norm(rnn)
    many = {
        "W_x": rng.normal(0.0, 1.0, (4 * H, D)),
        "W_h": rng.normal(0.0, 1.0, (4 * H, H)),
        "b": rng.normal(0.0, 1.0, 4 * H),
        "W_hy": rng.normal(0.0, 1.0, (V, H)),
        "b_y": rng.normal(0.0, 1.0, V),
        "emb": rng.normal(0.0, 1.0, (2, 3, 4)),
        "scale": rng.normal(0.0, 1.0, (1, 1)),
    }
    # Eight arrays of norm 0.5 each: every one is below max_norm = 1, together they are not.
    small = {f"g{i}": rng.normal(0.0, 1.0, (i + 1, 3)) for i in range(8)}
    small = {k: 0.5 * g / _np.sqrt(_np.sum(g * g)) for k, g in small.items()}
    single = {"w": rng.normal(0.0, 1.0, 7)}
    return [
        ("global norm above max_norm", rnn, 0.3 * norm),
        ("global norm below max_norm (nothing to clip)", rnn, 2.0 * norm),
        ("an all-zero gradient", {k: _np.zeros_like(g) for k, g in rnn.items()}, 1.0),
        ("a single array", single, 0.5 * _global_norm(single)),
        ("many arrays of different shapes", many, 1.0),
        ("eight arrays each below max_norm, together above it", small, 1.0),
    ]


def _clipped_dict(name: str, clipped, grads):
    if not isinstance(clipped, dict):
        raise GradingError(f"{name} should return a dict of arrays, got {type(clipped).__name__}")
    if set(clipped) != set(grads):
        raise GradingError(
            f"{name} should return a dict with the same keys as grads; "
            f"got keys {sorted(clipped)} for grads with keys {sorted(grads)}"
        )
    return {k: assert_array(f"clipped[{k!r}]", clipped[k], grads[k].shape) for k in grads}


def _matches(clipped, candidate) -> bool:
    return all(_np.allclose(clipped[k], c, rtol=1e-5, atol=1e-8) for k, c in candidate.items())


def _clip_norm_hint(clipped, grads, max_norm) -> str:
    """Name a common mistake when the student's result equals it (grader side only)."""
    norm = _global_norm(grads)
    per_array = {
        k: g * min(1.0, max_norm / (float(_np.sqrt(_np.sum(g * g))) + 1e-6))
        for k, g in grads.items()
    }
    if _matches(clipped, per_array):
        return (
            "; hint: each array was clipped with its own norm, but the norm is one number "
            "over all the arrays of the dict together"
        )
    if norm > 0 and _matches(clipped, {k: g * (max_norm / norm) for k, g in grads.items()}):
        return "; hint: a gradient shorter than max_norm must come back unchanged, not scaled up"
    return ""


def check_clip_by_norm(clip_by_norm, seeds=(20, 21, 22)) -> None:
    """(clipped, total_norm) like torch.nn.utils.clip_grad_norm_: one global norm over every
    array, scaled by min(1, max_norm / (total_norm + 1e-6)); below the threshold unchanged."""
    restore_numpy()
    for seed in seeds:
        for label, grads, max_norm in _norm_cases(_np.random.default_rng(seed)):
            ctx = f"{label}, {len(grads)} array(s), max_norm={max_norm:.3g}, seed={seed}"
            result = _call("clip_by_norm", clip_by_norm, grads, max_norm, context=ctx)
            if not (isinstance(result, tuple) and len(result) == 2):
                got = type(result).__name__
                if isinstance(result, tuple):
                    got = f"a tuple of {len(result)}"
                raise GradingError(
                    f"clip_by_norm should return (clipped, total_norm), a tuple of two; got {got}"
                )
            clipped = _clipped_dict("clip_by_norm", result[0], grads)
            total = assert_array("total_norm", result[1], ())
            expected = _expected("clip_by_norm", grads, max_norm)
            if expected is None:
                continue
            assert_close("total_norm", total, expected[1], rtol=1e-6, atol=1e-9, context=ctx)
            try:
                for k in grads:
                    dims = tuple(f"i{j}" for j in range(grads[k].ndim))
                    name = f"clipped[{k!r}]"
                    assert_close(
                        name, clipped[k], expected[0][k], dims=dims, atol=1e-8, context=ctx
                    )
            except GradingError as e:
                raise GradingError(f"{e}{_clip_norm_hint(clipped, grads, max_norm)}") from None


def _value_cases(rng):
    grads = {
        "W_xh": rng.normal(0.0, 2.0, (4, 3)),
        "W_hh": rng.normal(0.0, 2.0, (4, 4)),
        "b_h": rng.normal(0.0, 2.0, 4),
    }
    many = {
        "W_x": rng.normal(0.0, 1.0, (8, 2)),
        "emb": rng.normal(0.0, 1.0, (2, 3, 4)),
        "b": rng.normal(0.0, 1.0, 8),
    }
    return [
        ("entries beyond both -clip_value and clip_value", grads, 0.5),
        ("a single array", {"w": rng.normal(0.0, 3.0, 9)}, 1.0),
        ("arrays of different shapes", many, 0.8),
        ("clip_value above every entry (nothing to clip)", grads, 100.0),
    ]


def check_clip_by_value(clip_by_value, seeds=(30, 31)) -> None:
    """Every entry clipped to [-clip_value, clip_value], both signs, any shapes."""
    restore_numpy()
    for seed in seeds:
        for label, grads, clip_value in _value_cases(_np.random.default_rng(seed)):
            ctx = f"{label}, clip_value={clip_value:.3g}, seed={seed}"
            result = _call("clip_by_value", clip_by_value, grads, clip_value, context=ctx)
            clipped = _clipped_dict("clip_by_value", result, grads)
            expected = _expected("clip_by_value", grads, clip_value)
            if expected is None:
                continue
            for k in grads:
                dims = tuple(f"i{j}" for j in range(grads[k].ndim))
                name = f"clipped[{k!r}]"
                assert_close(name, clipped[k], expected[k], dims=dims, atol=1e-12, context=ctx)


# ---------------------------------------------------------------------------------------------
# Parts 5 and 6: initialisation
# ---------------------------------------------------------------------------------------------

# (H, gain); None: call without gain, so the default 1.0 is used.
ORTHO_CASES = ((1, 1.0), (2, None), (5, 2.0), (16, 0.5), (7, 1.0))
SPREAD_DRAWS = 24  # matrices drawn (H = 3) to check they are spread over the orthogonal group


def _ortho(fn, H, seed, gain):
    args = (H, _np.random.default_rng(seed)) + (() if gain is None else (gain,))
    g = "not given" if gain is None else gain
    W = _call("orthogonal_init", fn, *args, context=f"H={H}, gain={g}")
    return assert_array("W", W, (H, H)).astype(float)


def check_orthogonal_init(orthogonal_init, seeds=(40, 41)) -> None:
    """W W^T = W^T W = gain^2 I (singular values all gain), the same seed gives the same matrix,
    different seeds different ones, not a signed permutation, and over many seeds both
    determinant signs and both signs of W[0, 0] occur (the matrices are spread out)."""
    restore_numpy()
    base = seeds[0] if seeds else 0
    for i, (H, gain) in enumerate(ORTHO_CASES):
        seed = (seeds[i % len(seeds)] if seeds else 0) * 100 + i
        g = 1.0 if gain is None else gain
        ctx = f"H={H}, gain={g}" + (" (the default)" if gain is None else "") + f", seed={seed}"
        W = _ortho(orthogonal_init, H, seed, gain)
        eye, tol = g * g * _np.eye(H), 1e-8 * max(1.0, g * g)
        assert_close("W @ W.T", W @ W.T, eye, dims=("i", "j"), atol=tol, rtol=0, context=ctx)
        assert_close("W.T @ W", W.T @ W, eye, dims=("i", "j"), atol=tol, rtol=0, context=ctx)
        s = _np.linalg.svd(W, compute_uv=False)
        assert_close("singular values of W", s, _np.full(H, g), atol=tol, rtol=0, context=ctx)
        again = _ortho(orthogonal_init, H, seed, gain)
        if not _np.array_equal(W, again):
            raise GradingError(
                f"orthogonal_init returned different matrices for two generators with the same "
                f"seed ({ctx}): draw every random number from rng, not from np.random"
            )
        if H > 1:
            other = _ortho(orthogonal_init, H, seed + 1, gain)
            if _np.allclose(W, other):
                raise GradingError(
                    f"orthogonal_init returned the same matrix for generators with different "
                    f"seeds ({ctx}): the matrix must be drawn at random from rng"
                )
            if _np.count_nonzero(_np.abs(W) > 1e-9 * g) <= H:
                raise GradingError(
                    f"W has a single non-zero entry per row ({ctx}): that is a signed "
                    "permutation (like the identity), not a random orthogonal matrix"
                )
    dets, corner = [], []
    for s in range(SPREAD_DRAWS):
        W = _ortho(orthogonal_init, 3, 1000 * base + s, None)
        dets.append(_np.linalg.det(W))
        corner.append(W[0, 0])
    n_pos = sum(d > 0 for d in dets)
    if n_pos in (0, SPREAD_DRAWS):
        sign = "+1" if n_pos else "-1"
        raise GradingError(
            f"over {SPREAD_DRAWS} seeds (H=3) every matrix from orthogonal_init has determinant "
            f"{sign}: a random orthogonal matrix has determinant +1 or -1 with equal chance. "
            "If you use a QR factorisation, fix the signs of Q's columns (see the recipe)"
        )
    n_pos = sum(c > 0 for c in corner)
    if not 4 <= n_pos <= SPREAD_DRAWS - 4:
        raise GradingError(
            f"over {SPREAD_DRAWS} seeds (H=3) W[0, 0] was positive {n_pos} times: the entries of a "
            "random orthogonal matrix are positive or negative with equal chance. "
            "If you use a QR factorisation, fix the signs of Q's columns (see the recipe)"
        )


def check_identity_init(identity_init, seeds=(50, 51, 52)) -> None:
    """scale * I exactly: the default scale 1 (H = 1 and H = 3), then scales drawn from seeds."""
    restore_numpy()
    cases = [(1, None), (3, None)]
    for i, seed in enumerate(seeds):
        rng = _np.random.default_rng(seed)
        cases.append((2 + 3 * i, float(rng.uniform(0.2, 2.0))))
    for H, scale in cases:
        args = (H,) if scale is None else (H, scale)
        given = "scale not given (default 1)" if scale is None else f"scale={scale:.4g}"
        ctx = f"H={H}, {given}"
        W = _call("identity_init", identity_init, *args, context=ctx)
        W = assert_array("W", W, (H, H))
        expected = _expected("identity_init", *args)
        if expected is None:
            continue
        assert_close("W", W, expected, dims=("i", "j"), atol=1e-12, rtol=0, context=ctx)


seal(__name__)
