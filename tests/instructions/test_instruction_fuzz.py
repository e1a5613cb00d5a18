"""Arbitrary Dockerfile-like text never crashes the instruction, plan or check layers: any
failure is a PybuildError (which the CLI prints as one line)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pybuild.dockerfile import parser
from pybuild.dockerfile.checks import run_checks
from pybuild.errors import PybuildError
from pybuild.instructions import KEYWORDS, from_document
from pybuild.plan.stages import resolve

VALID_FLAGS = {
    "FROM": ["--platform="], "COPY": ["--from=", "--chown=", "--chmod=", "--link", "--parents",
                                       "--exclude="],
    "ADD": ["--chown=", "--chmod=", "--link", "--checksum=", "--keep-git-dir", "--unpack=",
            "--exclude="],
    "RUN": ["--mount=", "--network=", "--security="],
    "HEALTHCHECK": ["--interval=", "--timeout=", "--start-period=", "--retries="],
}
OTHER_FLAGS = ["--bogus", "--from=", "--mount="]
PIECES = ["a", "b", "$X", "${Y:-z}", "=", "AS", "as", "[", "]", '"', "'", "1", "-1", "80/tcp",
          "1-2", "type=cache", "target=/t", "<<EOF", "CMD", "NONE", "0s", "1m", "scratch", "\\",
          "type=secret,id=x", "type=bind,from=base,target=/b", "host", "none", "0755", "1:1"]
word = st.one_of(st.sampled_from(PIECES), st.sampled_from(PIECES), st.text(max_size=4))
keyword = st.sampled_from([*KEYWORDS, "ONBUILD RUN", "ONBUILD COPY", "COPPY"])


@st.composite
def line(draw) -> str:
    kw = draw(keyword)
    names = VALID_FLAGS.get(kw.split()[-1], [])
    wrong = not draw(st.integers(0, 5))  # now and then a flag the instruction refuses
    flag_names = st.sampled_from(OTHER_FLAGS if wrong or not names else names)
    flags = draw(st.lists(st.builds(lambda f, v: f + v if f.endswith("=") else f, flag_names,
                                    word), max_size=2 if names or wrong else 0))
    return " ".join([kw, *flags, *draw(st.lists(word, max_size=4))])


def _pipeline(text: str) -> None:
    if "<<" in text:
        text += "EOF\n"  # a body for the heredoc, if the parser saw one
    try:
        doc = parser.parse(text, file="Dockerfile")
        instructions = from_document(doc)
        stages = resolve(instructions, {"X": "1"}, escape=doc.escape)
        run_checks(doc, instructions, stages)
    except PybuildError as err:
        assert "\n" not in str(err).strip()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(line(), min_size=1, max_size=6))
def test_only_pybuild_errors_escape(lines):
    _pipeline("\n".join(lines) + "\n")  # the whole file: stage rules and checks
    for one in lines:  # and each line alone after a FROM, so later lines are reached too
        _pipeline(f"FROM alpine AS base\n{one}\n")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab=, \t'\"\r\n\0")), max_size=12))
def test_mount_fields_split_as_the_csv_module_does(spec: str) -> None:
    import csv

    from pybuild.instructions.runmount import _fields

    try:
        expected = (list(csv.reader([spec], strict=True)) or [[]])[0]
    except csv.Error:
        return  # the csv module's own path, taken for anything quoted
    assert _fields(spec) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*"0123456789/-tcpudTCP٣x", "65535", "65536"]),
                max_size=6).map("".join))
def test_expose_ports_accepted_as_the_port_pattern_says(word: str) -> None:
    from pybuild.errors import InstructionError
    from pybuild.instructions.config import _PORT, PROTOCOLS, check_port

    m = _PORT.match(word)
    ok = m is not None and (m[2] is None or int(m[2]) >= int(m[1])) \
        and int(m[2] or m[1]) <= 65535 and (m[3] is None or m[3].lower() in PROTOCOLS)
    try:
        check_port(None, word)
        accepted = True
    except InstructionError:
        accepted = False
    assert accepted == ok
