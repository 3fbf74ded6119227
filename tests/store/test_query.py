"""Filters and search on both backends: every qualifier, the seed examples, edges, injection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import auditlens as al
from tests.helpers import JANE_ID, ORG2, make_entry

APP = "0c9d8e7f-6a5b-4c3d-8e2f-1a0b9c8d7e6f"
BOB = {
    "user_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    "email": "Bob@Company.com",
    "type": "user",
}
BOT = {"user_id": None, "email": "ci@company.com", "type": "service_account"}


def _fixture_entries() -> list[dict]:
    return [
        make_entry(
            audit_id="00000000-0000-4000-8000-000000000001",
            timestamp="2025-01-01T00:00:00.000Z",
            action="auth.login",
            resource=None,
            details={},
        ),
        make_entry(
            audit_id="00000000-0000-4000-8000-000000000002", timestamp="2025-01-15T12:00:00.000Z"
        ),
        make_entry(
            audit_id="00000000-0000-4000-8000-000000000003",
            timestamp="2025-01-31T23:59:59.999Z",
            action="webhook.deleted",
            result="failure",
            resource={"type": "webhook", "id": "wh-9", "name": "Staging hook"},
        ),
        make_entry(
            audit_id="00000000-0000-4000-8000-000000000004",
            timestamp="2025-02-01T00:00:00.000Z",
            actor=BOB,
            action="auth.failed",
            result="failure",
            resource=None,
            ip_address="10.1.2.3",
            details={"reason": "invalid_password"},
        ),
        make_entry(
            audit_id="00000000-0000-4000-8000-000000000005",
            timestamp="2025-02-02T08:00:00.000Z",
            actor=BOB,
            action="billing.plan_changed",
            resource={"type": "plan", "id": "pro", "name": None},
            ip_address="2001:db8::7",
            organization_id=ORG2,
            application_id=None,
            details={"before": "starter", "after": "pro"},
        ),
        make_entry(
            audit_id="00000000-0000-4000-8000-000000000006",
            timestamp="2025-02-03T09:00:00.000Z",
            actor=BOT,
            action="webhook.updated",
            result="partial",
            ip_address="10.200.0.1",
            details={"note": "100%_done \\ O'Brien"},
        ),
        make_entry(
            audit_id="00000000-0000-4000-8000-000000000007",
            timestamp="2025-02-04T09:00:00.000Z",
            action="report.generated",
            resource={"type": "report", "id": "r-1", "name": "Q1"},
            ip_address=None,
            user_agent=None,
            details={"format": "pdf"},
        ),
    ]


@pytest.fixture
def filled(store: al.AuditStore) -> al.AuditStore:
    store.append(_fixture_entries())
    return store


def ids(store: al.AuditStore, where: object = None, **filters: object) -> list[int]:
    """Last digit of each matching audit_id, sorted (the fixture numbers entries 1..7)."""
    df = store.query(where, backend="polars", **filters)  # type: ignore[arg-type]
    return sorted(int(a[-1]) for a in df["audit_id"].to_list())


# -- keyword filters -------------------------------------------------------------
@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, [1, 2, 3, 4, 5, 6, 7]),
        ({"start": "2025-01-15"}, [2, 3, 4, 5, 6, 7]),
        ({"end": "2025-01-31"}, [1, 2, 3]),  # date-only end includes the whole day
        ({"start": "2025-01-31T23:59:59.999Z", "end": "2025-02-01T00:00:00Z"}, [3, 4]),
        ({"end": datetime(2025, 1, 15, 12, tzinfo=UTC)}, [1, 2]),
        ({"actor": "jane@company.com"}, [1, 2, 3, 7]),
        ({"actor": "BOB@company.COM"}, [4, 5]),  # emails match case-insensitively
        ({"actor": JANE_ID}, [1, 2, 3, 7]),
        ({"actor": ["ci@company.com", "bob@company.com"]}, [4, 5, 6]),
        ({"actor": "*@company.com", "actor_type": "service_account"}, [6]),
        ({"actions": "webhook.*"}, [2, 3, 6]),
        ({"actions": ["auth.login", "auth.failed"]}, [1, 4]),
        ({"action": "auth.login"}, [1]),
        ({"category": "webhooks"}, [2, 3, 6]),
        ({"category": "authentication"}, [1, 4]),
        ({"category": "auth"}, [1, 4]),  # a prefix is accepted as its category
        ({"category": "report"}, [7]),  # categories of actions outside the catalogue
        ({"resource_type": "webhook"}, [2, 3, 6]),
        ({"resource_id": "wh-9"}, [3]),
        ({"resource_name": "Staging hook"}, [3]),
        ({"resource": "wh-9"}, [3]),
        ({"resource": "Production Webhook"}, [2, 6]),
        ({"result": "failure"}, [3, 4]),
        ({"result": ["partial", "failure"]}, [3, 4, 6]),
        ({"organization_id": ORG2}, [5]),
        ({"application_id": APP}, [1, 2, 3, 4, 6, 7]),
        ({"ip": "10.0.0.0/8"}, [4, 6]),
        ({"ip": "10.1.2.3"}, [4]),
        ({"ip": "192.168.0.0/16"}, [1, 2, 3]),
        ({"ip": "2001:db8::/32"}, [5]),
        ({"ip": ["10.1.0.0/16", "2001:db8::7"]}, [4, 5]),
        ({"text": "production web"}, [2, 6]),
        ({"text": "INVALID_PASSWORD"}, [4]),  # details, case-insensitive
        ({"text": "bob@"}, [4, 5]),
        ({"text": "staging"}, [3]),
        ({"text": "pro"}, [2, 5, 6]),  # substring: Production, "pro" in details
        ({"text": "q1"}, [7]),  # shorter than a trigram: still found
        ({"text": "%"}, [6]),  # LIKE wildcards are literal
        ({"text": "_d"}, [6]),
        ({"text": "O'Brien"}, [6]),
        ({"text": ["webhook", "failure"]}, []),  # several texts must all match
        (
            {
                "actor": "jane@company.com",
                "actions": "webhook.*",
                "start": "2025-01-10",
                "end": "2025-01-31",
            },
            [2, 3],
        ),
    ],
)
def test_keyword_filters(filled: al.AuditStore, filters: dict, expected: list[int]) -> None:
    assert ids(filled, **filters) == expected


def test_last_duration_is_relative_to_now(store: al.AuditStore) -> None:
    now = datetime.now(UTC)
    stamps = [now - timedelta(hours=h) for h in (1, 23, 25, 24 * 6, 24 * 8)]
    store.append([make_entry(timestamp=t.isoformat()) for t in stamps])
    assert store.count(last="24h") == 2
    assert store.count(last="7d") == 4
    assert store.count(last="30d") == 5
    assert store.count(last="90m") == 1


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"start": "yesterday"}, "not a date"),
        ({"last": "7 parsecs"}, "not a duration"),
        ({"ip": "10.0.0.0/33"}, "not an IP address or CIDR"),
        ({"result": "ok"}, "not one of success, failure, partial"),
        ({"actor_type": "robot"}, "not one of"),
        ({"actions": "Webhook Created"}, "not an action"),
        ({"start": "2025-02-01", "end": "2025-01-01"}, "start is after end"),
    ],
)
def test_bad_filters_raise_clear_errors(filled: al.AuditStore, filters: dict, message: str) -> None:
    with pytest.raises(al.FilterError, match=message):
        filled.query(**filters)


def test_unknown_filter_in_a_mapping_is_named(filled: al.AuditStore) -> None:
    with pytest.raises(al.FilterError, match=r"unknown filter.*colour"):
        filled.query({"colour": "red"})


# -- search syntax -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("jane@company.com", [1, 2, 3, 7]),  # seed: all actions by Jane
        ("webhook.created", [2]),  # seed: all webhook creations
        ("failed", [3, 4]),  # seed: failures and auth.failed
        ("actor:jane@company.com", [1, 2, 3, 7]),
        ("action:webhook.*", [2, 3, 6]),
        ("action:webhook.* -result:success", [3, 6]),
        ('action:webhook.* -result:success "Production Webhook"', [6]),
        ("result:failure result:partial", [3, 4, 6]),  # same qualifier = OR
        ("result:failure,partial", [3, 4, 6]),
        ("result:failure action:auth.*", [4]),  # different qualifiers = AND
        ("-actor:jane@company.com", [4, 5, 6]),
        ("-result:success -result:failure", [6]),
        ("created:>=2025-02-01", [4, 5, 6, 7]),
        ("created:>2025-01-31", [4, 5, 6, 7]),
        ("created:<2025-01-31", [1, 2]),
        ("created:<=2025-01-31", [1, 2, 3]),
        ("created:2025-01-01..2025-01-31", [1, 2, 3]),
        ("created:2025-02-01", [4]),
        ("created:2025-01-01 created:2025-02-01", [1, 4]),  # days OR
        ("created:>=2025-01-15 created:<2025-02-02", [2, 3, 4]),  # comparisons AND
        ("created:2025-01-31T23:59:59.999Z..2025-02-01", [3, 4]),
        ("resource:wh-9", [3]),
        ("resource:wh-123", [2, 6]),
        ('resource:"Staging hook"', [3]),
        ("type:webhook -action:webhook.updated", [2, 3]),
        ("name:Q1", [7]),
        ("ip:10.0.0.0/8", [4, 6]),
        ("-ip:10.0.0.0/8", [1, 2, 3, 5, 7]),  # entries without an IP count as "not in"
        (f"org:{ORG2}", [5]),
        ("category:billing", [5]),
        ("category:webhooks,billing", [2, 3, 5, 6]),
        ("actor_type:service_account", [6]),
        ("id:00000000-0000-4000-8000-000000000004", [4]),
        ("app:" + APP + " -category:webhooks", [1, 4, 7]),
        ('"staging hook"', [3]),
        ("production", [2, 6]),
        ("-production", [1, 3, 4, 5, 7]),
        ("text:invalid_password", [4]),
        ("success", [1, 2, 5, 7]),
        ("bob@company.com billing.*", [5]),
        ("", [1, 2, 3, 4, 5, 6, 7]),
    ],
)
def test_search_syntax(filled: al.AuditStore, query: str, expected: list[int]) -> None:
    assert ids(filled, query) == expected
    assert sorted(int(e["audit_id"][-1]) for e in filled.entries(query)) == expected


@pytest.mark.parametrize(
    "query",
    [
        "'; DROP TABLE audit_entries; --",
        'text:"x\') OR 1=1 --"',
        '"\\" OR \\"1\\"=\\"1"',
        "production OR NEAR(a b) *",
        "actor:' OR ''='",
        "resource:%",
        "name:_",
        "résumé ✓ 日本語",
    ],
)
def test_injection_attempts_are_harmless(filled: al.AuditStore, query: str) -> None:
    try:
        result = ids(filled, query)
    except al.QuerySyntaxError:
        result = []
    assert result == []
    assert filled.count() == 7


def test_search_matches_filters_combined(filled: al.AuditStore) -> None:
    assert ids(filled, "action:webhook.*", result="failure") == [3]


def test_pandas_and_polars_results_are_equal(filled: al.AuditStore) -> None:
    for query in ("", "action:webhook.*", "failed", "ip:10.0.0.0/8"):
        pd_df = filled.search(query, backend="pandas")
        pl_df = filled.search(query, backend="polars")
        assert_frame_equal(pl.from_pandas(pd_df), pl_df, check_dtypes=False)
        assert list(pd_df.columns) == pl_df.columns == list(al.COLUMNS)
        assert str(pd_df["timestamp"].dtype) == "datetime64[ms, UTC]"


def test_order_and_limit(filled: al.AuditStore) -> None:
    newest = filled.query(limit=2, backend="polars")["audit_id"].to_list()
    oldest = filled.query(limit=2, order="asc", backend="polars")["audit_id"].to_list()
    assert [a[-1] for a in newest] == ["7", "6"]
    assert [a[-1] for a in oldest] == ["1", "2"]


def test_null_leading_columns_read_correctly(store: al.AuditStore) -> None:
    # the first rows have NULL resource/ip/user agent: the Arrow reader must still type them as text
    store.append(
        [
            make_entry(
                resource=None,
                ip_address=None,
                user_agent=None,
                timestamp=f"2025-01-01T00:00:{i:02d}Z",
            )
            for i in range(50)
        ]
        + [make_entry(timestamp="2025-01-02T00:00:00Z")]
    )
    df = store.query(order="asc", backend="polars")
    assert df.schema["resource_name"] == pl.Utf8
    assert df["resource_name"].to_list()[-1] == "Production Webhook"
    assert df["ip_address"].null_count() == 50


def test_empty_result_has_the_full_schema(filled: al.AuditStore) -> None:
    df = filled.query(actor="nobody@nowhere.example", backend="polars")
    assert df.shape == (0, len(al.COLUMNS))
    assert df.schema["seq"] == pl.Int64


def test_count_and_stats(filled: al.AuditStore) -> None:
    assert filled.count("failed") == 2
    st = filled.stats()
    assert st.total == 7
    assert dict(st.by_result) == {"success": 4, "failure": 2, "partial": 1}
    assert dict(st.by_category)["webhooks"] == 3
    assert st.by_day[0] == ("2025-01-01", 1)
    assert sum(n for _, n in st.by_day) == 7
    assert st.first == "2025-01-01T00:00:00.000Z"
    assert filled.stats(actor="bob@company.com").total == 2


def test_page_walks_every_entry_once_and_is_stable_under_appends(store: al.AuditStore) -> None:
    store.append(
        [make_entry(timestamp=f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}Z") for i in range(45)]
    )
    seen: list[str] = []
    page = store.page(limit=10)
    seen += [e["audit_id"] for e in page.entries]
    store.append([make_entry(timestamp="2025-06-01T00:00:00Z")])  # newer: would shift an offset
    while page.next_cursor:
        page = store.page(limit=10, cursor=page.next_cursor)
        seen += [e["audit_id"] for e in page.entries]
    assert len(seen) == 45 == len(set(seen))
    with pytest.raises(al.FilterError, match="invalid page cursor"):
        store.page(cursor="garbage")


def test_query_audit_trail_seed_helper(filled: al.AuditStore) -> None:
    got = al.query_audit_trail(
        filled,
        start_date="2025-01-01",
        end_date="2025-01-31",
        actions=["webhook.created", "webhook.deleted"],
        limit=100,
    )
    assert [e["action"] for e in got] == ["webhook.created", "webhook.deleted"]
    assert set(got[0]) >= {"audit_id", "timestamp", "actor", "resource", "details", "result"}


# -- text search: Unicode case, details as users read them, one field per phrase ---------
ODON = [
    ("ÖDÖN@Bücher.de", "Ödön's hook", {"owner": "ÖDÖN ÁRPÁD"}),
    ("ödön@bücher.de", "ÖDÖN'S HOOK", {"owner": "ödön árpád"}),
    ("Ödön@BÜCHER.DE", "ödön's Hook", {"owner": "Ödön Árpád"}),
]


@pytest.fixture
def odon(store: al.AuditStore) -> al.AuditStore:
    """Three entries by one person whose email and name were written in mixed case."""
    store.append(
        [
            make_entry(
                audit_id=f"00000000-0000-4000-8000-00000000000{n}",
                actor={"user_id": None, "email": email, "type": "user"},
                resource={"type": "webhook", "id": f"wh-{n}", "name": name},
                details=details,
            )
            for n, (email, name, details) in enumerate(ODON, 1)
        ]
        + [make_entry(audit_id="00000000-0000-4000-8000-000000000009")]  # jane: never matches
    )
    return store


@pytest.mark.parametrize(
    "query",
    [
        "ÖDÖN@BÜCHER.DE",  # an email: the actor
        "ödön@bücher.de",
        "Ödön@Bücher.de",
        "actor:ÖDÖN@bücher.de",
        "actor:ödön@*",  # patterns fold too
        "actor:*@BÜCHER.DE",
        "ÖDÖN",  # text: the trigram index
        "ödön",
        '"ÖDÖN\'S HOOK"',
        "árpád",
        "ÁRPÁD",
        "Ö",  # shorter than a trigram: LIKE over the folded copy
        "öd",
        "text:Á",
    ],
)
def test_search_folds_non_ascii_case(odon: al.AuditStore, query: str) -> None:
    assert ids(odon, query) == [1, 2, 3]
    assert odon.count(query) == 3


def test_keyword_filters_fold_non_ascii_case(odon: al.AuditStore) -> None:
    for email in ("ÖDÖN@BÜCHER.DE", "ödön@bücher.de", "*@Bücher.de"):
        assert ids(odon, actor=email) == [1, 2, 3]
    assert ids(odon, text="ÁRPÁD") == [1, 2, 3]
    assert ids(odon, "-ÖDÖN@bücher.de") == [9]


@pytest.fixture
def escaped(store: al.AuditStore) -> al.AuditStore:
    """Details whose values JSON escapes: backslashes, quotes, newlines, control characters."""
    store.append(
        [
            make_entry(
                audit_id="00000000-0000-4000-8000-000000000001",
                details={"path": "C:\\Users\\jane\\report.xlsx"},
            ),
            make_entry(
                audit_id="00000000-0000-4000-8000-000000000002",
                details={"message": 'she said "hello world"', "tab": "a\tb"},
            ),
            make_entry(
                audit_id="00000000-0000-4000-8000-000000000003",
                details={"lines": "line1\nadia", "nested": {"list": [1, 2.5, True, None, "x\\y"]}},
            ),
        ]
    )
    return store


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('"C:\\Users"', [1]),  # the example
        ('"C:\\Users\\jane"', [1]),
        ('"c:\\users"', [1]),
        ("text:\\jane\\", [1]),
        ("\\", [1, 3]),  # a lone backslash: only where a value holds one
        ("x\\y", [3]),
        ("nadia", []),  # "\nadia" in JSON text is a newline then "adia", not "nadia"
        ("line1", [3]),
        ("u000", []),  # no escape sequences to match inside
        ('"hello world"', [2]),
    ],
)
def test_details_match_as_a_user_reads_them(
    escaped: al.AuditStore, query: str, expected: list[int]
) -> None:
    assert ids(escaped, query) == expected


def test_details_values_with_quotes_and_control_characters(escaped: al.AuditStore) -> None:
    assert ids(escaped, text='said "hello') == [2]
    assert ids(escaped, text='"hello world"') == [2]
    assert ids(escaped, text="a\tb") == [2]
    assert ids(escaped, text="line1\nadia") == [3]
    assert ids(escaped, text='\\"') == []  # the JSON escape of a quote is not in any value
    assert ids(escaped, text="path") == [1]  # keys are searchable fields too
    assert ids(escaped, text="2.5") == [3]  # and scalar values as JSON writes them
    assert ids(escaped, text="true") == [3]


def test_a_phrase_never_matches_across_two_fields(store: al.AuditStore) -> None:
    store.append(
        [
            make_entry(
                audit_id="00000000-0000-4000-8000-000000000001",
                actor={"user_id": None, "email": "ops@company.com", "type": "user"},
                resource={"type": "webhook", "id": "wh-1", "name": "100 hooks"},
                details={"domain": "company.com", "count": 100, "tag": "hooks"},
            ),
            make_entry(
                audit_id="00000000-0000-4000-8000-000000000002",
                resource={"type": "webhook", "id": "wh-2", "name": "company.com 100 hooks"},
                details={},
            ),
        ]
    )
    assert ids(store, '"company.com 100"') == [2]  # the example: only within a field
    assert ids(store, '"100 hooks"') == [1, 2]
    assert ids(store, '"com 100"') == [2]
    assert ids(store, '"webhook.created ops"') == []  # action, then actor
    assert ids(store, text="domain company") == []  # a key and its value are two fields
    assert ids(store, text="domain\x1fcompany") == []  # the separator folds to a space
    assert ids(store, "company.com 100") == [1, 2]  # bare words: each anywhere


def test_search_index_is_rebuilt_for_a_store_made_before_it(store_url: str) -> None:
    """A store whose search index is missing (made by an earlier build, or entries written
    by raw SQL) is indexed again when opened: nothing becomes unsearchable."""
    from sqlalchemy import text

    store = al.open_store(store_url)
    store.append([make_entry(details={"path": "C:\\Users\\Ödön"}) for _ in range(3)])
    with store.engine.begin() as conn:
        if store.dialect == "sqlite":
            conn.execute(text("DROP TABLE audit_search"))
        else:  # the pre-release index over the raw JSON text
            conn.execute(text("DROP INDEX ix_audit_entries_text_trgm"))
            conn.execute(
                text(
                    "CREATE INDEX ix_audit_entries_search_trgm ON audit_entries USING gin "
                    "((action || ' ' || details) gin_trgm_ops)"
                )
            )
    store.close()
    store = al.open_store(store_url)
    try:
        assert store.count('"C:\\Users\\ödön"') == 3
        store.append(make_entry(details={"path": "C:\\Users\\ÖDÖN"}))
        assert store.count('"C:\\Users\\ödön"') == 4
        if store.dialect == "postgresql":
            with store.engine.connect() as conn:
                names = set(
                    conn.execute(
                        text("SELECT indexname FROM pg_indexes WHERE tablename = 'audit_entries'")
                    ).scalars()
                )
            assert "ix_audit_entries_text_trgm" in names
            assert "ix_audit_entries_search_trgm" not in names
    finally:
        store.close()


def test_an_appended_entry_is_immediately_found_by_text_search(store: al.AuditStore) -> None:
    """The search index may be filled after the append (SQLite), but never later than the
    next read that needs it: every read path finds an entry right after it was appended."""
    store.append([make_entry(details={"note": "first kestrel"}) for _ in range(300)])
    assert store.count("kestrel") == 300
    later = make_entry(
        details={"note": "second kestrel"}, actor={"email": "Ödön@x.io", "type": "user"}
    )
    store.append(later)
    assert store.count('"second kestrel"') == 1
    assert store.query(text="second kestrel", backend="polars")["audit_id"].to_list() == [
        later["audit_id"]
    ]
    assert [e["audit_id"] for e in store.entries("second kestrel")] == [later["audit_id"]]
    assert store.count(actor="ödön@X.io") == 1  # non-ASCII actors are matched through the index
    third = make_entry(details={"note": "third kestrel"})
    polls = iter(range(100))

    def append_on_second_poll() -> bool:  # the stream's stop check runs before each poll
        n = next(polls)
        if n == 1:
            store.append(third)
        return n >= 99

    got = list(
        store.stream(
            '"third kestrel"',
            since="beginning",
            poll_interval=0.01,
            stop=append_on_second_poll,
            max_events=1,
        )
    )
    assert [e["audit_id"] for e in got] == [third["audit_id"]]


@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("term", ["kestrel", "ÖDÖN K", "ke", "c:\\users", "n k"])
def test_newest_text_matches_are_the_same_through_the_time_window(
    store: al.AuditStore, monkeypatch: pytest.MonkeyPatch, order: str, term: str
) -> None:
    """A limited text search first looks at the newest entries by time (SQLite): with entries
    appended out of time order, a window holding all, some or none of the answer gives the
    answer of a full search (folding, short terms, escapes and fields as everywhere)."""
    import auditlens.store.store as store_module

    notes = ["heron", "Ödön Kestrel", "kestrel C:\\Users"]
    days = [17, 3, 25, 9, 28, 1, 14, 22, 6, 11, 19, 27, 4, 8, 30, 2]
    store.append(
        [
            make_entry(
                timestamp=f"2025-03-{day:02d}T10:00:00.000Z",
                details={"note": notes[i % 3]},
                resource={"type": "bird", "id": f"b{i}", "name": "nest"},
            )
            for i, day in enumerate(days)
        ]
    )
    full = store.query(text=term, backend="polars", order=order)["audit_id"].to_list()
    assert full  # every term matches some entries
    if term == "n k":
        assert store.count(text="nest kestrel") == 0  # never across two fields
    for window in (0, 2, 5, 40):
        monkeypatch.setattr(store_module, "_WINDOW_ROWS", window)
        for limit in (1, 3, 7, 10, 50):
            got = store.query(text=term, limit=limit, order=order, backend="polars")
            assert got["audit_id"].to_list() == full[:limit]
            listed = store.entries(text=term, limit=limit, order=order)
            assert [e["audit_id"] for e in listed] == full[:limit]


# -- limits: refused with the limit named, never a database error --------------------
def test_queries_at_the_limits_run(filled: al.AuditStore) -> None:
    from auditlens.query.filters import MAX_CLAUSES, MAX_VALUES

    words = " ".join(["production"] * MAX_CLAUSES)
    assert ids(filled, words) == [2, 6]
    emails = [f"user{i}@company.com" for i in range(MAX_VALUES - 1)] + ["ci@company.com"]
    assert ids(filled, actor=emails) == [6]
    assert ids(filled, "actor:" + ",".join(emails)) == [6]
    assert ids(filled, "-actor:" + ",".join(emails)) == [1, 2, 3, 4, 5, 7]
    mixed = " ".join(["-Ödön"] * (MAX_CLAUSES - 1)) + " actor:" + ",".join(emails[-50:])
    assert ids(filled, mixed) == [6]
    assert ids(filled, last="365250d") == [1, 2, 3, 4, 5, 6, 7]
    # the most SQL parameters a filter can bind: two per value
    patterns = [f"ödön{i}@*" for i in range(MAX_VALUES - 1)] + ["ci@company.com"]
    assert ids(filled, actor=patterns) == [6]
    assert ids(filled, " ".join(["-failed"] * MAX_CLAUSES)) == [1, 2, 5, 6, 7]


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"last": "99999999999d"}, "limit of 365,250d"),
        ({"last": timedelta(days=10**6)}, "limit of 365,250d"),
        ({"actor": [f"u{i}@x.com" for i in range(5000)]}, "limit is 150"),
        ({"text": ["w"] * 1100}, "limit is 150"),
        ({"text": "x" * 5000}, "limit of 1,000"),
        ({"resource_name": ["a"] * 100, "resource_id": ["b"] * 100}, "limit is 150"),
    ],
)
def test_filters_over_a_limit_are_refused(
    filled: al.AuditStore, filters: dict, message: str
) -> None:
    with pytest.raises(al.FilterError, match=message):
        filled.query(**filters)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("last:99999999999d", "limit of 365,250d"),
        ("created:>=2025-01-01 last:9999999999999999999999w", "limit of 365,250d"),
        (" ".join(["word"] * 1100), "limit is 100"),
        ("actor:" + ",".join(f"u{i}@x.com" for i in range(5000)), "limit is 150"),
        ("x" * 5000, "limit of 1,000"),
        ("(" * 5000 + "a" + ")" * 5000, "limit of 1,000"),
    ],
)
def test_searches_over_a_limit_are_syntax_errors(
    filled: al.AuditStore, query: str, message: str
) -> None:
    with pytest.raises(al.QuerySyntaxError, match=message):
        filled.count(query)


def test_combined_filters_over_a_limit_are_refused(filled: al.AuditStore) -> None:
    from auditlens.query import parse_search

    big = parse_search(" ".join(["production"] * 60))
    with pytest.raises(al.FilterError, match="limit is 100"):
        filled.count(big & big)
