"""Keep secrets and account numbers out of text that leaves the process (alerts, and the launcher's banner).

`mask` shows an account number's last four characters only. `Redactor` is the last line of defence for
outgoing text: every configured secret (and the token parts of a URL) becomes `***`, every known account
number, and anything shaped like an Alpaca paper account number, is masked.
"""

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit

# Alpaca paper account numbers read PA followed by letters and digits; live ones are registered explicitly
ACCOUNT_PATTERN = re.compile(r"\bPA[0-9A-Z]{6,}\b")
MIN_TOKEN_CHARS = 8  # shorter URL parts (hosts' labels, ports, "alerts") are not secrets and would mangle text


def mask(account_number: str) -> str:
    return "*" * max(len(account_number) - 4, 0) + account_number[-4:]


def url_secrets(url: str) -> list[str]:
    """The URL itself and the parts of it that may be tokens: user, password, path segments, query values."""
    parts = [url]
    try:
        u = urlsplit(url)
    except ValueError:  # not a URL after all: the whole string is still scrubbed
        return parts
    parts += [u.username or "", u.password or "", *u.path.split("/"), *(v for _, v in parse_qsl(u.query))]
    return [p for p in parts if len(p) >= MIN_TOKEN_CHARS or p == url]


class Redactor:
    def __init__(self, secrets: Iterable[str] = (), accounts: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self._accounts: list[str] = []
        for s in secrets:
            self.add_secret(s)
        for a in accounts:
            self.add_account(a)

    def add_secret(self, secret: str) -> None:
        if secret and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)  # a secret that contains another is replaced whole

    def add_account(self, number: str) -> None:
        if number and number not in self._accounts:
            self._accounts.append(number)

    def __call__(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        for a in self._accounts:
            text = text.replace(a, mask(a))
        return ACCOUNT_PATTERN.sub(lambda m: mask(m.group(0)), text)
