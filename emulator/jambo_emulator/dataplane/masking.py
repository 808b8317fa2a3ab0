"""Static masking as plain SQL: what PostgreSQL Anonymizer's ``anon.*`` functions do, without it.

PostgreSQL Anonymizer is not installed here, so a masking rule's function is parsed (never pasted
into SQL) and rebuilt as an expression of built-in functions, with every name quoted and every
literal escaped. One ``UPDATE`` per table sets all its masked columns at once, so functions that
read a column (``anon.partial(email, ...)``, ``anon.hash(email)``) see the original values.

Pure: no I/O. The control plane calls :func:`parse_rule` to answer 400 for a function the emulator
cannot run; the data plane calls :func:`masking_statements` and runs them in the branch's own copy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from jambo_emulator.dataplane.base import MaskRule
from jambo_emulator.dataplane.pgwire import quote_ident, quote_literal


class MaskingError(ValueError):
    """A rule the emulator cannot apply (unknown function, bad arguments); the text says which."""


# -- the fake data sets (small; picked so none is a plausible production value of the examples) ---

FIRST_NAMES = (
    "Alba", "Bruno", "Celine", "Dario", "Elke", "Fabio", "Greta", "Hugo", "Ilse", "Jonas",
    "Kira", "Lorenz", "Mira", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sven", "Tilda",
    "Ugo", "Vera", "Wim", "Xenia", "Yannick", "Zora",
)  # fmt: skip
LAST_NAMES = (
    "Abbott", "Brandt", "Castell", "Dumont", "Eriksen", "Falk", "Gorski", "Haas", "Ivanov",
    "Jansen", "Keller", "Lindqvist", "Moreau", "Novak", "Ortega", "Petrov", "Quist", "Rossi",
    "Sato", "Tanaka", "Ulrich", "Varga", "Weber", "Yilmaz", "Zeller",
)  # fmt: skip
EMAIL_DOMAINS = ("example.com", "example.net", "example.org")
CITIES = ("Arendal", "Brno", "Cork", "Delft", "Evora", "Faro", "Ghent", "Hilo", "Izmir", "Jena")
COUNTRIES = ("Austria", "Belgium", "Chile", "Denmark", "Estonia", "Finland", "Ghana", "Iceland")
COMPANIES = ("Acme Corp", "Globex", "Initech", "Umbrella Ltd", "Hooli", "Vandelay Industries")
DIGEST_ALGORITHMS = ("md5", "sha224", "sha256", "sha384", "sha512")


# -- parsing a rule's function: name(arg, ...) with identifiers, numbers, strings, NULL ----------


@dataclass(frozen=True)
class Arg:
    """A parsed argument: a column of the rule's table, or a literal."""

    kind: str  # "column" | "text" | "number" | "null"
    text: str

    def sql(self) -> str:
        if self.kind == "column":
            return quote_ident(self.text)
        if self.kind == "text":
            return quote_literal(self.text)
        if self.kind == "number":
            return self.text
        return "NULL"


_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)|"
    r'(?P<ident>"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)|(?P<punct>[(),.]))'
)


def _tokens(text: str) -> list[tuple[str, str]]:
    pos, found = 0, []
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise MaskingError(f"cannot parse masking function {text!r} near {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        pos = match.end()
    return found


def _unquote_ident(token: str) -> str:
    return token[1:-1].replace('""', '"') if token.startswith('"') else token.lower()


def parse_call(text: str) -> tuple[str, list[Arg]]:
    """``anon.partial(email, 2, '***', 3)`` -> ``("anon.partial", [Arg, ...])``;
    ``NULL`` -> ``("null", [])``."""
    tokens = _tokens(text)
    if len(tokens) == 1 and tokens[0][1].lower() == "null":
        return "null", []
    # name: ident(.ident)*
    names: list[str] = []
    i = 0
    while i < len(tokens) and tokens[i][0] == "ident":
        names.append(_unquote_ident(tokens[i][1]))
        i += 1
        if i < len(tokens) and tokens[i][1] == ".":
            i += 1
            continue
        break
    if not names or i >= len(tokens) or tokens[i][1] != "(" or tokens[-1][1] != ")":
        raise MaskingError(
            f"masking function {text!r} is not a function call such as anon.fake_email() "
            "or anon.partial(col, 2, '***', 2)"
        )
    name = ".".join(names)
    args: list[Arg] = []
    body = tokens[i + 1 : -1]
    j = 0
    while j < len(body):
        kind, token = body[j]
        if kind == "string":
            args.append(Arg("text", token[1:-1].replace("''", "'")))
        elif kind == "number":
            args.append(Arg("number", token))
        elif kind == "ident" and token.lower() == "null":
            args.append(Arg("null", "NULL"))
        elif kind == "ident":
            column = _unquote_ident(token)
            # table.column (or schema.table.column): the column is the last part.
            while j + 2 < len(body) and body[j + 1][1] == "." and body[j + 2][0] == "ident":
                column = _unquote_ident(body[j + 2][1])
                j += 2
            args.append(Arg("column", column))
        else:
            raise MaskingError(f"unexpected {token!r} in the arguments of {name}")
        j += 1
        if j < len(body):
            if body[j][1] != ",":
                raise MaskingError(f"expected ',' between the arguments of {name}, got {body[j][1]!r}")
            j += 1
            if j == len(body):
                raise MaskingError(f"missing an argument after the last ',' of {name}")
    return name, args


# -- the functions: name -> (argument count range, SQL builder) ------------------------------------


def _pick(values: Sequence[str]) -> str:
    """A random element per row (``random()`` is volatile: evaluated for each row)."""
    array = "ARRAY[" + ", ".join(quote_literal(v) for v in values) + "]"
    return f"({array})[1 + floor(random() * {len(values)})::int]"


def _pick_by(seed: str, values: Sequence[str]) -> str:
    """The same element for the same seed (pseudonymization)."""
    array = "ARRAY[" + ", ".join(quote_literal(v) for v in values) + "]"
    index = f"(('x' || substr(md5({seed}), 1, 7))::bit(28)::int % {len(values)})"
    return f"({array})[1 + {index}]"


def _fake_email() -> str:
    first = f"lower({_pick(FIRST_NAMES)})"
    last = f"lower({_pick(LAST_NAMES)})"
    number = "floor(random() * 10000)::int::text"
    return f"({first} || '.' || {last} || {number} || '@' || {_pick(EMAIL_DOMAINS)})"


def _text(arg: Arg) -> str:
    return f"({arg.sql()})::text"


def _int(name: str, arg: Arg, position: int) -> int:
    if arg.kind != "number" or "." in arg.text:
        raise MaskingError(f"{name}: argument {position} must be an integer literal, got {arg.text!r}")
    return int(arg.text)


def _number(name: str, arg: Arg, position: int) -> str:
    if arg.kind == "number":
        return arg.text
    if arg.kind == "text":
        try:
            return str(Decimal(arg.text))
        except InvalidOperation:
            pass
    raise MaskingError(f"{name}: argument {position} must be a number, got {arg.text!r}")


def _literal_text(name: str, arg: Arg, position: int) -> str:
    if arg.kind != "text":
        raise MaskingError(f"{name}: argument {position} must be a string literal, got {arg.text!r}")
    return arg.text


def _partial(name: str, args: list[Arg]) -> str:
    value, prefix, padding, suffix = args
    p, s = _int(name, prefix, 2), _int(name, suffix, 4)
    if p < 0 or s < 0:
        raise MaskingError(f"{name}: prefix and suffix lengths must be >= 0")
    pad = quote_literal(_literal_text(name, padding, 3))
    ov = _text(value)
    tail = f"substring({ov} from greatest(char_length({ov}) - {s} + 1, 1) for {s})" if s else "''"
    return f"(substring({ov} from 1 for {p}) || {pad} || {tail})"


def _partial_email(name: str, args: list[Arg]) -> str:
    # 'daamien@gmail.com' -> 'da******@gm******.com', as PostgreSQL Anonymizer does.
    pattern = quote_literal(r"^(.{0,2})[^@]*@(.{0,2})[^.]*(\..*)?$")
    return f"regexp_replace({_text(args[0])}, {pattern}, '\\1******@\\2******\\3')"


def _random_string(name: str, args: list[Arg]) -> str:
    length = _int(name, args[0], 1)
    if not 0 < length <= 1024:
        raise MaskingError(f"{name}: length must be from 1 to 1024, got {length}")
    # md5 hex mapped onto letters; one md5 per 32 characters.
    chunks = " || ".join(["md5(random()::text)"] * ((length + 31) // 32))
    return f"upper(substr(translate({chunks}, '0123456789', 'ghijklmnop'), 1, {length}))"


def _between(name: str, args: list[Arg], sql_type: str) -> str:
    low, high = _int(name, args[0], 1), _int(name, args[1], 2)
    if high < low:
        raise MaskingError(f"{name}: the upper bound ({high}) is below the lower bound ({low})")
    return f"({low} + floor(random() * ({high} - {low} + 1)))::{sql_type}"


def _random_date_between(name: str, args: list[Arg]) -> str:
    low, high = (f"({a.sql()})::timestamptz" for a in args)
    return f"({low} + random() * ({high} - {low}))"


def _random_phone(name: str, args: list[Arg]) -> str:
    prefix = quote_literal(_literal_text(name, args[0], 1)) if args else "'0'"
    return f"({prefix} || lpad(floor(random() * 100000000)::bigint::text, 8, '0'))"


def _random_in(name: str, args: list[Arg]) -> str:
    if not args:
        raise MaskingError(f"{name}: needs at least one value")
    return _pick([a.text for a in args])


def _hash(name: str, args: list[Arg]) -> str:
    return f"encode(sha512(convert_to({_text(args[0])}, 'UTF8')), 'hex')"


def _digest(name: str, args: list[Arg]) -> str:
    value, salt, algorithm = args
    algo = _literal_text(name, algorithm, 3).lower()
    if algo not in DIGEST_ALGORITHMS:
        raise MaskingError(
            f"{name}: algorithm {algo!r} is not supported; use one of {', '.join(DIGEST_ALGORITHMS)}"
        )
    data = f"({_text(value)} || {_text(salt)})"
    if algo == "md5":
        return f"md5({data})"
    return f"encode({algo}(convert_to({data}, 'UTF8')), 'hex')"


def _pseudo(values: Sequence[str]) -> Callable[[str, list[Arg]], str]:
    def build(name: str, args: list[Arg]) -> str:
        seed = " || ".join(_text(a) for a in args)
        return _pick_by(seed, values)

    return build


def _pseudo_email(name: str, args: list[Arg]) -> str:
    seed = " || ".join(_text(a) for a in args)
    first, last = _pick_by(seed, FIRST_NAMES), _pick_by(f"'l' || {seed}", LAST_NAMES)
    domain = _pick_by(f"'d' || {seed}", EMAIL_DOMAINS)
    return f"(lower({first}) || '.' || lower({last}) || '@' || {domain})"


def _noise(name: str, args: list[Arg]) -> str:
    value, ratio = args
    return f"(({value.sql()}) * (1 + (2 * random() - 1) * {_number(name, ratio, 2)}))"


def _dnoise(name: str, args: list[Arg]) -> str:
    value, interval = args
    span = quote_literal(_literal_text(name, interval, 2))
    return f"(({value.sql()}) + (2 * random() - 1) * {span}::interval)"


def _const(sql: str) -> Callable[[str, list[Arg]], str]:
    return lambda name, args: sql


Builder = Callable[[str, list[Arg]], str]

#: name -> (min args, max args, builder). Names are PostgreSQL Anonymizer's (1.x and 2.x aliases).
FUNCTIONS: dict[str, tuple[int, int, Builder]] = {
    "anon.fake_first_name": (0, 0, _const(_pick(FIRST_NAMES))),
    "anon.dummy_first_name": (0, 0, _const(_pick(FIRST_NAMES))),
    "anon.fake_last_name": (0, 0, _const(_pick(LAST_NAMES))),
    "anon.dummy_last_name": (0, 0, _const(_pick(LAST_NAMES))),
    "anon.fake_email": (0, 0, _const(_fake_email())),
    "anon.dummy_free_email": (0, 0, _const(_fake_email())),
    "anon.dummy_safe_email": (0, 0, _const(_fake_email())),
    "anon.fake_city": (0, 0, _const(_pick(CITIES))),
    "anon.fake_country": (0, 0, _const(_pick(COUNTRIES))),
    "anon.fake_company": (0, 0, _const(_pick(COMPANIES))),
    "anon.random_phone": (0, 1, _random_phone),
    "anon.dummy_phone_number": (0, 0, _const(_random_phone("", []))),
    "anon.partial": (4, 4, _partial),
    "anon.partial_email": (1, 1, _partial_email),
    "anon.random_string": (1, 1, _random_string),
    "anon.random_zip": (0, 0, _const("lpad(floor(random() * 100000)::int::text, 5, '0')")),
    "anon.random_int_between": (2, 2, lambda n, a: _between(n, a, "int")),
    "anon.random_bigint_between": (2, 2, lambda n, a: _between(n, a, "bigint")),
    "anon.random_date": (
        0,
        0,
        _const("('1970-01-01'::timestamptz + random() * interval '60 years')"),
    ),
    "anon.random_date_between": (2, 2, _random_date_between),
    "anon.random_hash": (1, 1, lambda n, a: f"md5({_text(a[0])} || random()::text)"),
    "anon.random_in": (1, 64, _random_in),
    "anon.hash": (1, 1, _hash),
    "anon.digest": (3, 3, _digest),
    "anon.pseudo_first_name": (1, 2, _pseudo(FIRST_NAMES)),
    "anon.pseudo_last_name": (1, 2, _pseudo(LAST_NAMES)),
    "anon.pseudo_email": (1, 2, _pseudo_email),
    "anon.pseudo_city": (1, 2, _pseudo(CITIES)),
    "anon.pseudo_country": (1, 2, _pseudo(COUNTRIES)),
    "anon.pseudo_company": (1, 2, _pseudo(COMPANIES)),
    "anon.noise": (2, 2, _noise),
    "anon.dnoise": (2, 2, _dnoise),
}


def expression(rule: MaskRule) -> str:
    """The SQL expression that replaces the column's value (MaskingError for what cannot be run)."""
    if rule.value is not None and rule.function is not None:
        raise MaskingError(
            f"masking rule for {rule.target}: give masking_function or masking_value, not both"
        )
    if rule.value is not None:
        return quote_literal(rule.value)
    if rule.function is None or not rule.function.strip():
        raise MaskingError(f"masking rule for {rule.target}: needs a masking_function or a masking_value")
    name, args = parse_call(rule.function)
    if name == "null":
        return "NULL"
    known = FUNCTIONS.get(name)
    if known is None:
        raise MaskingError(
            f"unsupported masking function {name} (in {rule.function!r} for {rule.target}); "
            f"the emulator implements NULL, masking_value and: {', '.join(sorted(FUNCTIONS))}"
        )
    low, high, build = known
    if not low <= len(args) <= high:
        wanted = str(low) if low == high else f"{low} to {high}"
        raise MaskingError(f"{name} takes {wanted} argument(s), got {len(args)} in {rule.function!r}")
    return build(name, args)


def parse_rule(rule: MaskRule) -> None:
    """Raise MaskingError when the emulator cannot apply ``rule`` (the API answers 400 with it)."""
    expression(rule)


def masking_statements(rules: Iterable[MaskRule]) -> list[str]:
    """One ``UPDATE`` per table (in first-seen order) setting every masked column of that table."""
    by_table: dict[tuple[str, str], list[str]] = {}
    for rule in rules:
        assignment = f"{quote_ident(rule.column)} = {expression(rule)}"
        by_table.setdefault((rule.schema, rule.table), []).append(assignment)
    return [
        f"UPDATE {quote_ident(schema)}.{quote_ident(table)} SET {', '.join(assignments)}"
        for (schema, table), assignments in by_table.items()
    ]
