"""The error the data package raises for unusable files or settings."""


class DataError(ValueError):
    """A dataset file or a data setting is unusable; the message names it and says what to do."""
