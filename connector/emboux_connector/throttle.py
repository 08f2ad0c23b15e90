"""Failed API authentications, slowed per client address (issue 9).

Guessing tokens was free: 750 bad tokens in 2 s, never a 429. Now every
failed authentication (a token that is unknown, deactivated or expired) is
counted against the client's address with the `limits` library (moving
window). Once an address is over AUTH_FAILURE_LIMIT, EVERY request from it is
refused with 429, `Retry-After` and {"detail", "code": "rate_limited"} before
its token is even looked at -- otherwise the difference between 429 and 200
would still tell a guesser when a guess is right. Successful requests count
nothing, and other addresses are never slowed by one address's failures.

Settings (environment):
  AUTH_FAILURE_LIMIT   limits' notation, default "30/minute;300/hour"
  AUTH_LIMIT_STORAGE   limits' storage URI, default "memory://": each gunicorn
                       worker process counts on its own, so with W workers an
                       address may fail up to W x the limit before every
                       worker refuses it. A shared store (redis://,
                       redis+unix://) makes the limit exact across workers;
                       the dev stack and the deployment use a Redis. While
                       that store cannot be reached each worker counts in
                       its own memory again (logged once per outage, the
                       store tried again every STORE_RETRY seconds): an
                       outage of the counter must not take the API down,
                       nor let guesses through uncounted.
  API_TRUSTED_PROXIES  comma-separated proxy addresses whose X-Forwarded-For
                       is believed (its last hop is the client). Default
                       none: the header is ignored, so a client cannot pick
                       the address it is counted under.
"""

import logging
import math
import time
from dataclasses import dataclass, field

from flask import current_app, request
from limits import parse_many, storage, strategies
from limits.errors import StorageError

from . import settings
from .errors import ApiError

DEFAULT_LIMIT = "30/minute;300/hour"
NAMESPACE = "auth-failure"
STORE_RETRY = 5.0   # seconds a worker counts in memory after the shared store failed
log = logging.getLogger(__name__)


@dataclass
class Throttle:
    limits: list
    limiter: object
    trusted_proxies: frozenset
    # this worker's own count, while the shared store is out of reach
    fallback: object = field(default_factory=lambda: strategies.MovingWindowRateLimiter(storage.MemoryStorage()))
    store_down_until: float = 0.0

    @classmethod
    def from_env(cls, env=None):
        spec = settings.get("AUTH_FAILURE_LIMIT", env)
        try:
            items = parse_many(spec)
        except ValueError as exc:
            raise ValueError(f"AUTH_FAILURE_LIMIT: {exc}") from None
        store = storage.storage_from_string(settings.get("AUTH_LIMIT_STORAGE", env), wrap_exceptions=True)
        proxies = frozenset(p.strip() for p in (settings.get("API_TRUSTED_PROXIES", env) or "").split(",") if p.strip())
        return cls(items, strategies.MovingWindowRateLimiter(store), proxies)

    def client_address(self):
        addr = request.remote_addr or "unknown"
        if addr in self.trusted_proxies:
            hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
            if hops:
                return hops[-1]
        return addr

    def _counted(self, use):
        """use(limiter) on the shared store; on this worker's memory while it is out of reach."""
        if time.monotonic() >= self.store_down_until:
            try:
                result = use(self.limiter)
            except StorageError as exc:
                if not self.store_down_until:
                    log.warning("AUTH_LIMIT_STORAGE unreachable (%s): failed authentications are counted "
                                "per worker until it answers again", exc.storage_error)
                self.store_down_until = time.monotonic() + STORE_RETRY
            else:
                if self.store_down_until:
                    log.warning("AUTH_LIMIT_STORAGE answers again: failed authentications counted there")
                self.store_down_until = 0.0
                return result
        return use(self.fallback)

    def check(self, addr, namespace=NAMESPACE):
        """429 when the address (or another key) has used up a limit; nothing counted."""
        def blocked_for(limiter):
            blocked = [item for item in self.limits if not limiter.test(item, namespace, addr)]
            now = time.time()
            return max((limiter.get_window_stats(item, namespace, addr).reset_time - now for item in blocked),
                       default=None)
        wait = self._counted(blocked_for)
        if wait is None:
            return
        raise ApiError(429, "Too many failed authentication attempts, try again later",
                       code="rate_limited", headers={"Retry-After": str(max(1, math.ceil(wait)))})

    def failed(self, addr, namespace=NAMESPACE):
        def hit(limiter):
            for item in self.limits:
                limiter.hit(item, namespace, addr)
        self._counted(hit)


def throttle():
    """The app's Throttle (one per process, made by create_app)."""
    return current_app.extensions["emboux_auth_throttle"]
