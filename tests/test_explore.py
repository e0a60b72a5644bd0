"""espdsl explore: space files, enumeration against brute force, NSGA-II against random
sampling, resumable searches, the written folder, latency on a local Ray instance."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import espdsl
from espdsl.cli import main
from espdsl.space import parse_space, read_space
from espdsl.space.run import dominates
from espdsl.space.spec import SpaceError, spaces_dir

BASES = spaces_dir() / "bases"

SMALL = """\
space: small
base: espnet_c
params: {alpha2: 2}
axes:
  alpha3: {range: [1, 4]}
  K: [3, 5, 8]
  module: {choices: [esp, mobilenet, shufflenet]}
constraints: ["params <= 200000", "rf >= 300"]
objectives: [{min: params}, {max: rf}, {min: macs}]
"""


def run_cli(*args):
    return CliRunner().invoke(main, list(args))


# -- the format --------------------------------------------------------------------------------
@pytest.mark.parametrize("text, where, message", [
    ("space: s\nbase: espnet_c\naxis: {K: [1]}\nobjectives: [{min: params}]\n", "3:1",
     "unknown key 'axis'; hint: did you mean 'axes'?"),
    ("space: s\nbase: espnet_c\naxes: {K: [2]}\nobjectives: [{min: parms}]\n", "4:20",
     "unknown figure 'parms'; hint: did you mean 'params'?"),
    ("space: s\nbase: espnet_c\naxes: {K: {range: [5, 2]}}\nobjectives: [{min: params}]\n", "3:19",
     "axis 'K': range [5, 2] is empty"),
    ("space: s\nbase: espnet_c\naxes: {K: [2]}\nconstraints: ['latency <= 3']\n"
     "objectives: [{min: params}]\n", "4:16", "unknown figure 'latency'"),
    ("space: s\nbase: espnet_c\naxes: {K: [2]}\nwhen: ['K >> ']\nobjectives: [{min: params}]\n",
     "4:9", "cannot parse expression"),
    ("space: s\nbase: espnet_c\naxes: {K: [2]}\nconstraints: ['params <= 4e5 +']\n"
     "objectives: [{min: params}]\n", "4:26", "cannot parse expression"),
])
def test_located_errors(text, where, message):
    with pytest.raises(SpaceError) as err:
        parse_space(text, "s.yaml")
    assert str(err.value).startswith(f"s.yaml:{where}: error: {message}")


def test_unknown_parameter_is_located(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("space: s\nbase: espnet_c\naxes: {alhpa3: [1, 2]}\nobjectives: [{min: params}]\n")
    result = run_cli("explore", str(path))
    assert result.exit_code == 2
    assert result.output.strip() == (f"{path}:3:16: error: 'alhpa3' is not a parameter of model "
                                     "'espnet_c'; hint: did you mean 'alpha3'?")


def test_per_place_axes_derived_and_when():
    s = parse_space("space: s\nbase: espnet_c\naxes:\n  K: {range: [2, 4], per: [a, b]}\n"
                    "derived: {down_K: 'max(Ka, Kb)'}\nwhen: ['Ka <= Kb']\n"
                    "objectives: [{min: params}]\n")
    assert [a.name for a in s.axes] == ["Ka", "Kb"] and s.size == 9
    assert s.point({"Ka": 3, "Kb": 2}) is None
    assert s.point({"Ka": 2, "Kb": 4}) == {"Ka": 2, "Kb": 4, "down_K": 4}


def test_schema_is_shipped():
    result = run_cli("schema", "space")
    assert result.exit_code == 0 and json.loads(result.output)["required"][0] == "space"


def test_shipped_spaces_read():
    assert espdsl.list_spaces() == ["espnet_c_levels", "mobilenet_v2_stages"]
    for name in espdsl.list_spaces():
        assert read_space(name).size > 10 ** 5


# -- enumeration: the front is the brute-force front ---------------------------------------------
def test_front_equals_brute_force():
    space = parse_space(SMALL, "small.yaml")
    result = espdsl.explore(space)
    assert result.mode == "enumerate" and len(result.rows) == 36
    senses = ["min", "max", "min"]
    figures = ["params", "rf", "macs"]
    feasible = [r for r in result.rows if r["params"] <= 200000 and r["rf"] >= 300]
    assert {r["name"] for r in result.feasible} == {r["name"] for r in feasible}
    point = {r["name"]: [r[f] for f in figures] for r in feasible}
    brute = {n for n, p in point.items()
             if not any(dominates(q, p, senses) for m, q in point.items() if m != n)}
    assert {r["name"] for r in result.front()} == brute and brute
    # each row's figures are espdsl.analyze's
    for row in result.rows[::7]:
        t = espdsl.analyze("espnet_c", alpha2=2, alpha3=row["alpha3"], K=row["K"],
                           module=row["module"]).totals
        assert (row["params"], row["macs"], row["rf"], row["peak_bytes"]) == (
            t.params, t.macs, t.rf, t.memory.peak)


# -- search: NSGA-II against random sampling ----------------------------------------------------
def _search_space():
    text = (spaces_dir() / "mobilenet_v2_stages.yaml").read_text()
    text = text.replace("base: bases/", f"base: {BASES}/")
    text = text.replace("objectives: [{min: params}, {min: macs}, {max: rf}]",
                        "objectives: [{min: params}, {max: rf}]")
    text = text.replace('["macs <= 300774272"]', '["macs <= 40000000"]\ninput: 1x3x96x96')
    text = text.replace("population: 60", "population: 20")
    return parse_space(text, "search.yaml")


def hypervolume(front: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Area dominated by a (min x, max y) front and bounded by ``ref`` (x no larger than
    ref[0], y no smaller than ref[1])."""
    pts = sorted(p for p in front if p[0] < ref[0] and p[1] > ref[1])
    area = 0.0
    for i, (x, y) in enumerate(pts):
        nxt = pts[i + 1][0] if i + 1 < len(pts) else ref[0]
        area += (nxt - x) * (y - ref[1])
    return area


def test_nsga2_front_dominates_random_front():
    """On a 1.9 x 10^9-point space, 200 evaluations each, seed 0: every network of random
    sampling's front is weakly dominated by one of NSGA-II's front, and NSGA-II's front covers
    a larger hypervolume (reference: 4 M parameters, receptive field 0)."""
    space = _search_space()
    assert space.size >= 10 ** 6
    nsga = espdsl.explore(space, trials=200, seed=0, sampler="nsga2")
    rand = espdsl.explore(space, trials=200, seed=0, sampler="random")
    assert nsga.mode == rand.mode == "search"
    a = [(r["params"], r["rf"]) for r in nsga.front()]
    b = [(r["params"], r["rf"]) for r in rand.front()]
    senses = ["min", "max"]
    assert all(any(p == q or dominates(p, q, senses) for p in a) for q in b)
    assert hypervolume(a, (4e6, 0)) > hypervolume(b, (4e6, 0))


def test_search_is_repeatable_and_resumable(tmp_path):
    space = _search_space()
    first = espdsl.explore(space, trials=12, seed=3)
    again = espdsl.explore(space, trials=12, seed=3)
    assert [r["name"] for r in first.rows] == [r["name"] for r in again.rows]
    db = tmp_path / "s.db"
    part = espdsl.explore(space, trials=6, seed=3, storage=db)
    with pytest.raises(espdsl.UsageError, match="holds an earlier search"):
        espdsl.explore(space, trials=12, seed=3, storage=db)
    whole = espdsl.explore(space, trials=12, seed=3, storage=db, resume=True)
    assert {r["name"] for r in part.rows} < {r["name"] for r in whole.rows}
    import optuna
    stored = optuna.load_study(study_name="mobilenet_v2_stages-nsga2-seed3",
                               storage=f"sqlite:///{db}")
    assert len(stored.trials) == 12
    db2 = tmp_path / "again.db"        # the same interrupted run again: the same rows
    espdsl.explore(space, trials=6, seed=3, storage=db2)
    redo = espdsl.explore(space, trials=12, seed=3, storage=db2, resume=True)
    assert [r["name"] for r in redo.rows] == [r["name"] for r in whole.rows]


# -- the written folder ------------------------------------------------------------------------
def test_written_folder_compiles_alone(tmp_path):
    out = tmp_path / "small"
    space = tmp_path / "small.yaml"
    space.write_text(SMALL)
    result = run_cli("explore", str(space), "-o", str(out))
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {"rows.csv", "rows.json", "rows.md", "front.csv", "front.json", "small.md",
            "rf_vs_params.png", "macs_vs_params.png", "macs_vs_rf.png", "front"} <= names
    front = json.loads((out / "front.json").read_text())
    assert front and len(json.loads((out / "rows.json").read_text())) == 36
    for row in front:
        pinned = out / "front" / f"{row['name']}.yaml"
        assert espdsl.totals(str(pinned)).params == row["params"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "mine.txt").write_text("x")
    result = run_cli("explore", str(space), "-o", str(tmp_path / "other"))
    assert result.exit_code == 2 and "did not write" in result.output
    assert [p.name for p in (tmp_path / "other").iterdir()] == ["mine.txt"]


# -- latency -----------------------------------------------------------------------------------
TINY = """\
space: tiny
base: cbr
params: {M: 3}
input: 1x3x16x16
axes: {N: [4, 8, 16], n: [1, 3]}
objectives: [{min: params}, {max: rf}, {min: latency}]
latency: {top: 6, runs: 3, warmup: 1}
"""


def test_latency_local_and_ray_same_rows():
    ray = pytest.importorskip("ray")
    space = parse_space(TINY, "tiny.yaml")
    local = espdsl.explore(space)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        remote = espdsl.explore(space, executor="ray")
    finally:
        ray.shutdown()
    timed = ("latency_ms", "machine", "latency_front")
    strip = [{k: v for k, v in r.items() if k not in timed} for r in local.rows]
    assert strip == [{k: v for k, v in r.items() if k not in timed} for r in remote.rows]
    for res in (local, remote):
        measured = [r for r in res.rows if r.get("latency_ms") is not None]
        assert len(measured) == len(res.front()) > 0
        assert all(r["latency_ms"] > 0 and r["machine"] for r in measured)
