"""Go's ``unicode.IsSpace``: the whitespace BuildKit trims and splits on in Dockerfiles, shell
words and ``.dockerignore`` lines.

``str.isspace()`` is a different set (it also takes ``\\x1c``-``\\x1f``), so code that must
agree with BuildKit uses this one.
"""

GO_SPACES = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) \
    + "\u2028\u2029\u202f\u205f\u3000"
