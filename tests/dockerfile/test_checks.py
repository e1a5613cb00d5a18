"""Build checks on hand-built documents."""

import pytest
from support.nodes import doc, node

from pybuild.dockerfile.checks import check_config, run_checks
from pybuild.dockerfile.syntax import Warning_
from pybuild.errors import ParseError


def rules(d) -> list[tuple[str, int, str]]:
    return [(w.rule, w.line, w.message) for w in run_checks(d)]


def test_clean_dockerfile_has_no_warnings():
    assert rules(doc(node("from", "alpine"), node("cmd", "a", json=True))) == []


def test_json_args_maintainer_legacy_env_multiple():
    got = rules(doc(node("from", "alpine"), node("maintainer", "me"),
                    node("env", "A", "b", ""), node("cmd", "run a"), node("cmd", "b", json=True)))
    assert ("MaintainerDeprecated", 2,
            "Maintainer instruction is deprecated in favor of using label") in got
    assert ("LegacyKeyValueFormat", 3,
            '"ENV key=value" should be used instead of legacy "ENV key value" format') in got
    assert ("JSONArgsRecommended", 4, "JSON arguments recommended for CMD to prevent "
            "unintended behavior related to OS signals") in got
    assert ("MultipleInstructionsDisallowed", 4, "Multiple CMD instructions should not be used "
            "in the same stage because only the last one will be used") in got


def test_json_args_not_recommended_after_shell():
    d = doc(node("from", "a"), node("shell", "/bin/bash", "-c", json=True), node("cmd", "x"))
    assert [r for r in rules(d) if r[0] == "JSONArgsRecommended"] == []


def test_stage_names():
    got = rules(doc(node("from", "a", "AS", "Build"), node("from", "b", "as", "build"),
                    node("from", "c", "AS", "scratch")))
    assert ("StageNameCasing", 1, "Stage name 'Build' should be lowercase") in got
    assert ("FromAsCasing", 2, "'as' and 'FROM' keywords' casing do not match") in got
    assert ("DuplicateStageName", 2,
            'Duplicate stage name "build", stage names should be unique') in got
    assert ("ReservedStageName", 3,
            'Stage name should not use the same name as reserved stage "scratch"') in got


def test_instruction_casing_majority():
    got = rules(doc(node("from", "a", original="from"), node("run", "x", original="run"),
                    node("copy", "a", "b", original="COPY")))
    assert got == [("ConsistentInstructionCasing", 3,
                    "Command 'COPY' should match the case of the command majority (lowercase)")]


def test_args_in_from():
    got = rules(doc(node("arg", "TAG"), node("from", "busybox:${TAG}"),
                    node("from", "alpine:${TAGG}")))
    assert ("InvalidDefaultArgInFrom", 2, "Default value for ARG busybox:${TAG} results in "
            "empty or invalid base image name") in got
    assert ("UndefinedArgInFrom", 3, "FROM argument 'TAGG' is not declared "
            "(did you mean TAG?)") in got


def test_undefined_var_workdir_expose_secrets():
    got = rules(doc(node("from", "alpine"), node("arg", "VERSION=1"),
                    node("copy", "app-$VERSON", "/app"), node("workdir", "rel"),
                    node("expose", "80/TCP"), node("env", "DB_PASSWORD", "x", "="),
                    node("arg", "PUBLIC_KEY"), node("env", "P", "$PATH", "=")))
    assert ("UndefinedVar", 3,
            "Usage of undefined variable '$VERSON' (did you mean $VERSION?)") in got
    assert ("WorkdirRelativePath", 4, 'Relative workdir "rel" can have unexpected results '
            "if the base image changes") in got
    assert ("ExposeProtoCasing", 5,
            "Defined protocol '80/TCP' in EXPOSE instruction should be lowercase") in got
    assert ("SecretsUsedInArgOrEnv", 6, "Do not use ARG or ENV instructions for sensitive "
            'data (ENV "DB_PASSWORD")') in got
    assert not [r for r in got if r[1] in (7, 8)]


def test_empty_continuation_from_parser_warnings():
    d = doc(node("from", "a"), warnings=(Warning_("Empty continuation line", 2,
                                                  "NoEmptyContinuation"),))
    assert rules(d) == [("NoEmptyContinuation", 2, "Empty continuation line")]


def test_check_directive():
    base = (node("from", "a"), node("maintainer", "me"), node("cmd", "x"))
    d = doc(*base, directives={"check": "skip=MaintainerDeprecated;error=true"})
    assert [r[0] for r in rules(d)] == ["JSONArgsRecommended"]
    assert check_config(d).error
    assert rules(doc(*base, directives={"check": "skip=all"})) == []
    with pytest.raises(ParseError):
        check_config(doc(*base, directives={"check": "bogus=1"}))
    with pytest.raises(ParseError):
        check_config(doc(*base, directives={"check": "error=maybe"}))


def test_warnings_carry_urls():
    (w,) = run_checks(doc(node("from", "a"), node("maintainer", "me")))
    assert w.url == "https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/"


def test_platform_rules():
    got = rules(doc(node("from", "a", flags=("--platform=$TARGETPLATFORM",)),
                    node("from", "b", flags=("--platform=linux/arm64",)),
                    node("from", "c", "AS", "build-arm64", flags=("--platform=linux/arm64",))))
    assert ("RedundantTargetPlatform", 1, "Setting platform to predefined $TARGETPLATFORM in "
            "FROM is redundant as this is the default behavior") in got
    assert ("FromPlatformFlagConstDisallowed", 2,
            'FROM --platform flag should not use constant value "linux/arm64"') in got
    assert not [r for r in got if r[1] == 3]


def test_secret_names_allow_list_and_original_casing():
    got = rules(doc(node("from", "a", original="from"), node("arg", "GITHUB_TOKEN", original="arg"),
                    node("arg", "KEY_FILE", original="arg"), node("env", "a", "b", "",
                                                                  original="env")))
    assert [r[0] for r in got] == ["SecretsUsedInArgOrEnv", "LegacyKeyValueFormat"]
    assert got[1][2] == '"env key=value" should be used instead of legacy "env key value" format'
