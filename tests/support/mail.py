"""The password-reset endpoints that send mail, and the token a mail carries."""

import re
from email.message import Message

FORGOT = "/api/v2/auth/password/forgot"
RESET = "/api/v2/auth/password/reset"


def token_in(message: Message) -> str:
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    match = re.search(r"Token: (\S+)", body.decode())
    assert match, body
    return match.group(1)
