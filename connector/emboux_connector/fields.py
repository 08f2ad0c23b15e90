"""Strict marshmallow fields: JSON types are checked, never coerced."""

import datetime as dt

from marshmallow import fields


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
        super().__init__(**kwargs)
        self.min_length = min_length
        self.max_length = max_length

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if len(value) < self.min_length:
            raise self.make_error("required" if not value else "invalid")
        if len(value) > self.max_length:
            from marshmallow import ValidationError
            raise ValidationError(f"Longer than {self.max_length} characters.")
        return value


class AwareDateTime(fields.DateTime):
    """ISO 8601; a time without offset is taken as UTC."""

    def _deserialize(self, value, attr, data, **kwargs):
        result = super()._deserialize(value, attr, data, **kwargs)
        if result.tzinfo is None:
            result = result.replace(tzinfo=dt.timezone.utc)
        return result
