"""What django-axes records of a failed sign-in."""

from django.conf import settings
from django.http import HttpRequest

# The longest email address there is (RFC 5321), and what User.email holds; axes' column holds 255.
MAX_USERNAME = 254


def axes_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """The email typed at sign-in, as axes would take it, cut to a length its table can store.

    Nobody signs in with a longer name, so the cut never merges two real accounts; without it a very long
    name made recording the failed attempt a 500 instead of "wrong email or password".
    """
    source = credentials or getattr(request, "data", request.POST)
    username = source.get(settings.AXES_USERNAME_FORM_FIELD)
    if username is None:
        return None
    return str(username).replace("\x00", "")[:MAX_USERNAME]
