"""Lantern's units MCP tool server: unit conversion and colour values, computed rather than recalled.

What it knows:
- `convert` between units of one dimension: length (m km cm mm um nm mi yd ft in nmi), mass
  (kg g mg t lb oz st), time (s ms us ns min h day week year, a year being 365.25 days),
  temperature (C F K, with their offsets) and data sizes (bit b kbit Mbit Gbit Tbit Pbit, B kB MB GB
  TB PB in powers of 1000, KiB MiB GiB TiB PiB in powers of 1024). Names such as "metres", "°C",
  "celsius" or "kibibyte" work too, in any letter case as long as the name stays unambiguous.
  For data sizes the case of the b is the meaning: B is a byte and b a bit, so "MB" is a megabyte
  and "Mb" a megabit; a spelling that could be either ("mb", "KB") is refused with both readings.
  Results are also given exactly (a decimal or a fraction) from the decimal the value was written as.
- `colour` turns a colour name, #rgb, #rrggbb (with or without the #) or rgb(r, g, b) into its
  hex and RGB values. It knows the 148 CSS named colours (CSS Color Module Level 4, rebeccapurple
  included) and the X11 colours whose values differ from CSS under the same name (gray/grey,
  green, maroon, purple), chosen with `scheme="x11"` or an "x11:" prefix.

What it does not know: currencies, compound units (km/h, N·m), US customary volume or short/long
tons, calendar arithmetic (see dates.py), X11-only names (gray50, navyblue), alpha channels and
colour spaces other than sRGB hex/rgb.

Run it with `python tools/units.py` (stdio transport).
"""

import difflib
import math
import re
from fractions import Fraction
from typing import Annotated, Literal, NamedTuple

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field


class UnitError(ToolError, ValueError):
    """A unit or colour that cannot be read, or a conversion across dimensions.

    A ToolError, so MCPServer hands its one-line message to the model instead of a bare
    "Error executing tool"."""


# --- units ---------------------------------------------------------------------------------------

class Unit(NamedTuple):
    symbol: str
    dimension: str
    scale: Fraction  # base units (m, kg, s, K, bit) per unit
    offset: Fraction  # only temperatures have one: base = value * scale + offset
    names: tuple[str, ...]


def _unit(symbol: str, dimension: str, scale: int | str | Fraction, *names: str, offset: str | Fraction = "0") -> Unit:
    return Unit(symbol, dimension, Fraction(scale), Fraction(offset), names)


POUND = Fraction("0.45359237")  # kg, exact by the 1959 international agreement
YEAR = Fraction("365.25") * 86400  # s, the Julian year
UNITS = [
    _unit("m", "length", 1, "metre", "metres", "meter", "meters"),
    _unit("km", "length", 1000, "kilometre", "kilometres", "kilometer", "kilometers"),
    _unit("cm", "length", "0.01", "centimetre", "centimetres", "centimeter", "centimeters"),
    _unit("mm", "length", "0.001", "millimetre", "millimetres", "millimeter", "millimeters"),
    _unit("um", "length", "1e-6", "µm", "μm", "micrometre", "micrometres", "micrometer", "micrometers", "micron", "microns"),
    _unit("nm", "length", "1e-9", "nanometre", "nanometres", "nanometer", "nanometers"),
    _unit("mi", "length", "1609.344", "mile", "miles"),
    _unit("yd", "length", "0.9144", "yard", "yards"),
    _unit("ft", "length", "0.3048", "foot", "feet", "'"),
    _unit("in", "length", "0.0254", "inch", "inches", '"'),
    _unit("nmi", "length", 1852, "nautical mile", "nautical miles"),
    _unit("kg", "mass", 1, "kilogram", "kilograms", "kilo", "kilos"),
    _unit("g", "mass", "0.001", "gram", "grams"),
    _unit("mg", "mass", "1e-6", "milligram", "milligrams"),
    _unit("t", "mass", 1000, "tonne", "tonnes", "metric ton", "metric tons"),
    _unit("lb", "mass", POUND, "lbs", "pound", "pounds"),
    _unit("oz", "mass", POUND / 16, "ounce", "ounces"),
    _unit("st", "mass", POUND * 14, "stone", "stones"),
    _unit("s", "time", 1, "sec", "secs", "second", "seconds"),
    _unit("ms", "time", "0.001", "millisecond", "milliseconds"),
    _unit("us", "time", "1e-6", "µs", "μs", "microsecond", "microseconds"),
    _unit("ns", "time", "1e-9", "nanosecond", "nanoseconds"),
    _unit("min", "time", 60, "mins", "minute", "minutes"),
    _unit("h", "time", 3600, "hr", "hrs", "hour", "hours"),
    _unit("day", "time", 86400, "d", "days"),
    _unit("week", "time", 7 * 86400, "wk", "weeks"),
    _unit("year", "time", YEAR, "yr", "yrs", "years"),
    _unit("°C", "temperature", 1, "C", "degC", "deg C", "degree C", "degrees C", "celsius", "degree celsius",
          "degrees celsius", "centigrade", offset="273.15"),
    _unit("°F", "temperature", Fraction(5, 9), "F", "degF", "deg F", "degree F", "degrees F", "fahrenheit",
          "degree fahrenheit", "degrees fahrenheit", offset=Fraction("459.67") * 5 / 9),  # 0 K is -459.67 °F
    _unit("K", "temperature", 1, "kelvin", "kelvins", "°K"),
    _unit("bit", "data size", 1, "b", "bits"),
    _unit("kbit", "data size", 1000, "kb", "kilobit", "kilobits"),
    _unit("Mbit", "data size", 10**6, "Mb", "megabit", "megabits"),
    _unit("Gbit", "data size", 10**9, "Gb", "gigabit", "gigabits"),
    _unit("Tbit", "data size", 10**12, "Tb", "terabit", "terabits"),
    _unit("Pbit", "data size", 10**15, "Pb", "petabit", "petabits"),
    _unit("B", "data size", 8, "byte", "bytes"),
    _unit("kB", "data size", 8 * 1000, "kilobyte", "kilobytes"),
    _unit("MB", "data size", 8 * 1000**2, "megabyte", "megabytes"),
    _unit("GB", "data size", 8 * 1000**3, "gigabyte", "gigabytes"),
    _unit("TB", "data size", 8 * 1000**4, "terabyte", "terabytes"),
    _unit("PB", "data size", 8 * 1000**5, "petabyte", "petabytes"),
    _unit("KiB", "data size", 8 * 1024, "kibibyte", "kibibytes"),
    _unit("MiB", "data size", 8 * 1024**2, "mebibyte", "mebibytes"),
    _unit("GiB", "data size", 8 * 1024**3, "gibibyte", "gibibytes"),
    _unit("TiB", "data size", 8 * 1024**4, "tebibyte", "tebibytes"),
    _unit("PiB", "data size", 8 * 1024**5, "pebibyte", "pebibytes"),
]


def _fold(text: str) -> str:
    """The spelling-insensitive key of a unit name: lower case, no spaces."""
    return "".join(text.split()).lower()


# A name as written finds its unit first; only a name not written exactly is folded, and a folded
# key shared by two units (mb: MB or Mb) is ambiguous rather than silently one of them.
EXACT_NAMES = {name: unit for unit in UNITS for name in (unit.symbol, *unit.names)}
FOLDED_NAMES: dict[str, set[str]] = {}
for _name, _unit_found in EXACT_NAMES.items():
    FOLDED_NAMES.setdefault(_fold(_name), set()).add(_unit_found.symbol)
BY_SYMBOL = {unit.symbol: unit for unit in UNITS}


def find_unit(name: str) -> Unit:
    """The unit a name means, or a one-line UnitError saying why there is none."""
    text = " ".join(name.split())
    if text in EXACT_NAMES:
        return EXACT_NAMES[text]
    symbols = sorted(FOLDED_NAMES.get(_fold(text), ()))
    if len(symbols) == 1:
        return BY_SYMBOL[symbols[0]]
    if symbols:
        readings = " or ".join(f"{s} ({BY_SYMBOL[s].names[-1].rstrip('s')})" for s in symbols)
        raise UnitError(f"unit {name!r} is ambiguous: write {readings} (B is a byte, b a bit)")
    close = difflib.get_close_matches(text, list(EXACT_NAMES), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else "; known units: " + " ".join(BY_SYMBOL)
    raise UnitError(f"unknown unit {name!r}{hint}")


class Conversion(BaseModel):
    value: float
    from_unit: str = Field(description="The unit converted from, as its symbol.")
    to_unit: str = Field(description="The unit converted to, as its symbol.")
    result: float
    dimension: str
    exact: str = Field(description="The result exactly: a decimal such as '1.609344' or a fraction such as '340/9'.")


def convert_units(value: float, from_unit: str, to_unit: str) -> Conversion:
    """`value` in `from_unit` expressed in `to_unit`; one-line UnitError across dimensions."""
    source, target, value = find_unit(from_unit), find_unit(to_unit), float(value)
    if source.dimension != target.dimension:
        raise UnitError(f"cannot convert {source.symbol} ({source.dimension}) to {target.symbol} ({target.dimension})")
    if not math.isfinite(value):
        raise UnitError(f"the value must be a finite number, not {value}")
    # The value as the decimal it was written as (0.1, not the binary float nearest it).
    base = Fraction(repr(value)) * source.scale + source.offset
    if source.dimension == "temperature" and base < 0:
        raise UnitError(f"{_number_text(value)} {source.symbol} is below absolute zero (0 K)")
    exact = (base - target.offset) / target.scale
    return Conversion(value=value, from_unit=source.symbol, to_unit=target.symbol, result=float(exact),
                      dimension=source.dimension, exact=exact_text(exact))


def conversion_sentence(conversion: Conversion) -> str:
    """'100 °C = 212 °F', or with the exact fraction when the decimal does not end."""
    left = f"{_number_text(conversion.value)} {conversion.from_unit} = {_number_text(conversion.result)} {conversion.to_unit}"
    return f"{left} (exactly {conversion.exact})" if "/" in conversion.exact else left


def exact_text(number: Fraction) -> str:
    """'212', '1.609344' when the number has a terminating decimal expansion, else '340/9'."""
    denominator, twos, fives = number.denominator, 0, 0
    while denominator % 2 == 0:
        denominator, twos = denominator // 2, twos + 1
    while denominator % 5 == 0:
        denominator, fives = denominator // 5, fives + 1
    if denominator != 1:
        return f"{number.numerator}/{number.denominator}"
    places = max(twos, fives)  # the fewest decimal places that hold the number exactly
    if places == 0:
        return str(number.numerator)
    digits = str(abs(number.numerator) * 10**places // number.denominator).rjust(places + 1, "0")
    return f"{'-' if number < 0 else ''}{digits[:-places]}.{digits[-places:]}"


def _number_text(value: float) -> str:
    return f"{value:.0f}" if value.is_integer() and abs(value) < 1e16 else repr(value)


# --- colours -------------------------------------------------------------------------------------

# The 148 named colours of CSS Color Module Level 4 (section 6.1), in its (alphabetical) order.
CSS_COLOURS = dict(zip(*[iter("""
aliceblue #f0f8ff  antiquewhite #faebd7  aqua #00ffff  aquamarine #7fffd4  azure #f0ffff
beige #f5f5dc  bisque #ffe4c4  black #000000  blanchedalmond #ffebcd  blue #0000ff
blueviolet #8a2be2  brown #a52a2a  burlywood #deb887  cadetblue #5f9ea0  chartreuse #7fff00
chocolate #d2691e  coral #ff7f50  cornflowerblue #6495ed  cornsilk #fff8dc  crimson #dc143c
cyan #00ffff  darkblue #00008b  darkcyan #008b8b  darkgoldenrod #b8860b  darkgray #a9a9a9
darkgreen #006400  darkgrey #a9a9a9  darkkhaki #bdb76b  darkmagenta #8b008b  darkolivegreen #556b2f
darkorange #ff8c00  darkorchid #9932cc  darkred #8b0000  darksalmon #e9967a  darkseagreen #8fbc8f
darkslateblue #483d8b  darkslategray #2f4f4f  darkslategrey #2f4f4f  darkturquoise #00ced1  darkviolet #9400d3
deeppink #ff1493  deepskyblue #00bfff  dimgray #696969  dimgrey #696969  dodgerblue #1e90ff
firebrick #b22222  floralwhite #fffaf0  forestgreen #228b22  fuchsia #ff00ff  gainsboro #dcdcdc
ghostwhite #f8f8ff  gold #ffd700  goldenrod #daa520  gray #808080  green #008000
greenyellow #adff2f  grey #808080  honeydew #f0fff0  hotpink #ff69b4  indianred #cd5c5c
indigo #4b0082  ivory #fffff0  khaki #f0e68c  lavender #e6e6fa  lavenderblush #fff0f5
lawngreen #7cfc00  lemonchiffon #fffacd  lightblue #add8e6  lightcoral #f08080  lightcyan #e0ffff
lightgoldenrodyellow #fafad2  lightgray #d3d3d3  lightgreen #90ee90  lightgrey #d3d3d3  lightpink #ffb6c1
lightsalmon #ffa07a  lightseagreen #20b2aa  lightskyblue #87cefa  lightslategray #778899  lightslategrey #778899
lightsteelblue #b0c4de  lightyellow #ffffe0  lime #00ff00  limegreen #32cd32  linen #faf0e6
magenta #ff00ff  maroon #800000  mediumaquamarine #66cdaa  mediumblue #0000cd  mediumorchid #ba55d3
mediumpurple #9370db  mediumseagreen #3cb371  mediumslateblue #7b68ee  mediumspringgreen #00fa9a  mediumturquoise #48d1cc
mediumvioletred #c71585  midnightblue #191970  mintcream #f5fffa  mistyrose #ffe4e1  moccasin #ffe4b5
navajowhite #ffdead  navy #000080  oldlace #fdf5e6  olive #808000  olivedrab #6b8e23
orange #ffa500  orangered #ff4500  orchid #da70d6  palegoldenrod #eee8aa  palegreen #98fb98
paleturquoise #afeeee  palevioletred #db7093  papayawhip #ffefd5  peachpuff #ffdab9  peru #cd853f
pink #ffc0cb  plum #dda0dd  powderblue #b0e0e6  purple #800080  rebeccapurple #663399
red #ff0000  rosybrown #bc8f8f  royalblue #4169e1  saddlebrown #8b4513  salmon #fa8072
sandybrown #f4a460  seagreen #2e8b57  seashell #fff5ee  sienna #a0522d  silver #c0c0c0
skyblue #87ceeb  slateblue #6a5acd  slategray #708090  slategrey #708090  snow #fffafa
springgreen #00ff7f  steelblue #4682b4  tan #d2b48c  teal #008080  thistle #d8bfd8
tomato #ff6347  turquoise #40e0d0  violet #ee82ee  wheat #f5deb3  white #ffffff
whitesmoke #f5f5f5  yellow #ffff00  yellowgreen #9acd32
""".split())] * 2))
# X11's rgb.txt gives these names other values than CSS (CSS took them from HTML 4 instead);
# every other CSS name has the same value in X11.
X11_COLOURS = CSS_COLOURS | {"gray": "#bebebe", "grey": "#bebebe", "green": "#00ff00", "maroon": "#b03060", "purple": "#a020f0"}
SCHEMES = {"css": CSS_COLOURS, "x11": X11_COLOURS}


class Colour(BaseModel):
    input: str
    hex: str = Field(description="The colour as #rrggbb (lower case).")
    rgb: Annotated[list[int], Field(min_length=3, max_length=3, description="Red, green, blue, each 0-255.")]
    name: str | None = Field(description="The CSS name of exactly this colour, or null when CSS names none.")
    scheme: Literal["css", "x11"] = Field(description="The name table a colour name was looked up in.")


def find_colour(name_or_hex: str, scheme: Literal["css", "x11"] = "css") -> Colour:
    """A colour from a name, #rgb, #rrggbb (the # optional) or rgb(r, g, b); one-line UnitError otherwise."""
    text = name_or_hex.strip().lower()
    prefix = re.match(r"(css|x11)\s*:\s*", text)
    if prefix:
        scheme, text = prefix.group(1), text[prefix.end():]
    key = re.sub(r"[\s_-]", "", text)  # "Rebecca Purple", "light-blue"
    if key in SCHEMES[scheme]:
        hex_value = SCHEMES[scheme][key]
    else:
        hex_value = _hex_or_rgb(text)
    rgb = [int(hex_value[i:i + 2], 16) for i in (1, 3, 5)]
    return Colour(input=name_or_hex, hex=hex_value, rgb=rgb, name=css_name(hex_value, key), scheme=scheme)


def css_name(hex_value: str, preferred: str = "") -> str | None:
    """The CSS name of a colour: `preferred` when it is one (gray, not grey), else the first in the list."""
    if CSS_COLOURS.get(preferred) == hex_value:
        return preferred
    return next((name for name, value in CSS_COLOURS.items() if value == hex_value), None)


def _hex_or_rgb(text: str) -> str:
    hex_match = re.fullmatch(r"#?([0-9a-f]{3}|[0-9a-f]{6})", text)
    if hex_match:
        digits = hex_match.group(1)
        return "#" + (digits if len(digits) == 6 else "".join(d * 2 for d in digits))
    rgb_match = re.fullmatch(r"rgb\((.*)\)", text)
    if rgb_match:
        parts = [p for p in re.split(r"[\s,]+", rgb_match.group(1).strip()) if p]
        if len(parts) != 3 or not all(p.isdigit() and int(p) <= 255 for p in parts):
            raise UnitError(f"rgb() takes three whole numbers from 0 to 255, not {rgb_match.group(1)!r}")
        return "#" + "".join(f"{int(p):02x}" for p in parts)
    close = difflib.get_close_matches(re.sub(r"[\s_-]", "", text), list(CSS_COLOURS), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "give a CSS colour name, #rgb, #rrggbb or rgb(r, g, b)"
    raise UnitError(f"unknown colour {text!r}; {hint}")


def colour_sentence(colour: Colour) -> str:
    """'rebeccapurple = #663399 = rgb(102, 51, 153)', naming the CSS colour when the input did not."""
    r, g, b = colour.rgb
    text = f"{colour.input.strip()} = {colour.hex} = rgb({r}, {g}, {b})"
    if colour.name is None:
        return text + " (no CSS name)"
    written = re.sub(r"^\s*(css|x11)\s*:|[\s_-]", "", colour.input.lower())
    return text if written == colour.name else f"{text} (CSS name: {colour.name})"


# --- the server ----------------------------------------------------------------------------------

# Lantern runs a tool only when it declares itself read-only and closed-world (no writes, no
# network), unless its server is listed as trusted; these tools only compute.
READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
server = MCPServer("units", instructions="Unit conversion (length, mass, time, temperature, data size) and colour values.")


def _reply(model: BaseModel, text: str) -> CallToolResult:
    # The text block is what the model reads; the structured content is what programs read.
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=model.model_dump(mode="json"))


@server.tool(annotations=READ_ONLY)
def convert(
    value: float,
    from_unit: Annotated[str, Field(description="Unit converted from, e.g. 'km', 'lb', '°C', 'GiB', 'miles'.")],
    to_unit: Annotated[str, Field(description="Unit converted to, of the same dimension as from_unit.")],
) -> Annotated[CallToolResult, Conversion]:
    """Convert a value between units of length, mass, time, temperature or data size (B byte, b bit; kB = 1000 B, KiB = 1024 B)."""
    conversion = convert_units(value, from_unit, to_unit)
    return _reply(conversion, conversion_sentence(conversion))


@server.tool(annotations=READ_ONLY)
def colour(
    name_or_hex: Annotated[str, Field(description="A colour name ('rebeccapurple', 'x11:green'), '#rgb', '#rrggbb' "
                                                  "or 'rgb(r, g, b)'.")],
    scheme: Annotated[Literal["css", "x11"], Field(description="Name table: CSS (default) or X11, which differ for "
                                                               "gray, green, maroon and purple.")] = "css",
) -> Annotated[CallToolResult, Colour]:
    """The hex and RGB values of a colour, and its CSS name when it has one."""
    found = find_colour(name_or_hex, scheme)
    return _reply(found, colour_sentence(found))


if __name__ == "__main__":
    server.run()
