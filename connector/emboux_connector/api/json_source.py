"""Seed 002's Basic JSON API (in progress)."""

from flask import Blueprint

bp = Blueprint("json_source", __name__)
