import pytest

from hil.xen.messages import MESSAGES, Level, identify, message

SAMPLE_VALUES = {
    "d": -5,
    "u": 63,
    "04x": 0x42,
    "#x": 0x10001,
    "s": "FFA_RUN",
    "ver": "1.2",
    "rest": "(gcc) x",
}


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: m.key)
def test_every_message_renders_and_parses_back_to_itself(msg):
    from string import Formatter

    values = {
        name: SAMPLE_VALUES[spec or "s"]
        for _, name, spec, _ in Formatter().parse(msg.template)
        if name
    }
    text = msg.render(**values)
    assert msg.match(text) == values
    assert identify(text)[0] is msg


def test_exact_texts_from_the_reference():
    assert (
        message("id_convention").render()
        == "ffa: Firmware is not using bit 15 convention for IDs !!"
    )
    assert (
        message("sp_unusable").render(id=0x7FFF)
        == "ffa: Secure partition with id 0x7fff cannot be used"
    )
    assert message("cache_failed").render() == "ffa: Failed to cache SP list"
    # Xen's own typo: two spaces before the SP id.
    assert "to  32769" in message("vm_created_failed").render(vm_id=1, sp_id=32769, res=-5)
    assert message("no_firmware").level is Level.WARNING


def test_text_that_only_resembles_a_message_is_not_identified():
    assert identify("ffa: Secure partition with id 0xzz cannot be used") is None
    assert identify("ARM FF-A Firmware version one") is None
