"""Properties of pybuild.shell.words that must hold for any input, checked with hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybuild.errors import ExpansionError
from pybuild.shell.words import expand, expand_with_matches, split_words

# a decorator, not a profile: loading a profile would change every other module's tests too
moderate = settings(max_examples=150, deadline=None)

NAMES = st.sampled_from(["A", "B", "FOO", "_x1", "한"])
ENVS = st.dictionaries(NAMES, st.text(max_size=8))
# text biased towards the characters the lexer cares about
LEXY = st.text(alphabet=st.sampled_from(list("ab $'\"\\`{}:-+?#%/*AB_\t1@")) | st.characters(),
               max_size=30)
PLAIN_CHARS = st.characters(blacklist_characters="$'\"\\`\ufeff", blacklist_categories=("Cs",))
PLAIN = st.text(alphabet=PLAIN_CHARS, max_size=20)
WORD = st.text(alphabet=st.sampled_from(list("abcXYZ019._-/:=,한")), min_size=1, max_size=8)
ESCAPES = st.sampled_from(["\\", "`"])


@moderate
@given(LEXY, ENVS, ESCAPES, st.booleans(), st.booleans(), st.booleans(), st.booleans())
def test_only_expansion_errors(text, env, escape, keep_quotes, keep_escapes, keep_unset, plain):
    opts = dict(escape=escape, keep_quotes=keep_quotes, keep_escapes=keep_escapes,
                keep_unset=keep_unset, plain_quotes=plain)
    for fn in (expand, split_words, expand_with_matches):
        try:
            fn(text, env, **opts)
        except ExpansionError:
            pass


@moderate
@given(PLAIN, ENVS, ESCAPES)
def test_plain_word_is_itself(word, env, escape):
    assert expand(word, env, escape=escape) == word
    assert expand_with_matches(word, env, escape=escape).value == word


@moderate
@given(st.lists(WORD, max_size=6), ENVS)
def test_join_then_split(words, env):
    assert split_words(" ".join(words), env) == words
    assert split_words(" \t ".join(words) + "  ", env) == words


@moderate
@given(st.text(max_size=20), ESCAPES)
def test_escaping_every_character_gives_it_back(text, escape):
    text = text.lstrip("\ufeff")
    escaped = "".join(escape + ch for ch in text)
    assert expand(escaped, {}, escape=escape) == text
    assert split_words(escaped, {}, escape=escape) == ([text] if text else [])


@moderate
@given(st.text(max_size=20).filter(lambda t: "'" not in t))
def test_single_quotes_are_literal(text):
    assert expand(f"'{text}'", {"A": "x"}) == text
    assert expand(f"'{text}'", {}, keep_quotes=True) == f"'{text}'"
    assert split_words(f"'{text}'", {}) == ([text] if text else [])


@moderate
@given(st.text(alphabet=PLAIN_CHARS, max_size=20), ENVS)
def test_double_quotes_without_specials(text, env):
    assert expand(f'"{text}"', env) == text


@moderate
@given(NAMES, ENVS, WORD)
def test_default_and_alternative_laws(name, env, word):
    value = env.get(name)
    assert expand(f"${{{name}:-{word}}}", env) == (value if value else word)
    assert expand(f"${{{name}-{word}}}", env) == (word if value is None else value)
    assert expand(f"${{{name}:+{word}}}", env) == (word if value else "")
    assert expand(f"${{{name}+{word}}}", env) == ("" if value is None else word)
    assert expand(f"${{{name}}}", env) == expand(f"${name}", env) == (value or "")


@moderate
@given(NAMES, ENVS, WORD)
def test_required_laws(name, env, word):
    value = env.get(name)
    if value:
        assert expand(f"${{{name}:?{word}}}", env) == value
    else:
        with pytest.raises(ExpansionError, match=name):
            expand(f"${{{name}:?{word}}}", env)
    if value is None:
        with pytest.raises(ExpansionError, match=word.replace(".", r"\.")):
            expand(f"${{{name}?{word}}}", env)
    else:
        assert expand(f"${{{name}?{word}}}", env) == value


@moderate
@given(st.text(alphabet="ab/.", max_size=10), st.text(alphabet="ab/.", max_size=3))
def test_trim_literal_patterns(value, pattern):
    env = {"V": value, "P": pattern}
    prefixed = value[len(pattern):] if value.startswith(pattern) else value
    suffixed = value[:len(value) - len(pattern)] if value.endswith(pattern) else value
    assert expand("${V#$P}", env) == prefixed
    assert expand("${V%$P}", env) == suffixed
    assert expand("${V#*}", env) == value
    assert expand("${V%%*}", env) == ""
    assert expand("${V//$P/}", env) == (value.replace(pattern, "") if pattern else value)


@moderate
@given(st.text(alphabet="ab/.", max_size=10), st.text(alphabet="ab/", min_size=1, max_size=2))
def test_shortest_and_longest(value, sep):
    env = {"V": value, "S": sep}
    if sep in value:
        assert expand("${V#*$S}", env) == value.split(sep, 1)[1]
        assert expand("${V##*$S}", env) == value.rsplit(sep, 1)[1]
        assert expand("${V%$S*}", env) == value.rsplit(sep, 1)[0]
        assert expand("${V%%$S*}", env) == value.split(sep, 1)[0]
    else:
        assert expand("${V#*$S}", env) == expand("${V%%$S*}", env) == value


@moderate
@given(LEXY, ENVS)
def test_matches_partition_the_names(text, env):
    try:
        result = expand_with_matches(text, env)
    except ExpansionError:
        return
    assert result.matched <= env.keys()
    assert not result.unmatched & env.keys()
    assert result.value == expand(text, env)


@moderate
@given(st.lists(NAMES, min_size=1, max_size=4), st.sampled_from(["$", "${}"]))
def test_keep_unset_writes_references_back(names, form):
    word = "-".join(f"${n}" if form == "$" else f"${{{n}}}" for n in names)
    assert expand(word, {}, keep_unset=True) == word
    assert expand(word, {}) == "-" * (len(names) - 1)


@moderate
@given(LEXY, ENVS)
def test_split_words_agrees_with_expand_without_whitespace(text, env):
    spaces = " \t\n\r\v\f\x85\xa0"
    if any(c in spaces for c in text) or any(c in spaces for v in env.values() for c in v):
        return
    try:
        value = expand(text, env)
    except ExpansionError:
        with pytest.raises(ExpansionError):
            split_words(text, env)
        return
    assert split_words(text, env) == ([value] if value else [])


def test_examples_of_modes():
    env = {"A": "a b"}
    assert split_words('<<"EOF" x$A ${U:-y} $U', env, keep_quotes=True, keep_unset=True) == [
        '<<"EOF"', "xa", "b", "${U:-y}", "$U"]
    assert expand(r"a\"b", {}, keep_escapes=True) == r"a\"b"
    assert expand('C:\\dir\\$A `$A', env, escape="`") == "C:\\dir\\a b $A"
    assert expand("${A//*/X} ${A/ /_}", env) == "X a_b"  # no second match at the end (Go)
    with pytest.raises(ExpansionError, match="bad substitution"):
        expand("${}", {})


@pytest.mark.parametrize("line, words", [
    ("RUN << -EOF", ["RUN", "<< -EOF"]), ("RUN <<  EOF", ["RUN", "<<  EOF"]),
    ("RUN <<- EOF", ["RUN", "<<-", "EOF"]), ("RUN <<EOF <<EOF2", ["RUN", "<<EOF", "<<EOF2"]),
    ("RUN '<<EOF'", ["RUN", "'<<EOF'"]), ("RUN <<$EOF", ["RUN", "<<$EOF"]),
    ("COPY <<'EO F' /x", ["COPY", "<<'EO F'", "/x"]), ("a < b", ["a", "<", "b"]),
])
def test_heredoc_words(line, words):
    """The parser's heredoc detection: quotes, escapes and unset variables kept as written."""
    assert split_words(line, {}, keep_quotes=True, keep_escapes=True, keep_unset=True) == words
    assert expand(line, {}, keep_quotes=True, keep_escapes=True, keep_unset=True) == line


def test_raw_escape_inside_double_quotes_is_doubled():
    # BuildKit writes a kept escape twice before a character it cannot escape (quirk kept)
    assert expand('"a\\b" "a\\$" \\x', {}, keep_escapes=True) == 'a\\\\b a\\$ \\x'
    assert expand('"a\\b"', {}) == "a\\b"


def test_plain_quotes_for_heredoc_bodies():
    env = {"A": "x y"}
    body = "echo '$A' \"${A}\" \\$A\n"
    assert expand(body, env, plain_quotes=True) == "echo 'x y' \"x y\" $A\n"
    assert expand("'unterminated \"$A", env, plain_quotes=True) == "'unterminated \"x y"
    assert split_words("'a b'", {}, plain_quotes=True) == ["'a", "b'"]


@moderate
@given(st.text(alphabet=PLAIN_CHARS, max_size=20), ENVS)
def test_plain_quotes_only_dollar_and_escape_act(text, env):
    assert expand(text + "'\"", env, plain_quotes=True) == text + "'\""


@pytest.mark.parametrize("depth", [1, 60, 65, 5000])
def test_deep_nesting_is_an_expansion_error_not_a_crash(depth):
    word = "${a:-" * depth + "x" + "}" * depth
    if depth <= 60:
        assert expand(word, {}) == "x"
    else:
        with pytest.raises(ExpansionError, match="nested too deeply"):
            expand(word, {})


def test_replace_follows_go_regexp_rules():
    env = {"A": "abcb"}
    # replace-all goes through Go's ReplaceAllString: '$0' in the replacement is the match...
    assert expand("${A//b/<\\$0>}", env) == "a<\\b>c<\\b>"
    # ...while a single replacement is spliced in literally
    assert expand("${A/b/<\\$0>}", env) == "a<\\$0>cb"
    assert expand("${A//*/X}", env) == "X"  # no second, empty match at the end
    assert expand("${A//x*/X}", env) == "abcb"
    with pytest.raises(ExpansionError, match="missing '/'"):
        expand("${A//b}", env)

