"""Property-based fuzzing of the front end (hypothesis): random specs built from the grammar's
own keys (spec.schema.json's properties, ops.OPS attributes, the registry's block names),
values of every type and expression strings from a token grammar, fed to the public API
(espdsl.load, espdsl.analyze, the .py code generator) and to the CLI.

The property: espdsl returns a result or raises its own error class (espdsl.errors.EspdslError)
with a location naming a file and, for anything inside a spec file, a line; the message is one
line; nothing else is ever raised; every example answers within a time bound (hypothesis's
deadline). The suite runs a few hundred fixed examples in seconds; ``-m slow`` runs thousands
of random ones (``ESPDSL_FUZZ_EXAMPLES`` sets how many).
"""
from __future__ import annotations

import ast
import functools
import json
import os
import string
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import espdsl
from espdsl import limits
from espdsl.cli import main
from espdsl.errors import EspdslError
from espdsl.ops import OPS
from espdsl.registry import data_dir, default_registry
from espdsl.spec import NODE_KEYS, TOP_KEYS

SCHEMA = json.loads((Path(espdsl.__file__).parent / "spec.schema.json").read_text())
REGISTRY = default_registry()
BLOCKS = REGISTRY.names()
OP_NAMES = sorted(OPS)
ATTRS = sorted({a for op in OPS.values() for a in op.attrs})
PARAM_KEYS = sorted(SCHEMA["properties"]["params"]["additionalProperties"]["anyOf"][1]["properties"])
INPUT_KEYS = sorted(SCHEMA["properties"]["input"]["properties"])
NAMES = ["a", "b", "c1", "x", "N", "M", "K", "n", "k", "input", "level1", "d{k}", "s{2 ** k}",
         "encoder.b2", "class", "training", "__dict__", "my-node", "0", ""]
HOSTILE = ['"""', "'''", "\\", "\n", "\r\n", "\x1b[2J", "\x00", "\u2028", "\ud800", "Ω≈√×",
           "__import__('os').system('touch pwned')", "{{ x }}", "{% raw %}", "a" * 300]
FUNCS = ["min", "max", "abs", "int", "float", "str", "len", "round", "range", "floor", "ceil"]
TOKENS = (["N", "M", "K", "k", "n", "d", "x", "alpha3", "True", "None", "__import__", "open",
           "0", "1", "2", "3", "5", "64", "1e308", "10 ** 9", "2 ** 64", "0.5", "-1", "'s'",
           "'%999999999d'", "[1, 2]", "[]", "()"] + FUNCS +
          ["+", "-", "*", "/", "//", "%", "**", "==", "<", ">=", "!=", "in", "not", "and",
           "or", "if", "else", "for", "lambda", "(", ")", "(", ")", "[", "]", ",", ".", ":",
           "{", "}", "~", "<<", "@", " "])

# Small limits keep every example fast while still tripping each one.
FUZZ_LIMITS = dict(ir_size=3000, repeat=200, range=64, block_depth=8, param_memory="64MiB",
                   activation_memory="256MiB", yaml_values=5000, expr_length=300)


ATOMS = ["N", "M", "K", "k", "n", "d", "x", "True", "False", "None", "__import__", "0", "1",
         "2", "3", "64", "-1", "0.5", "1e308", "1e-308", "9" * 30, "'s'", "''", "'%999999999d'",
         "'{}'", "[]", "[1, 2]", "(1,)", "()"]
BINARY = ["+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", "<=", ">", ">=", "in", "not in",
          "and", "or", "is", "<<", "&", "@"]


def structured() -> st.SearchStrategy[str]:
    """Well-formed expressions from the grammar: atoms, operators, calls, conditionals, lists."""
    binary = st.sampled_from(BINARY[:12]) | st.sampled_from(BINARY)
    return st.recursive(st.sampled_from(ATOMS), lambda inner: st.one_of(
        st.tuples(inner, binary, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(inner, binary, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["-", "+", "not ", "~"]), inner).map("".join),
        st.tuples(st.sampled_from(FUNCS), st.lists(inner, max_size=3)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.tuples(inner, inner, inner).map(lambda t: f"{t[0]} if {t[1]} else {t[2]}"),
        st.lists(inner, max_size=3).map(lambda xs: f"[{', '.join(xs)}]"),
        st.tuples(st.sampled_from(["({}).__class__", "{}[0]", "[c for c in {}]", "open({})",
                                   "getattr({}, 'x')", "lambda: {}", "f'{{{}}}'"]), inner).map(
            lambda t: t[0].format(t[1])).filter(lambda _: True)), max_leaves=10)


def expressions() -> st.SearchStrategy[str]:
    """Expression text: well-formed from the grammar, or a soup of its tokens (parse errors)."""
    soup = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=12).map(" ".join)
    return st.one_of(structured(), structured(), soup)


def scalars() -> st.SearchStrategy:
    return st.one_of(
        st.integers(-3, 70), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(), st.none(), st.sampled_from(HOSTILE), st.text(max_size=12),
        expressions(), st.sampled_from(NAMES + BLOCKS + OP_NAMES))


def values() -> st.SearchStrategy:
    """A value of every YAML type: scalars, lists and mappings of them."""
    return st.recursive(scalars(), lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(ATTRS + NAMES), inner,
                                                     max_size=3)), max_leaves=6)


def plausible(attr: str) -> st.SearchStrategy:
    """Values an op attribute or block parameter might really take, often valid."""
    return st.one_of(st.integers(1, 32), st.sampled_from(["N", "M", "N // K", "2 ** k", "C",
                                                           "K", "k + 1", "M * 2", "stride"]),
                     values())


def rarely(draw, rate: int) -> bool:
    """True about one time in ``rate`` (and not where hypothesis's simplest choice lies)."""
    return draw(st.integers(0, rate - 1)) == rate - 1


def odd(draw, usual: st.SearchStrategy, unusual: st.SearchStrategy, rate: int):
    """Mostly ``usual``; about one time in ``rate``, ``unusual``."""
    return draw(unusual if rarely(draw, rate) else usual)


def ref(names: list[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(names or ["input"])


@st.composite
def nodes(draw, index: int, earlier: list[str], rate: int, step: bool = False) -> dict:
    """One node (or a seq step): mostly well formed, with references to earlier nodes."""
    node: dict = {}
    looped = not step and rarely(draw, 5)
    if not step and not rarely(draw, rate * 2):
        node["name"] = odd(draw, st.just(f"d{index}_{{k}}" if looped else f"n{index}"),
                           st.sampled_from(NAMES) | scalars(), rate)
    kind = odd(draw, st.sampled_from(["op", "op", "op", "block"] + ([] if step else ["seq"])),
               st.sampled_from(["none", "both", "seq"]), rate)
    if kind in ("op", "both"):
        node["op"] = odd(draw, st.sampled_from(OP_NAMES), scalars(), rate)
    if kind in ("block", "both"):
        node["block"] = odd(draw, st.sampled_from(BLOCKS), scalars() | st.just("{module}"), rate)
    if kind == "seq" and not step:
        node["seq"] = [draw(nodes(i, [], rate, step=True))
                       for i in range(odd(draw, st.integers(1, 3), st.just(0), rate))]
    keys, required = [], []
    if isinstance(node.get("op"), str) and node["op"] in OPS:
        keys = list(OPS[node["op"]].attrs)
        required = [k for k, a in OPS[node["op"]].attrs.items() if a.required]
    elif isinstance(node.get("block"), str) and node["block"] in REGISTRY and "seq" not in node:
        decls = REGISTRY.get(node["block"]).params
        keys = [k for k in decls if k != "M"]
        required = [k for k in keys if decls[k].default is None]
    chosen = draw(st.lists(st.sampled_from(keys), max_size=3, unique=True)) if keys else []
    for key in dict.fromkeys(required + chosen):
        node[key] = odd(draw, st.integers(1, 4) | st.sampled_from(["C", "C // 2", "2 * C"]),
                        plausible(key), rate)
    if rarely(draw, rate):
        node[draw(st.sampled_from(ATTRS + ["bogus"]))] = draw(values())
    if looped:
        node["for"] = odd(draw, st.sampled_from(["k in range(2)", "k in range(C // 8)",
                                                 "k in [1, 2]"]),
                          st.sampled_from(["k in range(10 ** 9)", "k", "k in range(100000)"])
                          | expressions(), rate)
    if step:
        return node
    if node.get("op") in ("add", "concat"):
        node["from"] = odd(draw, st.lists(ref(earlier + ["input"]), min_size=2, max_size=3),
                           values(), rate)
    elif rarely(draw, 4):
        node["from"] = odd(draw, ref(earlier), values(), rate)
    if rarely(draw, 5):
        node["when"] = odd(draw, st.sampled_from([True, False, "C > 4", "C % 2 == 0"]),
                           expressions() | values(), rate)
    if rarely(draw, 5):
        node["repeat"] = odd(draw, st.integers(0, 3) | st.sampled_from(["C // 4", "2"]),
                             st.sampled_from(["10 ** 9", "2.5", "'3'", -1, 10 ** 12, 150])
                             | expressions(), rate)
    if rarely(draw, 8):
        node["optional"] = odd(draw, st.just({"K": 2}), values(), rate)
    if rarely(draw, 8):
        node["doc"] = odd(draw, st.sampled_from(HOSTILE), values(), rate)
    return node


@st.composite
def specs(draw) -> dict:
    """A spec: a clean one about half the time, else with defects at a drawn rate."""
    rate = draw(st.sampled_from([10 ** 6, 10 ** 6, 40, 12, 4]))
    kind = odd(draw, st.just("model"), st.just("block"), 3)
    data: dict = {kind: odd(draw, st.just("fuzz"), st.sampled_from(["other", "class"])
                            | scalars(), rate)}
    params: dict = {"C": odd(draw, st.integers(1, 32), values(), rate)}
    if kind == "block":
        params["M"] = odd(draw, st.just({"type": "int", "default": 4}), values(), rate)
    for name in draw(st.lists(st.sampled_from(["N", "K", "d", "n", "module", "hff", "s"]),
                              max_size=3, unique=True)):
        params[name] = odd(draw, st.one_of(
            st.integers(1, 16), st.sampled_from(["C // 2", "C + 1", "esp", True]),
            st.sampled_from(HOSTILE).map(lambda h: {"type": "str", "default": h}),
            st.fixed_dictionaries({"type": st.sampled_from(["int", "float", "bool", "str"])},
                                  optional={"default": scalars()})),
            st.fixed_dictionaries({}, optional={k: values() for k in PARAM_KEYS}) | values(),
            rate)
    if rarely(draw, rate):
        params[draw(scalars().map(str))] = draw(values())
    data["params"] = params
    data["input"] = odd(draw, st.just({"channels": 3, "size": [16, 16]}), st.fixed_dictionaries(
        {}, optional={k: st.lists(plausible(k), max_size=3) | plausible(k) for k in INPUT_KEYS}),
        rate)
    names: list[str] = []
    data["nodes"] = []
    for i in range(odd(draw, st.integers(1, 5), st.just(0), rate)):
        node = draw(nodes(i, names, rate))
        data["nodes"].append(node)
        if isinstance(node.get("name"), str) and "{" not in node["name"]:
            names.append(node["name"])
    if rarely(draw, rate):
        data[draw(st.sampled_from(TOP_KEYS + ("bogus",)))] = draw(values())
    return data


def yaml_text(data: object) -> str:
    """JSON is YAML 1.2: every value written exactly (non-finite floats become text that YAML
    reads as strings, which is a value of its own kind)."""
    return json.dumps(data)


def raw_yaml() -> st.SearchStrategy[str]:
    """YAML-level text: anchors, aliases, tags, merges, flow and block syntax, odd bytes."""
    pieces = ["model: fuzz\n", "nodes:\n", "  - {name: a, op: relu}\n", "- ", "&a ", "*a", "*b",
              "&b [", "]", "{", "}", ": ", ", ", "<<: *a\n", "!!python/name:os.system ",
              "!!binary aGk=", "2001-12-14", ".inf", ".nan", "0x1F", "'", '"', "\n", "  ",
              "\t", "? ", "|\n  text\n", "%YAML 1.1\n---\n", "--- ", "...\n", "#", "\ufeff", "\x00"]
    return st.lists(st.sampled_from(pieces), max_size=25).map("".join)


def check_error(err: EspdslError, spec_file: Path) -> None:
    """espdsl's own error: located (in the fuzzed file or a library file, with a line when it is
    about spec text), one line, a readable length."""
    text = str(err)
    assert "\n" not in text and len(text.splitlines()) == 1, text
    assert len(text) < 1200, text
    assert err.loc is not None, text
    assert err.loc.file == str(spec_file) or Path(err.loc.file).parent in (
        data_dir("blocks"), data_dir("zoo")), text


def run_api(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "fuzz.yaml"
        spec.write_text(text, encoding="utf-8")
        try:
            ir = espdsl.load(spec)
            espdsl.analyze(ir).totals.memory.peak
            from espdsl.codegen import to_python
            ast.parse(to_python(ir))
        except EspdslError as err:
            check_error(err, spec)


def run_expression(text: str, env: dict) -> None:
    from espdsl.errors import Loc
    from espdsl.expr import evaluate, render_template
    loc = Loc("x.yaml", 3, 7)
    for fn in (evaluate, render_template):
        try:
            fn(text, env, loc)
        except EspdslError as err:
            assert err.loc is not None and err.loc.line == 3, str(err)
            assert len(str(err).splitlines()) == 1


def run_cli(data: dict, command: str, params: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "fuzz.yaml"
        spec.write_text(yaml_text(data), encoding="utf-8")
        out = Path(tmp) / "out"
        out.mkdir()
        args = [command, str(spec)] + [a for p in params for a in ("-p", p)]
        if command == "compile":
            args += ["-o", str(out / "net.py")]
        if command == "render":
            args += ["-o", str(out / "net.dot")]
        settings_ = [f"{k}={v}" for k, v in FUZZ_LIMITS.items()]
        result = CliRunner().invoke(main, [a for s in settings_ for a in ("--limit", s)] + args)
        assert result.exit_code in (0, 2), (result.output, result.exception)
        assert "Traceback" not in result.output
        if result.exit_code == 2:
            lines = result.output.strip().splitlines()
            assert len(lines) == 1, result.output
            assert lines[0].startswith((str(spec), "error:", "-p ", str(data_dir("blocks")),
                                        str(data_dir("zoo")))), lines[0]
            assert list(out.iterdir()) == [], "a failed command wrote something"
        elif command == "compile":
            ast.parse((out / "net.py").read_text())


def fuzz_settings(examples: int, long: bool = False):
    """The suite's fixed examples (derandomized: the same few hundred every run), or a long
    random run (``ESPDSL_FUZZ_EXAMPLES`` overrides its size)."""
    if long:
        examples = int(os.environ.get("ESPDSL_FUZZ_EXAMPLES", examples))
    return settings(max_examples=examples, deadline=timedelta(seconds=3), derandomize=not long,
                    database=None, suppress_health_check=[HealthCheck.too_slow,
                                                          HealthCheck.data_too_large])


@pytest.fixture(autouse=True)
def small_limits():
    with limits.override(**FUZZ_LIMITS):
        yield


EXPR_ENV = st.fixed_dictionaries({name: st.integers(-3, 70) | scalars()
                                   for name in ["N", "M", "K", "k", "n", "d", "x"]})
CLI_PARAMS = st.lists(st.sampled_from(["N=8", "M=4", "K=2", "alpha3=1e100", "module=mobilnet",
                                       "x", "K=inf", "hff=maybe", "N=-3", "d=\x1b[2J"]),
                      max_size=2)
COMMANDS = st.sampled_from(["validate", "analyze", "compile", "render"])


@fuzz_settings(150)
@given(data=specs())
def test_fuzz_specs_through_the_api(data):
    run_api(yaml_text(data))


@fuzz_settings(150)
@given(text=raw_yaml())
def test_fuzz_yaml_text_through_the_api(text):
    run_api(text)


@fuzz_settings(150)
@given(text=expressions(), env=EXPR_ENV)
def test_fuzz_expressions(text, env):
    run_expression(text, env)


@fuzz_settings(40)
@given(data=specs(), command=COMMANDS, params=CLI_PARAMS)
def test_fuzz_the_command_line(data, command, params):
    run_cli(data, command, params)


@pytest.mark.slow
@fuzz_settings(3000, long=True)
@given(data=specs())
def test_fuzz_specs_long(data):
    run_api(yaml_text(data))


@pytest.mark.slow
@fuzz_settings(2000, long=True)
@given(text=raw_yaml())
def test_fuzz_yaml_text_long(text):
    run_api(text)


@pytest.mark.slow
@fuzz_settings(3000, long=True)
@given(text=expressions(), env=EXPR_ENV)
def test_fuzz_expressions_long(text, env):
    run_expression(text, env)


@pytest.mark.slow
@fuzz_settings(1000, long=True)
@given(data=specs(), command=COMMANDS, params=CLI_PARAMS)
def test_fuzz_the_command_line_long(data, command, params):
    run_cli(data, command, params)


# -- declarations, predict: and weights: sections, checkpoints (untrusted files) ----------------
TYPES = ["int", "float", "bool", "str"]


def typed_values() -> st.SearchStrategy:
    """Values of every parameter type and a few that are none of them."""
    return st.one_of(st.integers(-5, 40), st.floats(-10, 10, allow_nan=False), st.booleans(),
                     st.sampled_from(["x", "esp", "C // 2", "C + 1", "{C}", "", "../../evil"]),
                     st.none(), st.lists(st.integers(0, 3), max_size=2))


@st.composite
def declarations(draw) -> dict:
    """A parameter declaration: type, default (a value, an expression, null), min, max,
    choices, in any combination, often contradicting each other."""
    decl: dict = {}
    for key, strategy in [("type", st.sampled_from(TYPES) | scalars()),
                          ("default", typed_values()),
                          ("min", st.integers(-5, 40) | st.floats(-10, 10) | typed_values()),
                          ("max", st.integers(-5, 40) | st.floats(-10, 10) | typed_values()),
                          ("choices", st.lists(typed_values(), max_size=4) | typed_values()),
                          ("doc", st.sampled_from(HOSTILE))]:
        if draw(st.booleans()):
            decl[key] = draw(strategy)
    if rarely(draw, 8):
        decl[draw(st.sampled_from(["defualt", "choice", "minimum", "bogus"]))] = draw(values())
    return decl


def predict_sections() -> st.SearchStrategy:
    """A ``predict:`` section: the real keys with plausible or odd values, and unknown keys."""
    step = st.one_of(
        st.fixed_dictionaries({"normalize": st.fixed_dictionaries(
            {}, optional={"mean": st.lists(st.floats(0, 255), max_size=4) | values(),
                          "std": st.lists(st.floats(-1, 80), max_size=4) | values(),
                          "mena": values()})}),
        st.fixed_dictionaries({"resize": st.fixed_dictionaries(
            {}, optional={"size": st.lists(st.integers(-1, 64), max_size=3) | values(),
                          "mode": st.sampled_from(["bilinear", "nearest", "cubic"]) | values(),
                          "antialias": st.booleans() | values(), "mod": values()})}),
        st.fixed_dictionaries({"divide": st.sampled_from([255, 0, -1, "255", True]) | values()}),
        st.dictionaries(st.sampled_from(["divide", "blur", "resize", "normalize"]), values(),
                        max_size=2), values())
    klass = st.fixed_dictionaries({}, optional={
        "name": st.sampled_from(["road", "../../evil", "<b>", ""]) | values(),
        "color": st.lists(st.integers(-1, 300), max_size=4) | values(),
        "colour": values()})
    return st.fixed_dictionaries({}, optional={
        "channels": st.sampled_from(["RGB", "BGR", "bgr", "CMYK"]) | values(),
        "steps": st.lists(step, max_size=3) | values(),
        "classes": st.lists(klass, max_size=3) | values(),
        "overlay_alpha": st.floats(-1, 2) | values(), "doc": st.sampled_from(HOSTILE),
        "clases": values()})


def weights_sections() -> st.SearchStrategy:
    """A ``weights:`` section: key maps of rules, with patterns and targets from a small grammar
    plus regex syntax, hostile text and wrong shapes."""
    part = st.sampled_from(["a", "b", "0", "{i}", "{j}", "stage{s}", "^a", "(a+)+$", ".*",
                            "a..b", "", "{i - 1}", "{__import__}", "../x"])
    pattern = st.lists(part, min_size=1, max_size=3).map(".".join)
    rule = st.one_of(st.tuples(pattern, pattern | st.none()).map(list), values())
    keymap = st.fixed_dictionaries({"keys": st.lists(rule, max_size=3) | values()},
                                   optional={"doc": st.sampled_from(HOSTILE), "rules": values()})
    return st.dictionaries(st.sampled_from(["tv", "theirs", "../x", "1"]), keymap | values(),
                           max_size=2)


SECTION_NET = {"model": "fuzz", "input": {"channels": 3, "size": [8, 8]},
               "nodes": [{"name": "a", "op": "conv", "out": 4, "kernel": 1},
                         {"name": "b", "op": "conv", "out": 2, "kernel": 1}]}


SECTION_PARAMS = st.dictionaries(st.sampled_from(["C", "N", "s", "x", "class"]),
                                 declarations() | values(), max_size=3)


def run_sections(params: dict, predict: Any, weights: Any) -> None:
    """A small network with fuzzed declarations and sections, loaded, its predict: section read
    and its key maps applied to its own keys."""
    from espdsl.keymap import key_maps
    from espdsl.predict import PredictConfig
    data = dict(SECTION_NET, params=params)
    if predict is not None:
        data["predict"] = predict
    if weights is not None:
        data["weights"] = weights
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "fuzz.yaml"
        spec.write_text(yaml_text(data), encoding="utf-8")
        try:
            ir = espdsl.load(spec)
            if "predict" in ir.meta:
                PredictConfig.from_meta(ir.meta["predict"], str(spec)).for_classes(2)
            for km in key_maps(ir.meta):
                km.translate({"a.weight": 0, "b.bias": 1, "stage2.0.x": 2})
        except EspdslError as err:
            check_error(err, spec)


CKPT_SPEC = ("model: fuzz\ninput: {channels: 3, size: [8, 8]}\nparams: {N: 4}\n"
             "nodes:\n  - {name: a, block: cbr, N: N}\n  - {name: b, op: conv, out: 2, kernel: 1}\n")


@functools.lru_cache(maxsize=1)
def good_checkpoint() -> dict:
    """What a real espdsl checkpoint of a small network holds (saved and read back)."""
    import torch
    from espdsl.weights import save_checkpoint
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "fuzz.yaml").write_text(CKPT_SPEC)
        save_checkpoint(espdsl.create_model(Path(tmp) / "fuzz.yaml"), Path(tmp) / "net.pt")
        return torch.load(Path(tmp) / "net.pt", weights_only=True)


CKPT_KEYS = ["specs", "params", "input_size", "state_dict", "name", "kind", "passes", "version",
             "format"]
HOSTILE_NAMES = ["../evil", "/tmp/espdsl-fuzz-evil", "evil\x00.yaml", "e" * 300, "fuzz\n",
                 "sub/evil", "..", "", "fuzz.yaml", "cbr"]


MUTATIONS = ["hostile spec", "hostile root", "spec text", "param", "input size", "tensor",
             "retype", "drop", "extra"]


@st.composite
def checkpoints(draw) -> dict:
    """An espdsl checkpoint dict: the good one (about a quarter of the time) or the good one
    with one to three mutations: keys dropped, added, retyped, spec names made hostile, spec
    texts and parameters replaced."""
    import torch
    good = good_checkpoint()
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in good.items()}
    if draw(st.sampled_from(range(4))) == 0:    # (st.integers leans to its ends)
        return raw
    order = draw(st.permutations(MUTATIONS))           # evenly spread, unlike st.sampled_from
    for mutation in order[:draw(st.sampled_from([1, 1, 2, 3]))]:
        specs = raw.get("specs") if isinstance(raw.get("specs"), dict) else None
        if mutation == "drop":
            raw.pop(draw(st.sampled_from(CKPT_KEYS)), None)
        elif mutation == "retype":
            raw[draw(st.sampled_from(CKPT_KEYS))] = draw(
                values() | st.just(torch.zeros(2)) | st.sampled_from(HOSTILE_NAMES))
        elif mutation == "extra":
            raw[draw(st.sampled_from(["spec", "extra", "__reduce__", "../x"]))] = draw(values())
        elif mutation == "hostile spec" and specs is not None:
            specs[draw(st.sampled_from(HOSTILE_NAMES) | st.integers())] = draw(
                st.sampled_from([CKPT_SPEC, "block: evil\nparams: {M: 3}\nnodes: [{name: a, op: relu}]\n"])
                | raw_yaml() | values())
        elif mutation == "hostile root" and specs is not None:
            name = draw(st.sampled_from(HOSTILE_NAMES))
            specs[name] = specs.pop("fuzz", CKPT_SPEC)
            raw["name"] = name
        elif mutation == "spec text" and specs is not None:
            specs[draw(st.sampled_from(["fuzz", "cbr"]))] = draw(
                raw_yaml() | specs_text() | st.just(CKPT_SPEC.replace("N: 4", "N: 8")))
        elif mutation == "param" and isinstance(raw.get("params"), dict):
            raw["params"][draw(st.sampled_from(["N", "M", "../x", "class"]))] = draw(
                values() | st.just(torch.ones(1)) | st.integers(1, 8))
        elif mutation == "input size":
            raw["input_size"] = draw(st.lists(st.integers(-2, 10 ** 12) | values(), max_size=5)
                                     | st.just([1, 3, 16, 16]))
        elif mutation == "tensor" and isinstance(raw.get("state_dict"), dict):
            raw["state_dict"] = {**raw["state_dict"], draw(st.sampled_from(
                ["x", "a.conv.weight", "b.weight"])): draw(st.just(torch.zeros(3)) | values())}
    return raw


def specs_text() -> st.SearchStrategy[str]:
    return specs().map(yaml_text)


def sandbox_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def run_checkpoint(raw: dict, through_cli: bool) -> None:
    """Save ``raw`` with torch.save and load it through create_model or ``espdsl predict``, in a
    folder that is also the temporary folder: nothing but predict's -o folder may appear in it."""
    import torch
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        work = root / "work"
        work.mkdir()
        path = work / "net.pt"
        torch.save(raw, path)
        if through_cli:
            import numpy as np
            from PIL import Image
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(work / "a.png")
        before = sandbox_files(root)
        saved_tempdir = tempfile.tempdir
        tempfile.tempdir = str(root)
        try:
            if through_cli:
                out = work / "out"
                result = CliRunner().invoke(main, ["predict", str(path), str(work / "a.png"),
                                                   "-o", str(out)])
                assert result.exit_code in (0, 2), (result.output, result.exception)
                assert "Traceback" not in result.output
                if result.exit_code == 2:
                    lines = result.output.strip().splitlines()
                    assert len(lines) == 1, result.output
                    assert lines[0].startswith((str(path), "error:")), lines[0]
                    assert not out.exists() or list(out.iterdir()) == []
                after = {p for p in sandbox_files(root) if p != out and out not in p.parents}
            else:
                try:
                    espdsl.create_model(str(path))
                except EspdslError as err:
                    text = str(err)
                    assert "\n" not in text and len(text) < 1200, text
                    assert err.loc is not None and err.loc.file.startswith(str(path)) or Path(
                        err.loc.file).parent in (data_dir("blocks"), data_dir("zoo")), text
                after = sandbox_files(root)
        finally:
            tempfile.tempdir = saved_tempdir
        assert after == before, f"loading a checkpoint wrote {after - before}"
    assert not Path("/tmp/espdsl-fuzz-evil.yaml").exists()


@fuzz_settings(100)
@given(params=SECTION_PARAMS, predict=st.none() | predict_sections(),
       weights=st.none() | weights_sections())
def test_fuzz_declarations_and_sections(params, predict, weights):
    run_sections(params, predict, weights)


@fuzz_settings(100)
@given(raw=checkpoints())
def test_fuzz_checkpoints_through_create_model(raw):
    run_checkpoint(raw, through_cli=False)


@fuzz_settings(25)
@given(raw=checkpoints())
def test_fuzz_checkpoints_through_predict(raw):
    run_checkpoint(raw, through_cli=True)


@pytest.mark.slow
@fuzz_settings(3000, long=True)
@given(params=SECTION_PARAMS, predict=st.none() | predict_sections(),
       weights=st.none() | weights_sections())
def test_fuzz_declarations_and_sections_long(params, predict, weights):
    run_sections(params, predict, weights)


@pytest.mark.slow
@fuzz_settings(3000, long=True)
@given(raw=checkpoints())
def test_fuzz_checkpoints_through_create_model_long(raw):
    run_checkpoint(raw, through_cli=False)


@pytest.mark.slow
@fuzz_settings(500, long=True)
@given(raw=checkpoints())
def test_fuzz_checkpoints_through_predict_long(raw):
    run_checkpoint(raw, through_cli=True)


def test_what_the_fuzzer_found_stays_fixed(tmp_path):
    """Each failure the fuzzer found (beyond those the limits anticipated), as a fixed example."""
    from espdsl.errors import Loc
    from espdsl.expr import evaluate
    # range() with no argument escaped as a ValueError from the length computation
    with pytest.raises(EspdslError, match=r"range\(\) takes 1 to 3 integers"):
        evaluate("range()", {}, Loc("x.yaml", 1, 1))
    # a list repeated a huge number of times overflowed before any check (OverflowError)
    with pytest.raises(EspdslError, match="longer than the range limit"):
        evaluate("(1,) * 10 ** 30", {}, Loc("x.yaml", 1, 1))
    # a 'for' node with a literal name and a 'from' made the order check raise KeyError
    spec = tmp_path / "fuzz.yaml"
    spec.write_text("model: fuzz\ninput: {channels: 3, size: [8, 8]}\nnodes:\n"
                    "  - {name: a, op: relu}\n  - {name: b, op: relu, for: k in range(2), from: a}\n")
    with pytest.raises(EspdslError, match=r"fuzz.yaml:5:12: error: node name 'b' is used twice"):
        espdsl.load(spec)
    # a redefined YAML anchor (legal YAML) printed a multi-line warning to stderr
    (tmp_path / "dup").mkdir()
    spec = tmp_path / "dup" / "fuzz.yaml"
    spec.write_text("model: fuzz\nmeta: {x: [&a 1, &a 2, *a]}\nnodes: [{name: a, op: relu}]\n")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        espdsl.load(spec)
    # a lone surrogate (undecodable command-line bytes) crashed printing the summary
    result = CliRunner().invoke(main, ["compile", "espnet", "-p", "module=\udcff"])
    assert result.exit_code == 2 and "lone surrogate U+DCFF" in result.output
