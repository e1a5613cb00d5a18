"""The runtime-spec v1.0.2 schema (what runc 1.1 implements, vendored in
testdata/runtime-spec-v1.0.2: see its README) as a validator for config.json files."""

from __future__ import annotations

import json

import pytest

from support.paths import TESTDATA

SCHEMA_DIR = TESTDATA / "runtime-spec-v1.0.2"


def config_validator() -> object:
    """A Draft 4 validator for config-schema.json with its sibling files as $ref targets."""
    jsonschema = pytest.importorskip("jsonschema")
    referencing = pytest.importorskip("referencing")
    docs = {f"file:///schema/{p.name}": json.loads(p.read_text())
            for p in SCHEMA_DIR.glob("*.json")}
    registry = referencing.Registry().with_resources(
        (uri, referencing.Resource.from_contents(
            doc, default_specification=referencing.jsonschema.DRAFT4))
        for uri, doc in docs.items())
    root = "file:///schema/config-schema.json"
    return jsonschema.Draft4Validator({**docs[root], "id": root}, registry=registry)


def schema_errors(config: dict[str, object]) -> list[str]:
    validator = config_validator()
    return [f"{list(e.absolute_path)}: {e.message}"
            for e in validator.iter_errors(config)]  # type: ignore[attr-defined]
