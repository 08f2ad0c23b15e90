"""Strict marshmallow fields: JSON types are checked, never coerced."""

import datetime as dt
import re

from marshmallow import ValidationError, fields, validate

# PostgreSQL text holds neither NUL nor a lone UTF-16 surrogate (JSON
# "\ud800" decodes to one; UTF-8 cannot encode it): refused at the door.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "NUL characters and lone UTF-16 surrogates are not allowed"


def unstorable(value, where):
    """Where in a JSON value (keys included) a string PostgreSQL cannot
    store is, as 'field', 'field[2]' or 'field.key'; None when all is fine.
    Iterative: a body nested as deep as the JSON parser allows is walked
    without running out of stack."""
    todo = [(where, value)]
    while todo:
        here, item = todo.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return here or "body"
        elif isinstance(item, dict):
            for key, inner in item.items():
                if _UNSTORABLE.search(str(key)):
                    return here or "body"
                todo.append((f"{here}.{key}" if here else str(key), inner))
        elif isinstance(item, (list, tuple)):
            todo.extend((f"{here}[{i}]", inner) for i, inner in enumerate(item))
    return None


class FullRegexp(validate.Regexp):
    """A pattern the whole value must match. Regexp.match lets '$' match
    before a final newline ("p\n" passed ^[a-z]+$); the published pattern
    (OpenAPI, ECMA-262) keeps its plain '$'."""

    def __call__(self, value):
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


class StrictInteger(fields.Integer):
    """An integer, and only an integer: not "5", not 5.0, not true."""

    def __init__(self, **kwargs):
        kwargs.setdefault("strict", True)
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class StrictString(fields.String):
    """A string of bounded length (default 1..255)."""

    def __init__(self, min_length=1, max_length=255, **kwargs):
        # published in the OpenAPI document (clients and the fuzzer see them)
        kwargs["metadata"] = {"minLength": min_length, "maxLength": max_length, **kwargs.get("metadata", {})}
        super().__init__(**kwargs)
        self.min_length = min_length
        self.max_length = max_length

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if not value and self.min_length:
            raise self.make_error("required")
        if len(value) < self.min_length:
            # e.g. an API key token of 23 characters: say so, not "Not a valid string."
            raise ValidationError(f"Shorter than {self.min_length} characters.")
        if len(value) > self.max_length:
            raise ValidationError(f"Longer than {self.max_length} characters.")
        return value


class AwareDateTime(fields.DateTime):
    """ISO 8601; a time without offset is taken as UTC. The result is in UTC:
    PostgreSQL refuses offsets beyond 15:59 (Python takes up to 23:59), and
    an instant whose UTC date falls outside years 1..9999 (0001-01-01T00:00
    +01:00) could be stored but never read back into Python."""

    def _deserialize(self, value, attr, data, **kwargs):
        result = super()._deserialize(value, attr, data, **kwargs)
        if result.tzinfo is None:
            result = result.replace(tzinfo=dt.UTC)
        try:
            return result.astimezone(dt.UTC)
        except OverflowError:
            raise ValidationError("Out of range: the instant in UTC must fall in years 1 to 9999.") from None
