"""Static masking on the real data plane: each supported function masks the branch's column and
leaves the parent's data exactly as it was."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

import pytest

from jambo_emulator.dataplane.base import DataPlaneError
from jambo_emulator.dataplane.masking import MaskRule

from .support import Project

PEOPLE = [
    (1, "Ada", "Lovelace", "ada@analytical.example", "+44 20 7946 0001", 36, "1815-12-10"),
    (2, "Grace", "Hopper", "grace@navy.example", "+1 202 555 0102", 85, "1906-12-09"),
    (3, "Edsger", "Dijkstra", "edsger@eindhoven.example", "+31 40 247 0003", 72, "1930-05-11"),
]
COLUMNS = ("id", "first_name", "last_name", "email", "phone", "age", "born")


def _seed(project: Project) -> None:
    with project.connect(project.endpoint("br-main")) as conn:
        conn.execute(
            "CREATE TABLE people (id int PRIMARY KEY, first_name text, last_name text, "
            "email varchar(200), phone text, age int, born date)"
        )
        for row in PEOPLE:
            conn.execute("INSERT INTO people VALUES (%s, %s, %s, %s, %s, %s, %s)", row)


def _rows(project: Project, branch_id: str) -> list[dict[str, object]]:
    with project.connect(project.endpoint(branch_id)) as conn:
        rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM people ORDER BY id").fetchall()
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows]


def _rule(column: str, function: str | None = None, value: str | None = None) -> MaskRule:
    return MaskRule("neondb", "public", "people", column, function=function, value=value)


Check = Callable[[object, tuple[object, ...]], bool]
HEX32, HEX64, HEX128 = (re.compile(f"[0-9a-f]{{{n}}}") for n in (32, 64, 128))
EMAIL = re.compile(r"^[a-z]+\.[a-z]+\d*@example\.(com|net|org)$")

CASES: list[tuple[str, str | None, str | None, Check]] = [
    ("first_name", "anon.fake_first_name()", None, lambda v, row: isinstance(v, str) and v[0].isupper()),
    ("first_name", "anon.dummy_first_name()", None, lambda v, row: isinstance(v, str) and v.isalpha()),
    ("last_name", "anon.fake_last_name()", None, lambda v, row: isinstance(v, str) and v[0].isupper()),
    ("email", "anon.fake_email()", None, lambda v, row: EMAIL.match(str(v)) is not None),
    ("email", "anon.dummy_safe_email()", None, lambda v, row: EMAIL.match(str(v)) is not None),
    ("email", "anon.pseudo_email(id)", None, lambda v, row: "@example." in str(v)),
    ("phone", "anon.random_phone('+00 ')", None, lambda v, row: re.fullmatch(r"\+00 \d{8}", str(v))),
    ("phone", "anon.dummy_phone_number()", None, lambda v, row: re.fullmatch(r"0\d{8}", str(v))),
    (
        "phone",
        "anon.partial(phone, 3, '******', 2)",
        None,
        lambda v, row: v == f"{str(row[4])[:3]}******{str(row[4])[-2:]}",
    ),
    (
        "email",
        "anon.partial_email(email)",
        None,
        lambda v, row: v == f"{str(row[3])[:2]}******@{str(row[3]).split('@')[1][:2]}******.example",
    ),
    ("last_name", "anon.random_string(12)", None, lambda v, row: re.fullmatch(r"[A-Z]{12}", str(v))),
    ("phone", "anon.random_zip()", None, lambda v, row: re.fullmatch(r"\d{5}", str(v))),
    ("age", "anon.random_int_between(18, 20)", None, lambda v, row: isinstance(v, int) and 18 <= v <= 20),
    ("age", "anon.random_bigint_between(30, 31)", None, lambda v, row: v in (30, 31)),
    (
        "born",
        "anon.random_date_between('2000-01-01', '2000-12-31')",
        None,
        lambda v, row: str(v)[:4] == "2000",
    ),
    ("born", "anon.random_date()", None, lambda v, row: 1970 <= int(str(v)[:4]) <= 2030),
    ("first_name", "anon.random_in('x', 'y')", None, lambda v, row: v in ("x", "y")),
    ("email", "anon.random_hash(email)", None, lambda v, row: HEX32.fullmatch(str(v))),
    ("email", "anon.hash(email)", None, lambda v, row: HEX128.fullmatch(str(v))),
    (
        "email",
        "anon.digest(email, 'salt', 'sha256')",
        None,
        lambda v, row: HEX64.fullmatch(str(v)),
    ),
    (
        "email",
        "anon.digest(email, 'salt', 'md5')",
        None,
        lambda v, row: HEX32.fullmatch(str(v)),
    ),
    ("first_name", "anon.pseudo_first_name(first_name, 'salt')", None, lambda v, row: str(v).isalpha()),
    (
        "age",
        "anon.noise(age, 0.1)",
        None,
        lambda v, row: isinstance(v, int) and abs(v - int(str(row[5]))) <= 9,
    ),
    ("born", "anon.dnoise(born, '3 days')", None, lambda v, row: v is not None),
    ("email", None, "redacted@example.invalid", lambda v, row: v == "redacted@example.invalid"),
    ("email", "NULL", None, lambda v, row: v is None),
]


@pytest.mark.parametrize(
    ("column", "function", "value", "check"), CASES, ids=[c[1] or f"value:{c[2]}" for c in CASES]
)
def test_each_function_masks_the_branch_and_leaves_the_parent(
    project: Project, column: str, function: str | None, value: str | None, check: Check
) -> None:
    _seed(project)
    before = _rows(project, "br-main")
    project.branch("br-anon")

    project.plane.apply_masking(project.id, "br-anon", [_rule(column, function, value)])

    masked = _rows(project, "br-anon")
    for original, row, seed in zip(before, masked, PEOPLE, strict=True):
        assert check(row[column], seed), f"{function or value}: {row[column]!r} (was {original[column]!r})"
        # Only the named column changed.
        assert {k: v for k, v in row.items() if k != column} == {
            k: v for k, v in original.items() if k != column
        }
    if column in ("first_name", "last_name", "email", "phone"):
        originals = {str(r[column]) for r in before}
        assert not originals & {str(r[column]) for r in masked}, "an original value survived"
    assert _rows(project, "br-main") == before  # the parent is never touched


def test_several_columns_of_one_table_in_one_update_see_the_original_values(project: Project) -> None:
    _seed(project)
    project.branch("br-anon")
    project.plane.apply_masking(
        project.id,
        "br-anon",
        [_rule("email", "anon.fake_email()"), _rule("phone", "anon.digest(email, '', 'md5')")],
    )
    masked = _rows(project, "br-anon")
    assert [r["phone"] for r in masked] == [hashlib.md5(str(p[3]).encode()).hexdigest() for p in PEOPLE]


def test_a_missing_column_fails_naming_it_and_masks_nothing(project: Project) -> None:
    _seed(project)
    project.branch("br-anon")
    before = _rows(project, "br-anon")
    with pytest.raises(DataPlaneError, match="emial"):
        project.plane.apply_masking(
            project.id, "br-anon", [_rule("first_name", "anon.fake_first_name()"), _rule("emial", "NULL")]
        )
    assert _rows(project, "br-anon") == before  # one transaction: the first column is unmasked too


def test_a_missing_database_fails_naming_it(project: Project) -> None:
    project.branch("br-anon")
    with pytest.raises(DataPlaneError, match="'nodb' does not exist"):
        project.plane.apply_masking(project.id, "br-anon", [MaskRule("nodb", "public", "t", "c", "NULL")])


def test_values_with_quotes_are_literals_not_sql(project: Project) -> None:
    _seed(project)
    project.branch("br-anon")
    sneaky = "x'); DROP TABLE people; --"
    project.plane.apply_masking(project.id, "br-anon", [_rule("last_name", None, sneaky)])
    assert {r["last_name"] for r in _rows(project, "br-anon")} == {sneaky}
