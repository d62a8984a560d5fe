"""The run query language (runs/query.py): the parser, the SDK's writer of the same language
(runs/sdk/_query.py), filtering runs with it and sorting them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from runs.models import Experiment, Run, RunSpec, Workspace
from runs.query import And, Compare, Field, Has, Not, Or, QueryError, Text, parse, to_q
from runs.sdk._query import quote, run_filter
from tests.conftest import make_run

# --- AST shorthands -------------------------------------------------------------------------------------------


def tag(key: str) -> Field:
    return Field("tags", key)


def prop(key: str) -> Field:
    return Field("properties", key)


def metric(name: str, aggregate: str = "last") -> Field:
    return Field("metrics", name, aggregate)


a, b, c = Text("a"), Text("b"), Text("c")
FAILED = Compare(Field("status"), "=", "Failed")


# --- Parsing (no database) ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # free text and implicit AND
        ("resnet", Text("resnet")),
        ("  resnet  ", Text("resnet")),
        ("a b", And((a, b))),
        ("a b c", And((a, b, c))),
        ("a and b", And((a, b))),
        ("a AND b And c", And((a, b, c))),
        ("a and b c", And((a, b, c))),
        # or, not, precedence and parentheses
        ("a or b", Or((a, b))),
        ("a OR b or c", Or((a, b, c))),
        ("a or b and c", Or((a, And((b, c))))),
        ("a and b or c", Or((And((a, b)), c))),
        ("a b or c", Or((And((a, b)), c))),
        ("a or b c", Or((a, And((b, c))))),
        ("not a", Not(a)),
        ("NOT a", Not(a)),
        ("not not a", Not(Not(a))),
        ("not a b", And((Not(a), b))),
        ("not a or b", Or((Not(a), b))),
        ("a or not b and c", Or((a, And((Not(b), c))))),
        ("a OR b AND NOT c", Or((a, And((b, Not(c)))))),
        ("not (a or b)", Not(Or((a, b)))),
        ("(a or b) c", And((Or((a, b)), c))),
        ("(a or b) and c", And((Or((a, b)), c))),
        ("a (b or c)", And((a, Or((b, c))))),
        ("a and (b and c)", And((a, And((b, c))))),
        ("((a))", a),
        ("( a )", a),
        ("(a)(b)", And((a, b))),
        # comparisons of plain fields; ':' is '='
        ("status = Failed", FAILED),
        ("status=Failed", FAILED),
        ("status:Failed", FAILED),
        ("status : Failed", FAILED),
        ('status = "Failed"', FAILED),
        ("status = 'Failed'", FAILED),
        ("STATUS = failed", Compare(Field("status"), "=", "failed")),
        ("status != Failed", Compare(Field("status"), "!=", "Failed")),
        ("name ~ res", Compare(Field("name"), "~", "res")),
        ("experiment !~ mnist", Compare(Field("experiment"), "!~", "mnist")),
        ("display_name = zebra", Compare(Field("display_name"), "=", "zebra")),
        ("user = carol", Compare(Field("user"), "=", "carol")),
        ("number > 3", Compare(Field("number"), ">", "3")),
        ("number >= 3", Compare(Field("number"), ">=", "3")),
        ("number < 3", Compare(Field("number"), "<", "3")),
        ("number <= 3", Compare(Field("number"), "<=", "3")),
        ("created >= 2026-01-01", Compare(Field("created"), ">=", "2026-01-01")),
        ('created < "2026-01-01T10:00:00"', Compare(Field("created"), "<", "2026-01-01T10:00:00")),
        # in (...)
        ("status in (Failed, Canceled)", Compare(Field("status"), "in", ("Failed", "Canceled"))),
        ("status IN (Failed)", Compare(Field("status"), "in", ("Failed",))),
        ("status in(Failed,Canceled)", Compare(Field("status"), "in", ("Failed", "Canceled"))),
        ("status in (\"Failed\", 'Canceled')", Compare(Field("status"), "in", ("Failed", "Canceled"))),
        ("tags.team in (vision, nlp)", Compare(tag("team"), "in", ("vision", "nlp"))),
        # keyed fields
        ("tags.team = vision", Compare(tag("team"), "=", "vision")),
        ("tags.team:vision", Compare(tag("team"), "=", "vision")),
        ("TAGS.Team = x", Compare(tag("Team"), "=", "x")),
        ("tags.a.b = 1", Compare(tag("a.b"), "=", "1")),
        ('tags."key with spaces" = "a b"', Compare(tag("key with spaces"), "=", "a b")),
        ("tags.'single quoted' = x", Compare(tag("single quoted"), "=", "x")),
        ('tags."k"="v"', Compare(tag("k"), "=", "v")),
        ('tags."worth another look"', Has(tag("worth another look"))),
        ("tags.reviewed", Has(tag("reviewed"))),
        ("tags.team ~ vis", Compare(tag("team"), "~", "vis")),
        ("tags.team !~ vis", Compare(tag("team"), "!~", "vis")),
        ('properties.author = "azureml-user"', Compare(prop("author"), "=", "azureml-user")),
        ("properties.author", Has(prop("author"))),
        # metrics: the last value unless an aggregate follows; a quoted name is a name
        ("metrics.loss < 0.2", Compare(metric("loss"), "<", "0.2")),
        ("metrics.loss.last = 1", Compare(metric("loss"), "=", "1")),
        ("metrics.loss.min < 0.2", Compare(metric("loss", "min"), "<", "0.2")),
        ("metrics.loss.max >= 1", Compare(metric("loss", "max"), ">=", "1")),
        ("metrics.loss.count > 3", Compare(metric("loss", "count"), ">", "3")),
        ('metrics."a.min" < 1', Compare(metric("a.min"), "<", "1")),
        ("metrics.'a.max' < 1", Compare(metric("a.max"), "<", "1")),
        ('metrics."loss" < 1', Compare(metric("loss"), "<", "1")),
        ("metrics.a.b.min < 1", Compare(metric("a.b", "min"), "<", "1")),
        ("metrics.a.median < 1", Compare(metric("a.median"), "<", "1")),
        ("metrics.min < 1", Compare(metric("min"), "<", "1")),
        ("metrics.loss > -1.5e-3", Compare(metric("loss"), ">", "-1.5e-3")),
        ("metrics.loss", Has(metric("loss"))),
        ("metrics.loss.min", Has(metric("loss", "min"))),
        # quoted strings are free text, with escapes
        ('"quoted text"', Text("quoted text")),
        ("'single'", Text("single")),
        (r'"say \"hi\""', Text('say "hi"')),
        (r"'it\'s'", Text("it's")),
        (r'"back\\slash"', Text("back\\slash")),
        (r'"\a\b"', Text("ab")),
        ('"it\'s"', Text("it's")),
        ("'say \"hi\"'", Text('say "hi"')),
        ('""', Text("")),
        ('"status = Failed"', Text("status = Failed")),
        ('"a" "b"', And((a, b))),
        ('"and"', Text("and")),
        # a plain field name alone, or an unknown dotted word, is a word to search for
        ("status", Text("status")),
        ("experiment", Text("experiment")),
        ("created", Text("created")),
        ("tags", Text("tags")),
        ("tags.", Text("tags.")),
        ("resnet.v2", Text("resnet.v2")),
        ("3.14", Text("3.14")),
        ("status Failed", And((Text("status"), Text("Failed")))),
        # unicode
        ("tags.équipe = 視覚", Compare(tag("équipe"), "=", "視覚")),
        ("zürich", Text("zürich")),
        # the examples of the module's docstring
        (
            "status = Failed and tags.team = vision",
            And((FAILED, Compare(tag("team"), "=", "vision"))),
        ),
        (
            "experiment = mnist metrics.loss < 0.2",
            And((Compare(Field("experiment"), "=", "mnist"), Compare(metric("loss"), "<", "0.2"))),
        ),
        (
            "status in (Failed, Canceled) or not tags.reviewed",
            Or((Compare(Field("status"), "in", ("Failed", "Canceled")), Not(Has(tag("reviewed"))))),
        ),
        (
            'properties.author = "azureml-user"  created >= 2026-01-01',
            And((Compare(prop("author"), "=", "azureml-user"), Compare(Field("created"), ">=", "2026-01-01"))),
        ),
        (
            "not (status = Failed or tags.flaky) metrics.acc.max >= 0.9",
            And((Not(Or((FAILED, Has(tag("flaky"))))), Compare(metric("acc", "max"), ">=", "0.9"))),
        ),
    ],
)
def test_it_parses(text: str, expected: Any) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize("text", ["", " ", "   ", "\t\n "])
def test_it_parses_blank_text_as_none(text: str) -> None:
    assert parse(text) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # quotes
        ('"unclosed', "unclosed quote"),
        ("resnet 'unclosed", "unclosed quote"),
        ('tags."oops = 1', "unclosed quote"),
        ('status = "Failed', "unclosed quote"),
        ('"ends in a backslash\\', "unclosed quote"),
        # unknown fields with an operator
        ("foo = 1", "unknown field 'foo'"),
        ("foo:1", "unknown field 'foo'"),
        ("foo in (1)", "unknown field 'foo'"),
        ("foo.bar ~ 1", "unknown field 'foo.bar'"),
        ("status = Failed and colour = red", "unknown field 'colour'"),
        # parentheses
        ("(a or b", r"missing '\)' for the '\(' at character 0"),
        ("x (a", r"missing '\)' for the '\(' at character 2"),
        ("status in (Failed, Canceled", r"missing '\)' after the values of 'in'"),
        ("status in (Failed Canceled)", r"missing '\)' after the values of 'in'"),
        ("a)", r"unexpected '\)' at character 1"),
        ("()", "expected a search term or a condition at character 1"),
        # dangling operators and missing values
        ("status =", "expected a value at the end"),
        ("status = ", "expected a value at the end"),
        ("tags.team !=", "expected a value at the end"),
        ("status = (Failed)", "expected a value at character 9"),
        ("status == Failed", "expected a value at character 8"),
        ("status in (,)", "expected a value at character 11"),
        ("status in (Failed,)", "expected a value at character 18"),
        ("= Failed", "expected a search term or a condition at character 0"),
        ("a and", "expected a search term or a condition at the end"),
        ("a or", "expected a search term or a condition at the end"),
        ("not", "expected a search term or a condition at the end"),
        ("and a", "expected a search term or a condition at character 0"),
        ("a or or b", "expected a search term or a condition at character 5"),
        ("a, b", "expected a search term or a condition at character 1"),
        # in without parentheses
        ("status in Failed", r"expected '\(' after 'in' at character 7"),
        ("tags.team in vision, nlp", r"expected '\(' after 'in' at character 10"),
        # stray characters
        ("a!b", "unexpected '!' at character 1"),
    ],
)
def test_it_refuses_invalid_queries_with_a_helpful_message(text: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse(text)


def test_it_lists_the_fields_when_a_field_is_unknown() -> None:
    with pytest.raises(QueryError) as error:
        parse("colour = red")
    for field in ("status", "experiment", "created", "tags.<key>", "properties.<key>", "metrics.<name>"):
        assert field in str(error.value)


def test_it_makes_query_errors_value_errors() -> None:
    assert issubclass(QueryError, ValueError)


# --- Meaning errors found when building the filter (no database) --------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("status = bogus", "'bogus' is not a status; use one of .*Completed.*Failed.*Canceled"),
        ("status in (Failed, bogus)", "'bogus' is not a status"),
        ("status != nope", "'nope' is not a status"),
        ("type = batch", "'batch' is not a type; use one of interactive, script"),
        ("status < Failed", "status takes =, !=, ~, !~ or in, not <"),
        ("experiment >= mnist", "experiment takes =, !=, ~, !~ or in, not >="),
        ("metrics.loss < low", "metrics.loss compares numbers; 'low' is not a finite number"),
        ('metrics.loss.min = "1,5"', "metrics.loss compares numbers; '1,5' is not a finite number"),
        ("metrics.loss = ''", "metrics.loss compares numbers; '' is not a finite number"),
        ("metrics.loss ~ 1", "metrics.loss compares numbers: use =, !=, <, <=, > or >="),
        ("metrics.loss !~ 1", "metrics.loss compares numbers"),
        ("metrics.loss in (1, 2)", "metrics.loss compares numbers"),
        ("number = three", "number compares numbers; 'three' is not a finite number"),
        ("tags.team < b", "tags.team takes =, !=, ~, !~ or in, not <"),
        ("properties.author >= b", "properties.author takes =, !=, ~, !~ or in, not >="),
        (
            "created = yesterday",
            r"created takes a date \(2026-01-31\) or a date and time \(2026-01-31T10:00\); not 'yesterday'",
        ),
        ("created >= 31/01/2026", "created takes a date"),
        ("created ~ 2026", "created takes =, !=, <, <=, > or >="),
        ("ended in (2026-01-01)", "ended takes =, !=, <, <=, > or >="),
        ("a or (b and not status = bogus)", "'bogus' is not a status"),
    ],
)
def test_it_refuses_conditions_that_mean_nothing(text: str, message: str, db: None) -> None:
    # (db: a search word's experiments and users are looked up while the conditions are built)
    with pytest.raises(QueryError, match=message):
        to_q(parse(text))


# --- Round trips through quote() and run_filter() (no database) -----------------------------------------------

AWKWARD = [
    "plain",
    "with space",
    "  padded  ",
    'dou"ble',
    "sin'gle",
    "'\"both\"'",
    '"',
    '""',
    "back\\slash",
    "trailing\\",
    "\\",
    "\\\\\\",
    '\\"',
    'end"',
    "a=b",
    "a:b",
    "!=~<>",
    "(paren)",
    "(",
    ")",
    "a, b",
    "x.y.min",
    "tags.x = y",
    "and",
    "or",
    "not",
    "in",
    "status",
    "ünïcödé 視覚 🚀",
    "tab\there",
    "new\nline",
    "%_*?",
]


@pytest.mark.parametrize("key", AWKWARD)
@pytest.mark.parametrize("value", ["v", "", *AWKWARD[::-3]])
def test_it_reads_back_quoted_tag_keys_and_values(key: str, value: str) -> None:
    assert parse(f"tags.{quote(key)} = {quote(value)}") == Compare(tag(key), "=", value)


@pytest.mark.parametrize("text", AWKWARD)
def test_it_reads_back_quoted_strings(text: str) -> None:
    assert parse(quote(text)) == Text(text)
    assert parse(f"properties.{quote(text)}") == Has(prop(text))
    assert parse(f"properties.{quote(text)} != {quote(text)}") == Compare(prop(text), "!=", text)
    assert parse(f"tags.{quote(text)} in ({quote(text)}, {quote(text[::-1])})") == Compare(
        tag(text), "in", (text, text[::-1])
    )
    # a quoted metric name is all name, even when it ends in .min
    assert parse(f"metrics.{quote(text)} >= 1") == Compare(metric(text), ">=", "1")
    assert parse(f"experiment = {quote(text)} {quote(text)}") == And(
        (Compare(Field("experiment"), "=", text), Text(text))
    )


def test_it_writes_nothing_for_no_filter() -> None:
    assert run_filter() == ""
    assert parse(run_filter()) is None
    assert parse(run_filter(tags={}, properties=[])) is None


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"experiment": "mnist"}, Compare(Field("experiment"), "=", "mnist")),
        ({"tags": "reviewed"}, Has(tag("reviewed"))),
        ({"tags": ["a", "b"]}, And((Has(tag("a")), Has(tag("b"))))),
        ({"tags": ("only",)}, Has(tag("only"))),
        ({"tags": {"team": "vision"}}, Compare(tag("team"), "=", "vision")),
        ({"tags": {"team": None}}, Has(tag("team"))),
        ({"tags": {"epochs": 5}}, Compare(tag("epochs"), "=", "5")),
        ({"properties": {"author": "azureml-user"}}, Compare(prop("author"), "=", "azureml-user")),
        ({"properties": "author"}, Has(prop("author"))),
        ({"type": "script"}, Compare(Field("type"), "=", "script")),
        ({"status": "Failed"}, FAILED),
        ({"status": ["Failed"]}, Compare(Field("status"), "in", ("Failed",))),
        ({"status": ("Failed", "Canceled")}, Compare(Field("status"), "in", ("Failed", "Canceled"))),
        (
            {
                "experiment": 'we"ird (exp)',
                "tags": {"team": "vision", "k with space": None, 'q"uote': "a\\b"},
                "properties": {"author": "x = y"},
                "type": "interactive",
                "status": ["Failed", "Canceled"],
            },
            And(
                (
                    Compare(Field("experiment"), "=", 'we"ird (exp)'),
                    Compare(tag("team"), "=", "vision"),
                    Has(tag("k with space")),
                    Compare(tag('q"uote'), "=", "a\\b"),
                    Compare(prop("author"), "=", "x = y"),
                    Compare(Field("type"), "=", "interactive"),
                    Compare(Field("status"), "in", ("Failed", "Canceled")),
                )
            ),
        ),
    ],
)
def test_it_reads_what_the_sdk_writes(kwargs: dict[str, Any], expected: Any) -> None:
    assert parse(run_filter(**kwargs)) == expected


@pytest.mark.parametrize("text", AWKWARD)
def test_it_reads_what_the_sdk_writes_for_awkward_strings(text: str) -> None:
    query = run_filter(experiment=text, tags={text: text, "other": None}, properties=[text], status=[text, "x"])
    assert parse(query) == And(
        (
            Compare(Field("experiment"), "=", text),
            Compare(tag(text), "=", text),
            Has(tag("other")),
            Has(prop(text)),
            Compare(Field("status"), "in", (text, "x")),
        )
    )


def test_it_refuses_what_is_neither_a_key_a_list_nor_a_dict_in_the_sdk() -> None:
    with pytest.raises(TypeError, match="tags must be a string, a dict or a list of keys"):
        run_filter(tags=5)


# --- Known bugs (strict: each fails loudly once fixed, so the marker can go) ---------------------------------


def test_it_parses_an_unquoted_date_and_time() -> None:
    assert parse("created >= 2026-01-01T10:00:00") == Compare(Field("created"), ">=", "2026-01-01T10:00:00")


@pytest.mark.parametrize(("text", "where"), [('"abc', 0), ('foo "ab', 4), ('"a\\"b', 0)])
def test_it_says_where_an_unclosed_quote_starts(text: str, where: int) -> None:
    with pytest.raises(QueryError, match=f"unclosed quote starting at character {where}$"):
        parse(text)


def test_it_matches_part_of_a_status_with_tilde() -> None:
    to_q(parse("status ~ fail"))  # the error message for status offers ~, yet this raises QueryError


@pytest.mark.parametrize("text", ["created >= 2026-13-01", "created = 2026-02-30", 'created < "2026-01-01T25:00:00"'])
def test_it_refuses_impossible_dates_with_a_query_error(text: str) -> None:
    with pytest.raises(QueryError, match="created takes a date"):
        to_q(parse(text))


def test_it_reads_what_the_sdk_writes_for_no_statuses() -> None:
    assert parse(run_filter(status=[])) == Compare(Field("status"), "in", ())  # matches no run


# --- Filtering runs (database) ------------------------------------------------------------------------------


def names(query: str) -> set[str]:
    return {run.display_name for run in Run.objects.search(query)}


@pytest.fixture
def world(workspace: Workspace, alice: User, carol: User) -> dict[str, Run]:
    """Four runs; names and words are chosen to match nothing else (not even hex in a run id)."""
    zebra = make_run(
        workspace,
        alice,
        experiment="mnist",
        display_name="zebra",
        description="baseline with dropout",
        tags={"team": "vision", "priority": "high"},
        properties={"author": "azureml-user"},
    )
    walrus = make_run(
        workspace,
        carol,
        experiment="mnist",
        display_name="walrus",
        tags={"team": "nlp", "reviewed": None},
        properties={"author": "someone"},
        type="script",
        script="train.py",
    )
    yak = make_run(
        workspace,
        alice,
        experiment="cifar",
        display_name="yak",
        tags={"team": "Vision", "worth another look": "yes"},
    )
    quokka = make_run(workspace, carol, experiment="cifar", display_name="quokka")
    walrus.fail(message="x")
    yak.transition(Run.Status.COMPLETED)
    return {run.display_name: run for run in (zebra, walrus, yak, quokka)}


ALL = {"zebra", "walrus", "yak", "quokka"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ALL),
        ("   ", ALL),
        # status, case-insensitively
        ("status = failed", {"walrus"}),
        ("status = FAILED", {"walrus"}),
        ("status = Failed", {"walrus"}),
        ("status:completed", {"yak"}),
        ("status = running", {"zebra", "quokka"}),
        ("status != running", {"walrus", "yak"}),
        ("status in (failed, Completed)", {"walrus", "yak"}),
        ("status in (Canceled)", set()),
        ("status ~ Running", {"zebra", "quokka"}),
        # type, experiment, user, name
        ("type = script", {"walrus"}),
        ("type = Interactive", {"zebra", "yak", "quokka"}),
        ("experiment = mnist", {"zebra", "walrus"}),
        ("experiment = 'cifar'", {"yak", "quokka"}),
        ("experiment != mnist", {"yak", "quokka"}),
        ("experiment ~ MNI", {"zebra", "walrus"}),
        ("experiment !~ MNI", {"yak", "quokka"}),
        ("experiment in (mnist, nope)", {"zebra", "walrus"}),
        ("experiment = nope", set()),
        ("user = carol", {"walrus", "quokka"}),
        ("submitted_by = alice", {"zebra", "yak"}),
        ("name = zebra", {"zebra"}),
        ("display_name ~ AL", {"walrus"}),
        ("description ~ dropout", {"zebra"}),
        ("target = local", ALL),
        # tags: equality is exact, ~ is case-insensitive, != and not include runs without the tag
        ("tags.team = vision", {"zebra"}),
        ("tags.team = Vision", {"yak"}),
        ("tags.team = vis", set()),
        ("tags.team:nlp", {"walrus"}),
        ("tags.team ~ vision", {"zebra", "yak"}),
        ("tags.team ~ IS", {"zebra", "yak"}),
        ("tags.team !~ vis", {"walrus", "quokka"}),
        ("tags.team != vision", {"walrus", "yak", "quokka"}),
        ("tags.team in (vision, nlp)", {"zebra", "walrus"}),
        ("tags.team in (nope)", set()),
        ("tags.team", {"zebra", "walrus", "yak"}),
        ("not tags.team", {"quokka"}),
        ("tags.reviewed", {"walrus"}),
        ('tags."worth another look"', {"yak"}),
        ("tags.'worth another look' = yes", {"yak"}),
        ("tags.Team", set()),
        ("tags.nope", set()),
        # two tag conditions are each their own EXISTS: both required, on different tags
        ("tags.team = vision tags.priority = high", {"zebra"}),
        ("tags.team = vision and tags.priority = high", {"zebra"}),
        ("tags.team and tags.priority", {"zebra"}),
        ("tags.team = nlp and tags.priority = high", set()),
        ("tags.team = vision and tags.reviewed", set()),
        ("tags.team and not tags.priority", {"walrus", "yak"}),
        # properties
        ('properties.author = "azureml-user"', {"zebra"}),
        ("properties.author = azureml-user", {"zebra"}),
        ("properties.author", {"zebra", "walrus"}),
        ("properties.author ~ SOME", {"walrus"}),
        ("properties.author != someone", {"zebra", "yak", "quokka"}),
        ("properties.author in (someone, x)", {"walrus"}),
        ("properties.team", set()),
        # free text: display name, description, experiment, tag keys and values, submitter, status
        ("zebra", {"zebra"}),
        ("ZEBRA", {"zebra"}),
        ("wal", {"walrus"}),
        ("dropout", {"zebra"}),
        ('"with dropout"', {"zebra"}),
        ("cifar", {"yak", "quokka"}),
        ("mnist", {"zebra", "walrus"}),
        ("priority", {"zebra"}),
        ("high", {"zebra"}),
        ("reviewed", {"walrus"}),
        ("another", {"yak"}),
        ("nlp", {"walrus"}),
        ("vision", {"zebra", "yak"}),
        ("carol", {"walrus", "quokka"}),
        ("Alice", {"zebra", "yak"}),
        ("failed", {"walrus"}),
        ("nothing-matches-this", set()),
        # not, or, and combinations
        ("zebra walrus", set()),
        ("zebra or walrus", {"zebra", "walrus"}),
        ("not cifar", {"zebra", "walrus"}),
        ("not not cifar", {"yak", "quokka"}),
        ("status = Failed and tags.team = nlp", {"walrus"}),
        ("status = Failed and tags.team = vision", set()),
        ("experiment = cifar or tags.team = nlp", {"yak", "quokka", "walrus"}),
        ("not (experiment = cifar or status = failed)", {"zebra"}),
        ("experiment = mnist (status = failed or tags.priority)", {"zebra", "walrus"}),
        ("mnist not zebra", {"walrus"}),
        ("status in (Failed, Canceled) or not tags.reviewed", ALL),
        ("vision status = completed", {"yak"}),
    ],
)
def test_it_finds_runs(world: dict[str, Run], query: str, expected: set[str]) -> None:
    assert names(query) == expected


def test_it_checks_each_tag_condition_in_its_own_subquery(world: dict[str, Run]) -> None:
    sql = str(Run.objects.search("tags.team = vision and tags.priority = high").query).upper()
    assert sql.count("IN (SELECT") == 2
    negated = str(Run.objects.search("not tags.team = vision and tags.priority != high").query).upper()
    assert negated.count("NOT (EXISTS(") == 2  # an anti-join on PostgreSQL, never NOT IN
    assert " IN (SELECT" not in negated


def test_it_searches_runs_without_a_submitter(workspace: Workspace, alice: User) -> None:
    make_run(workspace, None, display_name="ghost")
    make_run(workspace, alice, display_name="zebra")
    assert names("ghost") == {"ghost"}
    assert names("not zebra") == {"ghost"}
    assert names("not alice") == {"ghost"}
    assert names("user != alice") == {"ghost"}
    assert names("user = alice") == {"zebra"}


def test_it_finds_runs_by_run_id_parent_and_number(workspace: Workspace, alice: User) -> None:
    parent = make_run(workspace, alice, experiment="family", run_id="family-root", display_name="root")
    exp = Experiment.objects.get(workspace=workspace, name="family")
    exp.create_runs([RunSpec(display_name="kid"), RunSpec(display_name="kiddo")], by=alice, parent=parent)
    assert names("run_id = family-root") == {"root"}
    assert names("id ~ ROOT") == {"root"}
    assert names("parent = family-root") == {"kid", "kiddo"}
    assert names("parent != family-root") == {"root"}
    assert names("number = 1") == {"root"}
    assert names("number > 1") == {"kid", "kiddo"}
    assert names("number <= 2") == {"root", "kid"}
    assert names("number in (1, 3)") == {"root", "kiddo"}
    assert names("number != 2") == {"root", "kiddo"}


@pytest.fixture
def metric_runs(workspace: Workspace, alice: User) -> dict[str, Run]:
    runs = {name: make_run(workspace, alice, display_name=name) for name in ("zed", "yip", "wog", "vox")}
    runs["zed"].log_metrics([{"name": "loss", "value": v} for v in (0.5, 0.1, 0.3)])
    runs["yip"].log_metrics([{"name": "loss", "value": 0.15}])
    runs["wog"].log_metrics([{"name": "loss", "value": v} for v in (0.9, 0.8)])
    runs["vox"].log_metrics([{"name": "acc", "value": 0.7}, {"name": "a.min", "value": 5}])
    runs["wog"].log_metrics([{"name": "a", "value": 2}])
    return runs


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("metrics.loss < 0.2", {"yip"}),  # the last value: zed's last loss is 0.3
        ("metrics.loss.last < 0.2", {"yip"}),
        ("metrics.loss.min < 0.2", {"zed", "yip"}),
        ("metrics.loss.min <= 0.1", {"zed"}),
        ("metrics.loss.max > 0.6", {"wog"}),
        ("metrics.loss.max >= 0.5", {"zed", "wog"}),
        ("metrics.loss = 0.3", {"zed"}),
        ("metrics.loss != 0.3", {"yip", "wog", "vox"}),
        ("metrics.loss >= 0.3 and metrics.loss <= 0.8", {"zed", "wog"}),
        ("metrics.loss < 0.2 or metrics.loss > 0.5", {"yip", "wog"}),
        ("metrics.loss.count >= 2", {"zed", "wog"}),
        ("metrics.loss.count = 1", {"yip"}),
        ("metrics.loss < 1e3", {"zed", "yip", "wog"}),
        ("metrics.loss > -1", {"zed", "yip", "wog"}),
        ("metrics.loss < 0", set()),
        ("metrics.loss", {"zed", "yip", "wog"}),
        ("metrics.loss.min", {"zed", "yip", "wog"}),
        ("not metrics.loss", {"vox"}),
        ("metrics.acc > 0.5", {"vox"}),
        ("metrics.acc > 0.5 metrics.loss < 1", set()),
        ("metrics.nope > 0", set()),
        ('metrics."a.min" > 1', {"vox"}),  # the metric named a.min
        ("metrics.a.min > 1", {"wog"}),  # the minimum of the metric named a
        ("metrics.a", {"wog"}),
    ],
)
def test_it_finds_runs_by_metric(metric_runs: dict[str, Run], query: str, expected: set[str]) -> None:
    assert names(query) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("metrics.loss < low", "metrics.loss compares numbers; 'low' is not a finite number"),
        ("metrics.loss.max > 'x'", "metrics.loss compares numbers; 'x' is not a finite number"),
        ("metrics.loss ~ 1", "metrics.loss compares numbers"),
        ("status = bogus", "'bogus' is not a status; use one of NotStarted, .*, Canceled"),
    ],
)
def test_it_refuses_meaningless_searches(metric_runs: dict[str, Run], query: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        Run.objects.search(query)


@pytest.fixture
def dated_runs(workspace: Workspace, alice: User) -> dict[str, Run]:
    moments = {
        "old": dt.datetime(2025, 12, 31, 23, 30, tzinfo=dt.UTC),
        "newyear": dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC),
        "ides": dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.UTC),
    }
    runs = {}
    for name, moment in moments.items():
        runs[name] = make_run(workspace, alice, display_name=name)
        Run.objects.filter(pk=runs[name].pk).update(created_at=moment)
    runs["today"] = make_run(workspace, alice, display_name="today")
    return runs


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("created >= 2026-01-01", {"newyear", "ides", "today"}),
        ("created < 2026-01-01", {"old"}),
        ("created < 2026-03-15", {"old", "newyear"}),
        ("created = 2026-03-14", set()),
        ("created >= 2026-01-01 created < 2026-03-16", {"newyear", "ides"}),
        ('created >= "2026-03-15T11:00:00"', {"ides", "today"}),
        ('created > "2026-03-15T12:00:00"', {"today"}),
        ('created = "2026-03-15T12:00:00Z"', {"ides"}),
        ('created != "2026-03-15T12:00:00Z"', {"old", "newyear", "today"}),
        ('created <= "2026-03-15 12:00:00+00:00"', {"old", "newyear", "ides"}),
        ('created < "2026-03-15 12:00:00+00:00"', {"old", "newyear"}),
        ('created >= "2026-03-15T13:00:00+02:00"', {"ides", "today"}),  # 11:00 UTC
        ('created < "2026-01-01T01:00:00+01:00"', {"old"}),  # midnight UTC
        ("ended > 2000-01-01", set()),
        ("not ended <= 2026-01-01", {"old", "newyear", "ides", "today"}),
    ],
)
def test_it_finds_runs_by_date(dated_runs: dict[str, Run], query: str, expected: set[str]) -> None:
    assert names(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("created = 2026-01-01", {"newyear"}),
        ("created:2026-01-01", {"newyear"}),
        ("created = 2025-12-31", {"old"}),
        ("created != 2026-01-01", {"old", "ides", "today"}),
        ("created > 2026-01-01", {"ides", "today"}),
        ("created <= 2026-01-01", {"old", "newyear"}),
        ("created <= 2025-12-31", {"old"}),
    ],
)
def test_it_takes_a_date_as_the_whole_day(dated_runs: dict[str, Run], query: str, expected: set[str]) -> None:
    assert names(query) == expected


def test_it_finds_runs_created_since_today(dated_runs: dict[str, Run]) -> None:
    today = timezone.localtime(dated_runs["today"].created_at, dt.UTC).date().isoformat()
    assert names(f"created >= {today}") == {"today"}
    assert names(f"created < {today}") == {"old", "newyear", "ides"}


def test_it_finds_runs_created_today(dated_runs: dict[str, Run]) -> None:
    today = timezone.localtime(dated_runs["today"].created_at, dt.UTC).date().isoformat()
    assert names(f"created = {today}") == {"today"}


def test_it_finds_runs_ended_today(workspace: Workspace, alice: User) -> None:
    done = make_run(workspace, alice, display_name="done")
    make_run(workspace, alice, display_name="going")
    done.transition(Run.Status.COMPLETED)
    assert names("ended > 2000-01-01") == {"done"}
    today = timezone.localtime(done.ended_at, dt.UTC).date().isoformat()
    assert names(f"ended = {today}") == {"done"}
    assert names(f"ended != {today}") == {"going"}


@pytest.mark.parametrize("text", [t for t in AWKWARD if t.isprintable() and t.strip()])
def test_it_finds_what_the_sdk_asks_for(workspace: Workspace, alice: User, text: str) -> None:
    make_run(workspace, alice, experiment="awk", display_name="hit", tags={text: text}, properties={text: "p"})
    make_run(workspace, alice, experiment="awk", display_name="miss", tags={text: text + "!"})
    assert names(run_filter(experiment="awk", tags={text: text})) == {"hit"}
    assert names(run_filter(tags=[text])) == {"hit", "miss"}
    assert names(run_filter(properties={text: "p"}, status="running")) == {"hit"}
    assert names(run_filter(tags={text: text}, status=["Failed"])) == set()
    assert names(f"tags.{quote(text)} ~ {quote(text)}") == {"hit", "miss"}


# --- Sorting (database) --------------------------------------------------------------------------------------


@pytest.fixture
def sortable(workspace: Workspace, alice: User) -> dict[str, Run]:
    """loss (last / min / max): zed .3/.1/.5, yip .15, wog .8/.8/.9, vox none. team: vision, nlp, audio, none."""
    spec = {"zed": "vision", "yip": "nlp", "wog": "audio", "vox": None}
    runs = {}
    for index, (name, team) in enumerate(spec.items()):
        runs[name] = make_run(workspace, alice, display_name=name, tags={"team": team} if team else None)
        created = dt.datetime(2026, 1, 10 - index, tzinfo=dt.UTC)  # zed newest, vox oldest
        Run.objects.filter(pk=runs[name].pk).update(created_at=created)
    runs["zed"].log_metrics([{"name": "loss", "value": v} for v in (0.5, 0.1, 0.3)])
    runs["yip"].log_metrics([{"name": "loss", "value": 0.15}])
    runs["wog"].log_metrics([{"name": "loss", "value": v} for v in (0.9, 0.8)])
    runs["wog"].add_properties({"owner": "b"})
    runs["vox"].add_properties({"owner": "a"})
    return runs


def order(workspace: Workspace, sort: str, query: str = "") -> list[str]:
    return [run.display_name for run in Run.objects.filter(workspace=workspace).search(query).sorted_by(sort)]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("metrics.loss", ["yip", "zed", "wog", "vox"]),
        ("-metrics.loss", ["wog", "zed", "yip", "vox"]),
        ("metrics.loss.last", ["yip", "zed", "wog", "vox"]),
        ("metrics.loss.min", ["zed", "yip", "wog", "vox"]),
        ("-metrics.loss.min", ["wog", "yip", "zed", "vox"]),
        ("metrics.loss.max", ["yip", "zed", "wog", "vox"]),
        ("-metrics.loss.max", ["wog", "zed", "yip", "vox"]),
        ("metrics.loss.count", ["yip", "wog", "zed", "vox"]),
        ("metrics.nope", ["zed", "yip", "wog", "vox"]),  # all missing: primary key order
        ("tags.team", ["wog", "yip", "zed", "vox"]),
        ("-tags.team", ["zed", "yip", "wog", "vox"]),
        ('tags."team"', ["wog", "yip", "zed", "vox"]),
        ("properties.owner", ["vox", "wog", "zed", "yip"]),
        ("-properties.owner", ["wog", "vox", "yip", "zed"]),  # ties: primary key, descending
        ("-created", ["zed", "yip", "wog", "vox"]),
        ("created", ["vox", "wog", "yip", "zed"]),
        ("", ["zed", "yip", "wog", "vox"]),  # newest first
        (" , ", ["zed", "yip", "wog", "vox"]),
        ("display_name", ["vox", "wog", "yip", "zed"]),
        ("-display_name", ["zed", "yip", "wog", "vox"]),
        ("name", ["vox", "wog", "yip", "zed"]),
        ("number", ["zed", "yip", "wog", "vox"]),
        ("-number", ["vox", "wog", "yip", "zed"]),
        ("status,display_name", ["vox", "wog", "yip", "zed"]),
        # several keys: runs without the tag last, then by loss
        ("tags.team, -metrics.loss", ["wog", "yip", "zed", "vox"]),
        ("-metrics.loss.min,display_name", ["wog", "yip", "zed", "vox"]),
    ],
)
def test_it_sorts_runs(workspace: Workspace, sortable: dict[str, Run], sort: str, expected: list[str]) -> None:
    assert order(workspace, sort) == expected


def test_it_sorts_runs_missing_a_metric_last_in_both_directions(workspace: Workspace, alice: User) -> None:
    for name, loss in [("m1", None), ("m2", 0.2), ("m3", None), ("m4", 0.1)]:
        run = make_run(workspace, alice, display_name=name)
        if loss is not None:
            run.log_metrics([{"name": "loss", "value": loss}])
        else:
            run.log_metrics([{"name": "other", "value": 1.0}])
    assert order(workspace, "metrics.loss") == ["m4", "m2", "m1", "m3"]
    assert order(workspace, "-metrics.loss") == ["m2", "m4", "m3", "m1"]
    assert order(workspace, "metrics.loss.min")[2:] == ["m1", "m3"]
    assert order(workspace, "-metrics.loss.max")[2:] == ["m3", "m1"]


def test_it_breaks_ties_by_primary_key_in_the_direction_of_the_first_key(workspace: Workspace, alice: User) -> None:
    for name in ("t1", "t2", "t3"):
        make_run(workspace, alice, display_name=name).log_metrics([{"name": "loss", "value": 1.0}])
    assert order(workspace, "metrics.loss") == ["t1", "t2", "t3"]
    assert order(workspace, "-metrics.loss") == ["t3", "t2", "t1"]


def test_it_sorts_what_it_found(workspace: Workspace, sortable: dict[str, Run]) -> None:
    assert order(workspace, "-metrics.loss", query="metrics.loss < 0.5") == ["zed", "yip"]
    assert order(workspace, "metrics.loss.min", query="tags.team") == ["zed", "yip", "wog"]


@pytest.mark.parametrize(
    "sort",
    ["bogus", "-bogus", "tags", "metrics", "description", "foo.bar", "(", "display_name,nope", "created desc"],
)
def test_it_refuses_unknown_sort_keys(workspace: Workspace, sort: str) -> None:
    with pytest.raises(QueryError, match="cannot sort by"):
        Run.objects.filter(workspace=workspace).sorted_by(sort)


def test_it_names_the_sort_keys_when_refusing_one(workspace: Workspace) -> None:
    with pytest.raises(QueryError) as error:
        Run.objects.all().sorted_by("-colour")
    message = str(error.value)
    assert "'colour'" in message
    for key in ("created", "display_name", "metrics.<name>", "tags.<key>", "properties.<key>"):
        assert key in message
