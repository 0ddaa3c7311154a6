"""The one exception type for malformed FF-A data."""


class FfaFormatError(ValueError):
    """Raised for bytes, words or text that do not form a valid FF-A value."""
