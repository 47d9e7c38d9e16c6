"""jobdeck shared library: what two or more services need to agree on."""


class JobdeckError(Exception):
    """A jobdeck operation failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)
