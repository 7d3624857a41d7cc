"""The units tool server: conversions with known values, the data-size case rule, colours, and the MCP round trip."""

import importlib.util
import warnings
from pathlib import Path

import anyio
import pytest

SPEC = importlib.util.spec_from_file_location("units", Path(__file__).parents[2] / "tools" / "units.py")
units = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(units)


@pytest.mark.parametrize("value, from_unit, to_unit, result", [
    (100, "C", "F", 212),
    (-40, "°F", "celsius", -40),
    (0, "K", "°C", -273.15),
    (1, "GiB", "B", 1073741824),
    (1, "GB", "B", 10**9),
    (1, "kB", "B", 1000),
    (1, "KiB", "bytes", 1024),
    (8, "bit", "B", 1),
    (1, "mi", "km", 1.609344),
    (1, "nmi", "m", 1852),
    (12, "in", "ft", 1),
    (1, "st", "lb", 14),
    (1, "lb", "oz", 16),
    (1, "t", "kg", 1000),
    (1, "year", "day", 365.25),
    (2, "week", "h", 336),
    (1500, "ms", "s", 1.5),
])
def test_known_conversions(value, from_unit, to_unit, result):
    assert units.convert_units(value, from_unit, to_unit).result == pytest.approx(result, rel=1e-15)


def test_exact_result_comes_from_the_decimal_written():
    assert units.convert_units(0.1, "m", "cm").exact == "10"  # not 10.000000000000000555...
    assert units.convert_units(1, "mi", "km").exact == "1.609344"
    assert units.convert_units(100, "F", "C").exact == "340/9"


@pytest.mark.parametrize("name, symbol", [("celsius", "°C"), ("°C", "°C"), ("DEGREES FAHRENHEIT", "°F"), ("Kilometres", "km"),
                                          ("kib", "KiB"), ("nautical  miles", "nmi"), ("µm", "um"), ("Hours", "h")])
def test_aliases_and_letter_case(name, symbol):
    assert units.find_unit(name).symbol == symbol


def test_data_sizes_B_is_a_byte_and_b_a_bit():
    assert units.convert_units(1, "Mb", "B").result == 125_000  # megabit
    assert units.convert_units(1, "MB", "B").result == 1_000_000  # megabyte
    assert units.convert_units(8, "b", "B").result == 1


@pytest.mark.parametrize("name, readings", [("mb", ["MB (megabyte)", "Mbit (megabit)"]), ("KB", ["kB (kilobyte)", "kbit (kilobit)"])])
def test_a_spelling_that_could_be_bits_or_bytes_is_refused_with_both_readings(name, readings):
    with pytest.raises(units.UnitError, match="ambiguous") as caught:
        units.find_unit(name)
    assert all(reading in str(caught.value) for reading in readings)


def test_errors_are_one_line_and_say_why():
    with pytest.raises(units.UnitError, match=r"^cannot convert m \(length\) to kg \(mass\)$"):
        units.convert_units(1, "m", "kg")
    with pytest.raises(units.UnitError, match="did you mean metres"):
        units.find_unit("metrs")
    with pytest.raises(units.UnitError, match="below absolute zero"):
        units.convert_units(-300, "C", "K")


def test_conversion_sentence():
    assert units.conversion_sentence(units.convert_units(100, "C", "F")) == "100 °C = 212 °F"
    assert units.conversion_sentence(units.convert_units(100, "F", "C")) == "100 °F = 37.77777777777778 °C (exactly 340/9)"


def test_css_table_has_the_148_names_and_agrees_with_pydantics_copy():
    with warnings.catch_warnings():  # pydantic.color is deprecated, but an independent copy of the CSS table
        warnings.simplefilter("ignore")
        from pydantic.color import COLORS_BY_NAME
    theirs = {name: "#%02x%02x%02x" % rgb for name, rgb in COLORS_BY_NAME.items()}
    assert len(units.CSS_COLOURS) == 148
    assert {name: value for name, value in units.CSS_COLOURS.items() if name != "rebeccapurple"} == theirs  # pydantic lacks it


@pytest.mark.parametrize("text, scheme, hex_value, name", [
    ("rebeccapurple", "css", "#663399", "rebeccapurple"),
    ("green", "css", "#008000", "green"),
    ("green", "x11", "#00ff00", "lime"),  # X11 green is CSS lime
    ("x11:green", "css", "#00ff00", "lime"),
    ("X11: Gray", "css", "#bebebe", None),
    ("maroon", "x11", "#b03060", None),
    ("purple", "x11", "#a020f0", None),
    ("Light Blue", "css", "#add8e6", "lightblue"),
    ("#abc", "css", "#aabbcc", None),
    ("663399", "css", "#663399", "rebeccapurple"),
    ("#FF0000", "css", "#ff0000", "red"),
    ("rgb(255, 165, 0)", "css", "#ffa500", "orange"),
    ("rgb(0 0 128)", "css", "#000080", "navy"),
])
def test_colours(text, scheme, hex_value, name):
    found = units.find_colour(text, scheme)
    assert (found.hex, found.name) == (hex_value, name)
    assert found.rgb == [int(hex_value[i:i + 2], 16) for i in (1, 3, 5)]


def test_unknown_colours_suggest_the_closest_names():
    with pytest.raises(units.UnitError, match=r"unknown colour 'rebecapurple'; did you mean rebeccapurple"):
        units.find_colour("rebecapurple")
    with pytest.raises(units.UnitError, match="0 to 255"):
        units.find_colour("rgb(300, 0, 0)")


def test_mcp_round_trip():
    from mcp import Client

    async def main():
        async with Client(units.server) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert set(tools) == {"convert", "colour"}
            # Lantern refuses tools that do not declare themselves read-only and closed-world.
            assert all(t.annotations.read_only_hint and t.annotations.open_world_hint is False for t in tools.values())
            assert tools["colour"].input_schema["properties"]["scheme"]["enum"] == ["css", "x11"]
            converted = await client.call_tool("convert", {"value": 100, "from_unit": "C", "to_unit": "F"})
            assert converted.content[0].text == "100 °C = 212 °F"
            assert converted.structured_content["result"] == 212 and converted.structured_content["dimension"] == "temperature"
            colour = await client.call_tool("colour", {"name_or_hex": "green", "scheme": "x11"})
            assert colour.structured_content == {"input": "green", "hex": "#00ff00", "rgb": [0, 255, 0], "name": "lime", "scheme": "x11"}
            failed = await client.call_tool("convert", {"value": 1, "from_unit": "m", "to_unit": "kg"})
            assert failed.is_error and failed.content[0].text.endswith("cannot convert m (length) to kg (mass)")

    anyio.run(main)
