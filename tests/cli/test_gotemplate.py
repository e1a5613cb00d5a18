"""Go text/template as docker's --format uses it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybuild.cli.format.template import render, render_rows
from pybuild.errors import UsageError

DATA = {
    "Id": "sha256:abc",
    "RepoTags": ["a:1", "b:2"],
    "RepoDigests": ["x@sha256:1"],
    "Config": {"Labels": {"k": "v", "a": "b"}, "Env": None, "Cmd": ["sh", "-c", "x"]},
    "Size": 1234567,
    "Float": 1234567.0,
    "Empty": [],
}


@pytest.mark.parametrize("template, expected", [
    ("{{.Id}}", "sha256:abc"),
    ("{{.Config.Cmd}}", "[sh -c x]"),
    ("{{.Config.Labels}}", "map[a:b k:v]"),
    ("{{json .Config.Labels}}", '{"a":"b","k":"v"}'),
    ("{{.Config.Labels | json}}", '{"a":"b","k":"v"}'),
    ("{{index .RepoDigests 0}}", "x@sha256:1"),
    ('{{index .Config.Labels "k"}}', "v"),
    ('[{{index .Config.Labels "missing"}}]', "[]"),
    ("{{range .RepoTags}}<{{.}}>{{end}}", "<a:1><b:2>"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", "a=b;k=v;"),
    ("{{range $i, $t := .RepoTags}}{{$i}}{{$t}} {{end}}", "0a:1 1b:2 "),
    ("{{range .Empty}}x{{else}}none{{end}}", "none"),
    ("{{if .Empty}}y{{else}}n{{end}}", "n"),
    ('{{if eq .Id "x"}}1{{else if .Id}}2{{else}}3{{end}}', "2"),
    ('{{join .RepoTags ","}}', "a:1,b:2"),
    ("{{println}}x", "\nx"),
    ('{{upper "ab"}}{{lower "CD"}}{{title "hello big-world"}}', "ABcdHello Big-World"),
    ('{{split .Id ":"}} {{len .RepoTags}}', "[sha256 abc] 2"),
    ("a  {{- .Id -}}  \n b", "asha256:abcb"),
    ("{{- /* comment */ -}} x", "x"),
    ("{{.Missing}} {{.Config.Env}} {{.Missing.Deeper}}", "<no value> <nil> <no value>"),
    ("{{.Size}} {{.Float}}", "1234567 1.234567e+06"),
    ('{{"lit"}} {{`raw`}} {{printf "%-4s|%03d" "ab" 7}}', "lit raw ab  |007"),
    ("{{$x := .Id}}{{$x}}{{with .Config}}{{index .Cmd 0}}{{end}}", "sha256:abcsh"),
    ("{{(index .RepoTags 1)}} {{len (index .Config.Cmd 2)}}", "b:2 1"),
    ("{{.}}", "map[Config:map[Cmd:[sh -c x] Env:<nil> Labels:map[a:b k:v]] Empty:[] "
              "Float:1.234567e+06 Id:sha256:abc RepoDigests:[x@sha256:1] RepoTags:[a:1 b:2] "
              "Size:1234567]"),
])
def test_render(template, expected):
    assert render(template, DATA) == expected


@pytest.mark.parametrize("template, message", [
    ("{{.Config.Env.X}}", "nil pointer evaluating"),
    ("{{.Id.X}}", "can't evaluate field X in type string"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{if .Id}}", "unexpected EOF"),
    ("{{nosuch .Id}}", 'function "nosuch" not defined'),
    ("{{.Id", "unclosed action"),
    ("{{index .RepoTags 9}}", "index out of range"),
    ("{{$nope}}", "undefined variable"),
])
def test_errors_are_one_line(template, message):
    with pytest.raises(UsageError) as info:
        render(template, DATA)
    text = str(info.value)
    assert text.startswith("template: ") and message in text and "\n" not in text


def test_table_prefix_aligns_columns_with_headers():
    rows = [{"Repository": "docker.io/library/busybox", "Tag": "latest", "ID": "abc"},
            {"Repository": "x", "Tag": "1", "ID": "d"}]
    out = render_rows("table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}", rows, {"ID": "IMAGE ID"})
    assert out.splitlines() == [
        "REPOSITORY                  TAG       IMAGE ID",
        "docker.io/library/busybox   latest    abc",
        "x                           1         d",
    ]
    assert render_rows("{{.Tag}}", rows) == "latest\n1\n"


@given(st.text().filter(lambda s: "{{" not in s))
def test_plain_text_renders_to_itself(text):
    assert render(text, {}) == text


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


@settings(max_examples=200)
@given(JSON)
def test_json_round_trips(data):
    assert json.loads(render("{{json .}}", data)) == data
