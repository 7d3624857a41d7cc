"""Lantern's dates MCP tool server: calendar and time-zone arithmetic, computed rather than recalled.

What it knows (Python's datetime and zoneinfo, proleptic Gregorian calendar, years 1 to 9999):
- `date_add`: a date plus years, months, weeks and days. Years and months are added first and a
  day that the target month lacks becomes its last day (2024-01-31 + 1 month = 2024-02-29).
- `date_diff`: the days between two dates, also as weeks and days and as calendar years, months
  and days (counted the way `date_add` adds them).
- `weekday`: the weekday, ISO 8601 weekday number, ISO week-numbering year and week, day of year.
- `convert_time`: a wall-clock time in one IANA time zone (Europe/Paris, America/New_York, UTC)
  shown in another, with daylight saving time; a time the clocks skip is refused and a time that
  happens twice is read as the first of the two, with a note.

What it does not know: today's date or the current time (ask with explicit dates), holidays or
business days, calendars other than the Gregorian, time-zone abbreviations as input (EST is
ambiguous; give IANA names), leap seconds, and dates before year 1 or after 9999. Time-zone rules
come from the system's tz database or the `tzdata` package; without either, convert_time says so.

Dates are ISO 8601: YYYY-MM-DD. Run it with `python tools/dates.py` (stdio transport).
"""

import calendar
import difflib
from datetime import date, datetime, timedelta, timezone
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

# English names whatever the machine's locale (calendar.day_name follows the locale).
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class DateError(ToolError, ValueError):
    """A date, time or time zone that cannot be read, or a result outside the calendar's range.

    A ToolError, so MCPServer hands its one-line message to the model instead of a bare
    "Error executing tool"."""


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        # "day is out of range for month" helps; "Invalid isoformat string" only repeats the input.
        reason = "" if "isoformat" in str(exc) else f" ({exc})"
        raise DateError(f"not a date: {text!r}{reason}; expected YYYY-MM-DD, e.g. 2024-01-31") from None


def add_months(start: date, months: int) -> date:
    """`start` moved by whole months, a day the target month lacks becoming its last day."""
    year, month_index = divmod(start.year * 12 + start.month - 1 + months, 12)
    if not 1 <= year <= 9999:
        raise DateError(f"the result would be in year {year}, outside years 1 to 9999")
    last_day = calendar.monthrange(year, month_index + 1)[1]
    return date(year, month_index + 1, min(start.day, last_day))


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}{'' if abs(count) == 1 else 's'}"


# --- date_add ------------------------------------------------------------------------------------

class DateSum(BaseModel):
    date: str
    years: int
    months: int
    weeks: int
    days: int
    result: str = Field(description="The resulting date, YYYY-MM-DD.")
    weekday: str = Field(description="The resulting date's weekday.")
    clamped: bool = Field(description="True when the day of the month did not exist in the target month and its last day was used.")


def add_to_date(start_text: str, days: int = 0, weeks: int = 0, months: int = 0, years: int = 0) -> DateSum:
    start = parse_date(start_text)
    moved = add_months(start, years * 12 + months)
    try:
        result = moved + timedelta(days=days, weeks=weeks)
    except OverflowError:
        raise DateError("the result would be outside years 1 to 9999") from None
    return DateSum(date=start.isoformat(), years=years, months=months, weeks=weeks, days=days, result=result.isoformat(),
                   weekday=WEEKDAYS[result.weekday()], clamped=moved.day != start.day)


def sum_sentence(total: DateSum) -> str:
    """'2024-01-31 + 1 month = 2024-02-29 (Thursday)', with why the day changed when it did."""
    amounts = ((total.years, "year"), (total.months, "month"), (total.weeks, "week"), (total.days, "day"))
    terms = "".join(f" {'-' if n < 0 else '+'} {_plural(abs(n), unit)}" for n, unit in amounts if n) or " + 0 days"
    text = f"{total.date}{terms} = {total.result} ({total.weekday})"
    if total.clamped:
        text += f"; day {total.date[-2:]} does not exist in the target month, so its last day was used"
    return text


# --- date_diff -----------------------------------------------------------------------------------

class DateDifference(BaseModel):
    start: str
    end: str
    days: int = Field(description="end - start in days; negative when end is before start.")
    weeks: int = Field(description="Whole weeks in the difference (signed like days).")
    days_after_weeks: int = Field(description="Days left over after the whole weeks (signed like days).")
    years: int = Field(description="Whole calendar years (signed like days).")
    months: int = Field(description="Whole calendar months after the years (signed like days).")
    days_after_months: int = Field(description="Days left over after the years and months (signed like days).")


def difference(start_text: str, end_text: str) -> DateDifference:
    start, end = parse_date(start_text), parse_date(end_text)
    sign = -1 if end < start else 1
    early, late = min(start, end), max(start, end)
    months = (late.year - early.year) * 12 + late.month - early.month
    if add_months(early, months) > late:  # the last month is not complete yet
        months -= 1
    days_after_months = (late - add_months(early, months)).days
    days = (late - early).days
    return DateDifference(start=start.isoformat(), end=end.isoformat(), days=sign * days, weeks=sign * (days // 7),
                          days_after_weeks=sign * (days % 7), years=sign * (months // 12), months=sign * (months % 12),
                          days_after_months=sign * days_after_months)


def difference_sentence(diff: DateDifference) -> str:
    """'From 2024-01-01 to 2024-12-25: 359 days = 51 weeks 2 days = 11 months 24 days'."""
    calendar_parts = [_plural(n, unit) for n, unit in ((diff.years, "year"), (diff.months, "month")) if n]
    calendar_parts.append(_plural(diff.days_after_months, "day"))
    text = (f"From {diff.start} to {diff.end}: {_plural(diff.days, 'day')} = {_plural(diff.weeks, 'week')} "
            f"{_plural(diff.days_after_weeks, 'day')} = {' '.join(calendar_parts)}")
    return text + " (the end is before the start)" if diff.days < 0 else text


# --- weekday -------------------------------------------------------------------------------------

class WeekdayInfo(BaseModel):
    date: str
    weekday: str
    iso_weekday: int = Field(description="ISO 8601 weekday number: Monday 1 ... Sunday 7.")
    iso_year: int = Field(description="ISO 8601 week-numbering year (differs from the calendar year around 1 January).")
    iso_week: int = Field(description="ISO 8601 week number, 1 to 53.")
    iso_week_date: str = Field(description="The ISO week date, e.g. 2020-W53-7.")
    day_of_year: int
    leap_year: bool


def weekday_info(date_text: str) -> WeekdayInfo:
    day = parse_date(date_text)
    iso = day.isocalendar()
    return WeekdayInfo(date=day.isoformat(), weekday=WEEKDAYS[day.weekday()], iso_weekday=iso.weekday, iso_year=iso.year,
                       iso_week=iso.week, iso_week_date=f"{iso.year}-W{iso.week:02d}-{iso.weekday}",
                       day_of_year=day.timetuple().tm_yday, leap_year=calendar.isleap(day.year))


def weekday_sentence(info: WeekdayInfo) -> str:
    return (f"{info.date} is a {info.weekday}, ISO week {info.iso_year}-W{info.iso_week:02d} (weekday {info.iso_weekday}), "
            f"day {info.day_of_year} of {info.date[:4]}")


# --- convert_time --------------------------------------------------------------------------------

class TimeConversion(BaseModel):
    input: str
    from_zone: str
    to_zone: str
    from_time: str = Field(description="The time in from_zone, ISO 8601 with its UTC offset.")
    to_time: str = Field(description="The same instant in to_zone, ISO 8601 with its UTC offset.")
    from_abbreviation: str = Field(description="from_zone's abbreviation at that instant, e.g. EST or CEST.")
    to_abbreviation: str
    note: str | None = Field(None, description="Set when the wall-clock time happens twice in from_zone.")


def find_zone(name: str) -> ZoneInfo:
    """An IANA time zone by name (any letter case), or a one-line DateError with close names."""
    key = name.strip()
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a key naming a folder ("America")
        pass
    zones = available_timezones()
    if not zones:
        raise DateError("no time-zone data on this machine: install the tzdata package (pip install tzdata)")
    by_folded = {zone.lower(): zone for zone in zones}
    if key.lower() in by_folded:
        return ZoneInfo(by_folded[key.lower()])
    close = difflib.get_close_matches(key, sorted(zones), n=3)
    hint = f"did you mean {', '.join(close)}?" if close else "give an IANA name such as Europe/Paris or America/New_York"
    raise DateError(f"unknown time zone {name!r}; {hint}")


def parse_datetime(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise DateError(f"not a date and time: {text!r}; expected ISO 8601 such as 2024-03-10T01:30 "
                        "(an offset such as +01:00 or Z is optional)") from None


def convert_zone(text: str, from_zone: str, to_zone: str) -> TimeConversion:
    moment = parse_datetime(text)
    source, target = find_zone(from_zone), find_zone(to_zone)
    if moment.tzinfo is None:
        local, note = _localize(moment, source)
    else:
        # An explicit offset fixes the instant; one that contradicts from_zone is a mistake to report.
        local, note = moment.astimezone(source), None
        if local.utcoffset() != moment.utcoffset():
            raise DateError(f"{text!r} has offset {_offset(moment)}, but {source.key} is at "
                            f"{_offset(local)} then; drop the offset or correct from_zone")
    converted = local.astimezone(target)
    return TimeConversion(input=text, from_zone=source.key, to_zone=target.key, from_time=local.isoformat(),
                          to_time=converted.isoformat(), from_abbreviation=local.tzname(), to_abbreviation=converted.tzname(),
                          note=note)


def _localize(naive: datetime, zone: ZoneInfo) -> tuple[datetime, str | None]:
    """A wall-clock time placed in a zone: refused in a daylight-saving gap, the first of two in an overlap."""
    first, second = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    if first.astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None) != naive:
        raise DateError(f"{naive.isoformat()} does not exist in {zone.key}: the clocks skip it when they go forward")
    if first.utcoffset() == second.utcoffset():
        return first, None
    return first, (f"{naive.isoformat()} happens twice in {zone.key}; this is the first ({first.tzname()}, "
                   f"{_offset(first)}), the second is {second.tzname()}, {_offset(second)}")


def _offset(moment: datetime) -> str:
    minutes = round(moment.utcoffset().total_seconds() / 60)
    return f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def time_sentence(conversion: TimeConversion) -> str:
    """'2024-03-10T01:30:00-05:00 (EST) in America/New_York = 2024-03-10T06:30:00+00:00 (UTC) in UTC'."""
    text = (f"{conversion.from_time} ({conversion.from_abbreviation}) in {conversion.from_zone} = "
            f"{conversion.to_time} ({conversion.to_abbreviation}) in {conversion.to_zone}")
    return f"{text}; {conversion.note}" if conversion.note else text


# --- the server ----------------------------------------------------------------------------------

# Lantern runs a tool only when it declares itself read-only and closed-world (no writes, no
# network), unless its server is listed as trusted; these tools only compute.
READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
server = MCPServer("dates", instructions="Date arithmetic, weekdays and ISO weeks, and time-zone conversion. "
                                          "It does not know today's date.")
DateText = Annotated[str, Field(description="A date as YYYY-MM-DD, e.g. 2024-01-31.")]


def _reply(model: BaseModel, text: str) -> CallToolResult:
    # The text block is what the model reads; the structured content is what programs read.
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=model.model_dump(mode="json"))


@server.tool(annotations=READ_ONLY)
def date_add(date: DateText, days: int = 0, weeks: int = 0, months: int = 0,
             years: int = 0) -> Annotated[CallToolResult, DateSum]:
    """Add years, months, weeks and days (negative to subtract) to a date; month ends clamp: 2024-01-31 + 1 month = 2024-02-29."""
    total = add_to_date(date, days, weeks, months, years)
    return _reply(total, sum_sentence(total))


@server.tool(annotations=READ_ONLY)
def date_diff(start: DateText, end: DateText) -> Annotated[CallToolResult, DateDifference]:
    """The time from start to end in days, in weeks and days, and in calendar years, months and days."""
    diff = difference(start, end)
    return _reply(diff, difference_sentence(diff))


@server.tool(annotations=READ_ONLY)
def weekday(date: DateText) -> Annotated[CallToolResult, WeekdayInfo]:
    """The weekday of a date, its ISO weekday number, ISO year and week number, and day of the year."""
    info = weekday_info(date)
    return _reply(info, weekday_sentence(info))


@server.tool(annotations=READ_ONLY)
def convert_time(
    datetime: Annotated[str, Field(description="ISO 8601 date and time, e.g. 2024-03-10T01:30 (wall-clock time in from_zone).")],
    from_zone: Annotated[str, Field(description="IANA time zone of the input, e.g. America/New_York or UTC.")],
    to_zone: Annotated[str, Field(description="IANA time zone to show the time in, e.g. Europe/Paris.")],
) -> Annotated[CallToolResult, TimeConversion]:
    """Convert a date and time from one IANA time zone to another, with daylight saving time."""
    conversion = convert_zone(datetime, from_zone, to_zone)
    return _reply(conversion, time_sentence(conversion))


if __name__ == "__main__":
    server.run()
