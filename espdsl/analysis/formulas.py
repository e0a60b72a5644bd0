"""The paper's Fig. 3g: each module's formulas for parameters, memory and receptive field, and
the values the paper prints beside them.

Symbols: ``M``, ``N`` input and output channels, ``n`` kernel size, ``K`` branches (width
divider), ``d = N // K``, ``g`` groups, ``W``, ``H`` the feature map size. Memory formulas count
values (the figure multiplies by 4 bytes and divides by 2^20 for MB). Receptive fields are the
side of the square field. ResNet's basic block is not in Fig. 3g; its formulas are the usual
ones (two n x n convolutions M -> N -> N), with nothing printed.

The blocks beyond ESPNet have their papers' formulas, with nothing printed: the inverted
residual (MobileNetV2, Table 1: ``tM(M + n^2 + N)``), squeeze-and-excitation (``2MS``, S the
squeezed channels), the ShuffleNetV2 unit (stride 1: three convolutions on N / 2 channels),
EESP (ESPNetv2, Sec. 3.1: ``Md/g + (n^2 + d)dK`` with g = K groups) and its strided form in
the down-sampler, ERFNet's
non-bottleneck-1D (Table 1: ``12 M^2`` for M = N, two 3x1 and two 1x3 convolutions) and
down-sampler, and torchvision's ResNet basic block. Their memory column counts the same Fig. 3g
way (outputs of the convolutions, stride 1 unless the block is a down-sampler). ``settings``
are the values a module needs beyond Fig. 3g's (a down-sampler concatenating its pooled input
needs N > M: N = 2M). Only Fig. 3g's seven modules are compared by default.

>>> f = FORMULAS["mobilenet"]
>>> f.params(FIG3G_ENV), f.paper.params
(10900, 11009)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

Env = dict[str, int]

# Fig. 3g: "Here, M = N = 100, n = 3, K = 5, d = N/K = 20, g = 2, and W = H = 56."
FIG3G_PARAMS: dict[str, int] = {"M": 100, "N": 100, "n": 3, "K": 5, "g": 2}
FIG3G_SIZE = (56, 56)
FIG3G_ENV: Env = {**FIG3G_PARAMS, "d": 20, "W": 56, "H": 56}
BYTES_PER_VALUE = 4
MB = 2 ** 20


@dataclass(frozen=True)
class Printed:
    """The numbers Fig. 3g prints for a module (memory in MB, receptive field side)."""

    params: int
    memory_mb: float
    rf: int


@dataclass(frozen=True)
class Formula:
    """One row of Fig. 3g: the formulas as the paper writes them, and as functions."""

    module: str
    params_text: str
    memory_text: str
    rf_text: str
    params: Callable[[Env], int]
    memory_values: Callable[[Env], int]
    rf: Callable[[Env], int]
    paper: Printed | None = None
    settings: dict[str, int] = field(default_factory=dict)   # beyond Fig. 3g's, to be valid

    def memory_mb(self, env: Env) -> float:
        return self.memory_values(env) * BYTES_PER_VALUE / MB


def _esp_rf(e: Env) -> int:
    return (e["n"] - 1) * 2 ** (e["K"] - 1) + 1


FORMULAS: dict[str, Formula] = {f.module: f for f in [
    Formula("esp", "Md + Kn^2d^2", "WHd(K + 1)", "(n - 1)2^(K-1) + 1",
            lambda e: e["M"] * e["d"] + e["K"] * e["n"] ** 2 * e["d"] ** 2,
            lambda e: e["W"] * e["H"] * e["d"] * (e["K"] + 1), _esp_rf,
            Printed(20_000, 1.43, 33)),
    Formula("mobilenet", "M(n^2 + N)", "(M + N)WH", "n",
            lambda e: e["M"] * (e["n"] ** 2 + e["N"]),
            lambda e: (e["M"] + e["N"]) * e["W"] * e["H"], lambda e: e["n"],
            Printed(11_009, 2.39, 3)),
    Formula("shufflenet", "d/g (M + N) + n^2d", "WH(2d + N)", "n",
            lambda e: e["d"] * (e["M"] + e["N"]) // e["g"] + e["n"] ** 2 * e["d"],
            lambda e: e["W"] * e["H"] * (2 * e["d"] + e["N"]), lambda e: e["n"],
            Printed(2_180, 1.67, 3)),
    Formula("inception", "K(Md + n^2d^2)", "2KWHd", "n",
            lambda e: e["K"] * (e["M"] * e["d"] + e["n"] ** 2 * e["d"] ** 2),
            lambda e: 2 * e["K"] * e["W"] * e["H"] * e["d"], lambda e: e["n"],
            Printed(28_000, 2.39, 3)),
    Formula("resnext", "K(Md + d^2n^2 + dN)", "KWH(2d + N)", "n",
            lambda e: e["K"] * (e["M"] * e["d"] + e["d"] ** 2 * e["n"] ** 2 + e["d"] * e["N"]),
            lambda e: e["K"] * e["W"] * e["H"] * (2 * e["d"] + e["N"]), lambda e: e["n"],
            Printed(38_000, 8.37, 3)),
    Formula("asp", "KMNn^2", "KWHN", "(n - 1)2^(K-1) + 1",
            lambda e: e["K"] * e["M"] * e["N"] * e["n"] ** 2,
            lambda e: e["K"] * e["W"] * e["H"] * e["N"], _esp_rf,
            Printed(450_000, 5.98, 33)),
    Formula("resnet", "2n^2MN", "2WHN", "2(n - 1) + 1",
            lambda e: 2 * e["n"] ** 2 * e["M"] * e["N"],
            lambda e: 2 * e["W"] * e["H"] * e["N"], lambda e: 2 * (e["n"] - 1) + 1),
]}

MODULES = [m for m, f in FORMULAS.items() if f.paper or m == "resnet"]   # Fig. 3g's: the default


def _down_d(e: Env) -> int:
    """Branch width of the strided EESP inside the down-sampler: (N - M) / K."""
    return (e["N"] - e["M"]) // e["K"]


def _eesp_rf(e: Env) -> int:
    """The largest effective kernel of EESP's branches: 3, 5, 7, ... up to r_lim."""
    return 2 * min(e["K"], (e["r_lim"] - 1) // 2) + 1


FORMULAS.update({f.module: f for f in [
    Formula("inverted_residual", "tM(M + n^2 + N)", "WH(2tM + N)", "n",
            lambda e: e["t"] * e["M"] * (e["M"] + e["n"] ** 2 + e["N"]),
            lambda e: e["W"] * e["H"] * (2 * e["t"] * e["M"] + e["N"]), lambda e: e["n"]),
    Formula("se", "2MS", "M + S", "H (the whole map)",
            lambda e: 2 * e["M"] * e["S"], lambda e: e["M"] + e["S"], lambda e: e["H"]),
    Formula("shufflenet_v2", "N^2/2 + n^2 N/2", "3WHN/2", "n",
            lambda e: e["N"] ** 2 // 2 + e["n"] ** 2 * e["N"] // 2,
            lambda e: 3 * e["W"] * e["H"] * e["N"] // 2, lambda e: e["n"]),
    Formula("eesp", "Md/K + (n^2 + d)dK", "WH(d(K + 1) + N)", "2min(K, (r_lim - 1)/2) + 1",
            lambda e: e["M"] * e["d"] // e["K"] + (e["n"] ** 2 + e["d"]) * e["d"] * e["K"],
            lambda e: e["W"] * e["H"] * (e["d"] * (e["K"] + 1) + e["N"]), _eesp_rf),
    Formula("eesp_down", "Md'/K + (n^2 + d')d'K, d' = (N - M)/K", "WH(d' + (d'K + N - M)/4)",
            "2min(K, (r_lim - 1)/2) + 1",
            lambda e: (e["M"] * _down_d(e) // e["K"] + (e["n"] ** 2 + _down_d(e)) * _down_d(e) * e["K"]),
            lambda e: e["W"] * e["H"] * _down_d(e) + e["W"] * e["H"] * (
                _down_d(e) * e["K"] + e["N"] - e["M"]) // 4, _eesp_rf, settings={"N": 200}),
    Formula("non_bottleneck_1d", "12M^2", "4WHM", "3 + 2d",
            lambda e: 12 * e["M"] ** 2, lambda e: 4 * e["W"] * e["H"] * e["M"],
            lambda e: 3 + 2 * e["d"]),
    Formula("erfnet_down", "9M(N - M)", "WH(N - M)/4", "3",
            lambda e: 9 * e["M"] * (e["N"] - e["M"]),
            lambda e: e["W"] * e["H"] * (e["N"] - e["M"]) // 4, lambda e: 3,
            settings={"N": 200}),
    Formula("resnet_basic", "n^2MN + n^2N^2", "2WHN", "2(n - 1) + 1",
            lambda e: e["n"] ** 2 * (e["M"] * e["N"] + e["N"] ** 2),
            lambda e: 2 * e["W"] * e["H"] * e["N"], lambda e: 2 * (e["n"] - 1) + 1),
]})


def formula_env(params: dict[str, int], size: tuple[int, int]) -> Env:
    """The symbols of Fig. 3g from Fig. 3g's settings overridden by ``params``.

    >>> formula_env({"K": 4}, (56, 56))["d"]
    25
    """
    whole = {k: int(v) for k, v in params.items()   # a float like inverted_residual's t = 6.0
             if isinstance(v, float) and v.is_integer()}
    env = {**FIG3G_PARAMS, **whole, **{k: v for k, v in params.items()
                                       if isinstance(v, int) and not isinstance(v, bool)}}
    env.setdefault("d", env["N"] // env["K"])
    env["H"], env["W"] = size
    return env


def differences(formula: Formula) -> dict[str, str]:
    """Where the printed value differs from the paper's own formula at Fig. 3g's settings
    (memory compared after rounding the formula to the printed two decimals).

    >>> differences(FORMULAS["esp"])
    {'memory_mb': 'the paper prints 1.43; its formula WHd(K + 1) gives 1.4355 -> 1.44'}
    """
    if formula.paper is None:
        return {}
    out = {}
    params = formula.params(FIG3G_ENV)
    if params != formula.paper.params:
        out["params"] = (f"the paper prints {formula.paper.params:,}; its formula "
                         f"{formula.params_text} gives {params:,}")
    memory = formula.memory_mb(FIG3G_ENV)
    if round(memory, 2) != formula.paper.memory_mb:
        out["memory_mb"] = (f"the paper prints {formula.paper.memory_mb:.2f}; its formula "
                            f"{formula.memory_text} gives {memory:.4f} -> {memory:.2f}")
    rf = formula.rf(FIG3G_ENV)
    if rf != formula.paper.rf:
        out["rf"] = f"the paper prints {formula.paper.rf}; its formula {formula.rf_text} gives {rf}"
    return out
