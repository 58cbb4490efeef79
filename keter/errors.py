class DomainError(Exception):
    """A refusal a person can act on: `message` says what and why, `field` names the input at fault (if any).

    Services raise these; views show the message next to the field (or as a flash) and keep what was typed.
    """

    field: str | None = None

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field

    def __str__(self) -> str:
        return self.message
