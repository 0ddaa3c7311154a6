"""Bad input never crashes hil: any scenario file or blob either loads or gives one ConfigError
line naming the file (issue 6, item 3)."""

import contextlib
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hil.errors import ConfigError
from hil.ffa import FfaFormatError
from hil.ffa.spmc import SpmcConfig
from hil.probe import ProbePlan
from hil.scenario import load_scenario
from tests.labs import toml_value

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

toml_scalars = st.one_of(
    st.integers(-(2**40), 2**40),
    st.text(string.printable, max_size=40),
    st.booleans(),
    st.floats(allow_nan=False),
    st.lists(st.text(max_size=8), max_size=3),
)
keys = st.sampled_from(
    [
        "description",
        "firmware_version",
        "guest_version",
        "layout",
        "fpi_size",
        "count",
        "unsupported",
        "id",
        "uuid",
        "exec_ctx",
        "properties",
        "repeat",
        "bogus",
    ]
)


@st.composite
def scenario_texts(draw) -> str:
    top = draw(st.dictionaries(keys, toml_scalars, max_size=5))
    parts = draw(st.lists(st.dictionaries(keys, toml_scalars, max_size=5), max_size=3))
    lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
    for part in parts:
        lines.append("[[partition]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in part.items()]
    return "\n".join(lines)


def assert_loads_or_one_line(path) -> None:
    try:
        load_scenario(path)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(str(path)), message
        assert "\n" not in message


@FUZZ
@given(text=scenario_texts())
def test_structured_garbage_scenarios(tmp_path, text):
    path = tmp_path / "fuzz.toml"
    path.write_text(text)
    assert_loads_or_one_line(path)


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_scenarios(tmp_path, data):
    path = tmp_path / "fuzz.toml"
    path.write_bytes(data)
    assert_loads_or_one_line(path)


@FUZZ
@given(data=st.binary(max_size=200))
def test_random_blobs_are_refused_cleanly(data):
    for decode in (SpmcConfig.decode, ProbePlan.decode):
        with contextlib.suppress(FfaFormatError):
            decode(data)


@FUZZ
@given(data=st.binary(max_size=120))
def test_blob_with_valid_magic_and_random_body(data):
    for decode, magic in ((SpmcConfig.decode, b"HILSPMC1"), (ProbePlan.decode, b"HILPRB01")):
        with contextlib.suppress(FfaFormatError):
            decode(magic + data)
