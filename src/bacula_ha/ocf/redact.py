"""The one redaction rule: which names hold secrets, and how their values leave a message."""

from __future__ import annotations

MASK = "***"
# A name says secret when one of its words holds one of these (fence agents' `passwd`,
# Bacula's `DB Password`, `pgpassword`, `auth_token`, `client_secret`) or is or ends with
# `key` (`api_key`, `apiKey`, `sshkey`), unless its last word says it names where a secret is
# kept (`password_file`, `key_path`): a path is not the secret, and an error about it must
# still name it.
_SECRET_PARTS = ("passw", "passphrase", "secret", "token")
_HOLDER_WORDS = frozenset({"file", "path", "dir", "script", "cmd", "command"})
# Shorter secrets are only redacted as whole words, or "a" would blank every message.
_SUBSTRING_MIN = 4


def _words(name: str) -> list[str]:
    # `fence.params.password`, `DB Password`, `apiKey`, `ssh-key`: split on what is not a
    # letter or digit and where a lower-case letter meets an upper-case one. No `re`: the
    # agents' runner asks this of every parameter on every action, and a probe loads no `re`.
    words: list[str] = []
    current = ""
    for i, char in enumerate(name):
        if not char.isalnum():
            if current:
                words.append(current)
            current = ""
            continue
        if current and char.isupper() and name[i - 1].islower():
            words.append(current)
            current = ""
        current += char
    if current:
        words.append(current)
    return [w.lower() for w in words]


def is_secret_name(name: str) -> bool:
    """Whether a field, parameter or directive called `name` holds a secret."""
    words = _words(name)
    if not words or words[-1] in _HOLDER_WORDS:
        return False
    return any(
        w == "pass" or w.endswith("key") or any(p in w for p in _SECRET_PARTS) for w in words
    )


def hide(text: str, secrets: tuple[str, ...] | list[str] = ()) -> str:
    """`text` with every one of `secrets`, and its repr (messages quote values), masked."""
    for secret in sorted(secrets, key=len, reverse=True):
        if not secret:
            continue
        for form in (repr(secret), secret):
            if len(form) >= _SUBSTRING_MIN:
                text = text.replace(form, MASK)
            else:
                import re  # only for a short secret, rare: see _words

                text = re.sub(rf"(?<!\w){re.escape(form)}(?!\w)", MASK, text)
    return text
