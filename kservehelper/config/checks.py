"""Value checks shared by config.yaml's sections: text, names, image references, secrets.

Every check matches the *whole* value (``re.fullmatch``; a ``$`` anchor would let a trailing
newline through) and raises ``ValueError`` with a fix, which pydantic turns into a
``file:line: key: message`` line (:mod:`kservehelper.config.errors`).
"""

from __future__ import annotations

import itertools
import re
import unicodedata

#: KServe's InferenceService name rule (a DNS-1035 label).
KSERVE_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
#: KServe derives names such as NAME-transformer-00001 (a Knative revision), which must fit in
#: a 63-character DNS label: 63 - len("-transformer-00001") = 45.
MAX_MODEL_NAME = 45
# Docker image references (distribution/reference grammar, strict).
_DOMAIN_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*(?::\d+)?)"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?"
)
# Kubernetes: DNS subdomains, qualified names (label, annotation, taint keys), label values.
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
# Name parts that mark a variable as a credential: HF_TOKEN, AWS_SECRET_ACCESS_KEY,
# OPENAI_API_KEY, DB_PASSWORD... but not TOKENIZERS_PARALLELISM or MAX_TOKENS.
_SECRET_PARTS = {"TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIALS", "APIKEY"}
_SECRET_PAIRS = {("API", "KEY"), ("ACCESS", "KEY"), ("PRIVATE", "KEY"), ("AUTH", "TOKEN")}
# Values shaped like well-known credentials (AWS key ids, GitHub/Hugging Face/OpenAI/Slack tokens).
_SECRET_VALUE = re.compile(
    r"(AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|hf_[A-Za-z0-9]{30,}"
    r"|sk-[A-Za-z0-9_-]{20,}|xox[abpr]-[A-Za-z0-9-]{10,}|-----BEGIN [A-Z ]*PRIVATE KEY-----"
)


def control_characters(value: str, allowed: str = "") -> list[str]:
    """The control characters in ``value`` (besides ``allowed``), spelled as escapes."""
    found = []
    for char in value:
        if char in allowed:
            continue
        if unicodedata.category(char) == "Cc" or char in "\u2028\u2029":
            found.append(repr(char)[1:-1])
    return list(dict.fromkeys(found))


def check_text(value: str, what: str, allowed: str = "") -> str:
    """Refuse control characters (newlines, tabs, escapes...) unless ``allowed``."""
    bad = control_characters(value, allowed)
    if bad:
        raise ValueError(f"{what} contains the control character(s) {', '.join(bad)}; remove them")
    return value


def check_model_name(value: str) -> str:
    """KServe's name rule and length limit, with a fixed suggestion."""
    if len(value) > MAX_MODEL_NAME or not KSERVE_NAME.fullmatch(value):
        raise ValueError(
            f"'{value}' must start with a letter, hold only lowercase letters, digits and '-', "
            f"end with a letter or digit, and be at most {MAX_MODEL_NAME} characters (KServe "
            f"derives longer names from it); e.g. '{suggest_model_name(value)}'"
        )
    return value


def suggest_model_name(text: str) -> str:
    """``text`` turned into a name that satisfies :func:`check_model_name`."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if not name:
        return "model"
    if not name[0].isalpha():
        name = "m-" + name
    return name[:MAX_MODEL_NAME].rstrip("-")


def check_image_reference(value: str) -> str:
    """A Docker image reference, ``[REGISTRY/]NAME[:TAG][@sha256:DIGEST]``."""
    check_text(value, "the image reference")
    if not IMAGE_REFERENCE.fullmatch(value):
        hint = " (repository names must be lowercase)" if value != value.lower() else ""
        raise ValueError(
            f"'{value}' is not a valid image reference{hint}; use [REGISTRY/]NAME[:TAG], "
            "e.g. 127.0.0.1:5000/blur-image:1.0"
        )
    return value


def looks_like_secret_name(name: str) -> bool:
    """Whether an environment variable's name says it holds a credential."""
    parts = [part for part in re.split(r"[^A-Z0-9]+", name.upper()) if part]
    if any(part in _SECRET_PARTS for part in parts):
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(parts))


def looks_like_secret_value(value: str) -> bool:
    """Whether a value has the shape of a well-known credential (an AWS key id, a token...)."""
    return bool(_SECRET_VALUE.search(value))


def is_plainly_not_secret(value: str) -> bool:
    """Numbers, booleans and empty values: a secret-sounding name with such a value is fine
    (``TOKEN_LIMIT: 4096``)."""
    text = value.strip().lower()
    return text in ("", "true", "false", "yes", "no", "on", "off") or bool(
        re.fullmatch(r"[-+]?\d+(\.\d+)?", text)
    )


def check_qualified_key(key: str, what: str = "key") -> str:
    """A Kubernetes label/annotation/taint key: ``[prefix/]name``, name up to 63 characters,
    prefix a DNS subdomain up to 253."""
    prefix, _, name = key.rpartition("/")
    if (
        not name
        or len(name) > 63
        or not _QUALIFIED_NAME.fullmatch(name)
        or (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)))
    ):
        raise ValueError(
            f"{key!r} is not a valid {what}: [prefix/]name, name up to 63 letters, digits, "
            "'-', '_' or '.', e.g. 'example.com/pool'"
        )
    return key


def check_label_value(value: str, key: str) -> str:
    """A Kubernetes label value: up to 63 letters, digits, '-', '_' or '.', alphanumeric ends."""
    if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        raise ValueError(
            f"the value of {key!r} ({value!r}) must be at most 63 letters, digits, '-', '_' "
            "or '.', starting and ending with a letter or digit"
        )
    return value
