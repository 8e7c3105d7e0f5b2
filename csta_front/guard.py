"""Repeated wrong passwords: slowed down, then refused for a while. Pure: the caller gives the time.

Failures are counted per key (the client's address, and the user name) within a window; each one
makes the next answer wait longer, and from `lock_after` failures on the key is locked out for
`lockout_s`: even the right password is refused then, so guessing gains nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AuthGuard:
    lock_after: int = 5
    window_s: float = 300.0
    lockout_s: float = 60.0
    base_delay_s: float = 0.25
    failures: dict[str, list[float]] = field(default_factory=dict)
    locked_until: dict[str, float] = field(default_factory=dict)

    def locked(self, keys: list[str], now: float) -> bool:
        return any(self.locked_until.get(k, 0.0) > now for k in keys)

    def failed(self, keys: list[str], now: float) -> float:
        """Record a failure; returns how long to wait before answering it."""
        worst = 0
        for key in keys:
            recent = [t for t in self.failures.get(key, []) if now - t < self.window_s] + [now]
            self.failures[key] = recent[-self.lock_after * 2:]  # bounded memory per key
            if len(recent) >= self.lock_after:
                self.locked_until[key] = now + self.lockout_s
            worst = max(worst, len(recent))
        self._forget_old(now)
        return min(self.base_delay_s * 2 ** (worst - 1), 4.0)

    def succeeded(self, keys: list[str]) -> None:
        for key in keys:
            self.failures.pop(key, None)

    def _forget_old(self, now: float) -> None:
        # Keep the tables small under a flood of distinct keys.
        if len(self.failures) > 10_000:
            for key in [k for k, ts in self.failures.items() if now - ts[-1] >= self.window_s]:
                del self.failures[key]
        if len(self.locked_until) > 10_000:
            for key in [k for k, until in self.locked_until.items() if until <= now]:
                del self.locked_until[key]
