"""`espdsl schema`: the JSON Schema of the spec format (and of every other shipped format) is a
valid schema, agrees with the grammar's keys, and validates every shipped file."""
from __future__ import annotations

import json

import jsonschema
import pytest
from click.testing import CliRunner

from espdsl.cli import main
from espdsl.registry import data_dir
from espdsl.schema import schema_names
from espdsl.source import read_yaml
from espdsl.spec import NODE_KEYS, STEP_KEYS, TOP_KEYS

# the shipped files each format's schema must accept
SHIPPED = {
    "spec": lambda: sorted(data_dir("blocks").glob("*.yaml")) + sorted(data_dir("zoo").glob("*.yaml"))
    + sorted((data_dir("zoo") / "spaces" / "bases").glob("*.yaml")),
    "study": lambda: sorted((data_dir("zoo") / "studies").glob("*.yaml")),
    "space": lambda: sorted((data_dir("zoo") / "spaces").glob("*.yaml")),
}


def printed(name: str) -> dict:
    result = CliRunner().invoke(main, ["schema", name])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize("name", schema_names())
def test_every_shipped_file_validates_against_the_printed_schema(name):
    assert name in SHIPPED, f"say which shipped files the '{name}' schema describes"
    schema = printed(name)
    jsonschema.validators.validator_for(schema).check_schema(schema)
    validator = jsonschema.validators.validator_for(schema)(schema)
    files = SHIPPED[name]()
    assert files, f"no shipped files for the '{name}' schema"
    for path in files:
        errors = [e.message for e in validator.iter_errors(read_yaml(path).data)]
        assert not errors, (path, errors)


def test_the_schema_knows_the_grammars_keys():
    schema = printed("spec")
    assert set(schema["properties"]) == set(TOP_KEYS)
    assert set(schema["$defs"]["node"]["properties"]) == set(NODE_KEYS)
    assert set(schema["$defs"]["step"]["properties"]) == set(STEP_KEYS)
    for key in TOP_KEYS:  # editors show these on hover
        assert schema["properties"][key].get("description"), key


def test_the_schema_rejects_what_the_grammar_rejects():
    validator = jsonschema.Draft202012Validator(printed("spec"))
    good = {"model": "net", "nodes": [{"name": "a", "op": "relu"}]}
    assert validator.is_valid(good)
    for bad in [{"model": "net"}, {"model": "net", "block": "b", "nodes": good["nodes"]},
                {"model": "my-net", "nodes": good["nodes"]}, {**good, "nodez": []},
                {**good, "params": {"N": {"type": "integer"}}},
                {"model": "net", "nodes": [{"name": "a", "op": "relu", "seq": [{"name": "x"}]}]}]:
        assert not validator.is_valid(bad), bad


def test_schema_command_writes_lists_and_refuses(tmp_path):
    out = tmp_path / "spec.schema.json"
    result = CliRunner().invoke(main, ["schema", "-o", str(out)])
    assert result.exit_code == 0 and json.loads(out.read_text()) == printed("spec")
    listed = CliRunner().invoke(main, ["schema", "--list"]).output.split()
    assert listed == schema_names() and "spec" in listed
    bad = CliRunner().invoke(main, ["schema", "spek", "-o", str(tmp_path / "x.json")])
    assert bad.exit_code == 2
    assert bad.output.strip() == "error: no schema named 'spek'; hint: did you mean 'spec'?"
    assert not (tmp_path / "x.json").exists()
