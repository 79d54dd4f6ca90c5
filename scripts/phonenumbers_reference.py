#!/usr/bin/env python3
"""libphonenumber's answers, for dialerd's differential test of number validation.

Reads lines `RAW<TAB>REGION` (REGION empty for none) on stdin and writes, for
each, one line: the E.164 form when libphonenumber (its Python port,
`phonenumbers`) parses the number and finds it valid, `INVALID` when it
parses but is not valid, `UNPARSEABLE` when it does not parse. The first
line written is `VERSION <phonenumbers version>`.
"""
import sys

try:
    import phonenumbers
except ImportError:
    sys.stderr.write(
        "the Python package phonenumbers is not installed: "
        "python3 -m pip install phonenumbers==9.0.33 (as .ci/run does)\n"
    )
    sys.exit(3)


def answer(raw, region):
    try:
        n = phonenumbers.parse(raw, region or None)
    except phonenumbers.NumberParseException:
        return "UNPARSEABLE"
    if not phonenumbers.is_valid_number(n):
        return "INVALID"
    return phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)


def main():
    out = ["VERSION " + phonenumbers.__version__]
    for line in sys.stdin:
        raw, _, region = line.rstrip("\n").partition("\t")
        out.append(answer(raw, region))
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
