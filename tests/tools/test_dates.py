"""The dates tool server: calendar arithmetic with known dates, ISO weeks, time zones across DST, and the MCP round trip."""

import importlib.util
from pathlib import Path

import anyio
import pytest

SPEC = importlib.util.spec_from_file_location("dates", Path(__file__).parents[2] / "tools" / "dates.py")
dates = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(dates)


@pytest.mark.parametrize("start, amounts, result, clamped", [
    ("2024-01-31", {"months": 1}, "2024-02-29", True),  # a leap year's February
    ("2023-01-31", {"months": 1}, "2023-02-28", True),
    ("2024-02-29", {"years": 1}, "2025-02-28", True),
    ("2024-03-31", {"months": -1}, "2024-02-29", True),
    ("2024-01-15", {"months": 13}, "2025-02-15", False),
    ("2024-01-01", {"weeks": 2, "days": 3}, "2024-01-18", False),
    ("2024-03-01", {"days": -1}, "2024-02-29", False),
])
def test_date_add(start, amounts, result, clamped):
    total = dates.add_to_date(start, **amounts)
    assert (total.result, total.clamped) == (result, clamped)


def test_date_add_sentence_says_why_the_day_changed():
    assert dates.sum_sentence(dates.add_to_date("2024-01-31", months=1)).startswith("2024-01-31 + 1 month = 2024-02-29 (Thursday); day 31")
    assert dates.sum_sentence(dates.add_to_date("2024-01-31", days=-31, weeks=1)) == "2024-01-31 + 1 week - 31 days = 2024-01-07 (Sunday)"


@pytest.mark.parametrize("start, end, fields", [
    ("2024-01-01", "2024-12-25", (359, 51, 2, 0, 11, 24)),
    ("2024-12-25", "2024-01-01", (-359, -51, -2, 0, -11, -24)),
    ("2024-01-31", "2024-02-29", (29, 4, 1, 0, 1, 0)),  # one calendar month, as date_add counts it
    ("2000-02-29", "2024-02-28", (8765, 1252, 1, 23, 11, 30)),
    ("2020-05-17", "2024-05-17", (1461, 208, 5, 4, 0, 0)),
])
def test_date_diff(start, end, fields):
    diff = dates.difference(start, end)
    assert (diff.days, diff.weeks, diff.days_after_weeks, diff.years, diff.months, diff.days_after_months) == fields


def test_weekday_and_iso_week():
    info = dates.weekday_info("2021-01-03")
    assert (info.weekday, info.iso_weekday, info.iso_year, info.iso_week, info.iso_week_date, info.day_of_year) == \
        ("Sunday", 7, 2020, 53, "2020-W53-7", 3)
    last = dates.weekday_info("2024-12-31")
    assert (last.iso_year, last.iso_week, last.day_of_year, last.leap_year) == (2025, 1, 366, True)


@pytest.mark.parametrize("text, reason", [("2024-02-30", "day is out of range"), ("31/01/2024", ""), ("tomorrow", "")])
def test_malformed_date_is_one_line_showing_the_expected_form(text, reason):
    with pytest.raises(dates.DateError, match="expected YYYY-MM-DD") as caught:
        dates.parse_date(text)
    assert reason in str(caught.value) and "\n" not in str(caught.value)


def test_convert_time_across_the_spring_dst_change_in_new_york():
    before = dates.convert_zone("2024-03-10T01:30", "America/New_York", "UTC")
    after = dates.convert_zone("2024-03-10T03:30", "America/New_York", "UTC")
    # Two wall-clock hours apart, one real hour apart: the clocks jumped from 02:00 to 03:00.
    assert (before.to_time, before.from_abbreviation) == ("2024-03-10T06:30:00+00:00", "EST")
    assert (after.to_time, after.from_abbreviation) == ("2024-03-10T07:30:00+00:00", "EDT")


def test_a_skipped_time_is_refused_and_a_repeated_time_is_the_first_with_a_note():
    with pytest.raises(dates.DateError, match="does not exist in America/New_York"):
        dates.convert_zone("2024-03-10T02:30", "America/New_York", "UTC")
    repeated = dates.convert_zone("2024-11-03T01:30", "America/New_York", "UTC")
    assert repeated.to_time == "2024-11-03T05:30:00+00:00" and "happens twice" in repeated.note


def test_convert_time_offsets_and_zone_names():
    assert dates.convert_zone("2024-07-01T12:00Z", "utc", "asia/kolkata").to_time == "2024-07-01T17:30:00+05:30"
    assert dates.convert_zone("2024-07-01T12:00+02:00", "Europe/Paris", "Asia/Tokyo").to_time == "2024-07-01T19:00:00+09:00"
    with pytest.raises(dates.DateError, match=r"has offset \+01:00, but Europe/Paris is at \+02:00"):
        dates.convert_zone("2024-07-01T12:00+01:00", "Europe/Paris", "UTC")
    with pytest.raises(dates.DateError, match="unknown time zone 'Europe/Pari'; did you mean Europe/Paris"):
        dates.find_zone("Europe/Pari")


def test_missing_tz_data_is_reported_in_one_line(monkeypatch):
    def no_data(key):
        raise dates.ZoneInfoNotFoundError(key)

    monkeypatch.setattr(dates, "ZoneInfo", no_data)
    monkeypatch.setattr(dates, "available_timezones", set)
    with pytest.raises(dates.DateError, match="^no time-zone data on this machine: install the tzdata package"):
        dates.find_zone("Europe/Paris")


def test_mcp_round_trip():
    from mcp import Client

    async def main():
        async with Client(dates.server) as client:
            tools = (await client.list_tools()).tools
            assert {tool.name for tool in tools} == {"date_add", "date_diff", "weekday", "convert_time"}
            # Lantern refuses tools that do not declare themselves read-only and closed-world.
            assert all(t.annotations.read_only_hint and t.annotations.open_world_hint is False for t in tools)
            added = await client.call_tool("date_add", {"date": "2024-01-31", "months": 1})
            assert added.structured_content["result"] == "2024-02-29" and added.structured_content["clamped"] is True
            assert added.content[0].text.startswith("2024-01-31 + 1 month = 2024-02-29")
            week = await client.call_tool("weekday", {"date": "2021-01-03"})
            assert week.structured_content["iso_week_date"] == "2020-W53-7"
            moved = await client.call_tool("convert_time", {"datetime": "2024-03-10T03:30", "from_zone": "America/New_York",
                                                            "to_zone": "Europe/Paris"})
            assert moved.structured_content["to_time"] == "2024-03-10T08:30:00+01:00"
            failed = await client.call_tool("date_diff", {"start": "2024-13-01", "end": "2024-01-01"})
            assert failed.is_error and "expected YYYY-MM-DD" in failed.content[0].text

    anyio.run(main)
