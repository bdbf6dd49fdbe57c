"""Synthetic HR chatbot traffic: seeded, vectorised, with injectable drift.

Pure: it yields ``ChatbotInteraction`` dicts (DESIGN.md field names) and knows nothing
of Kafka. Every column draws from its own seeded stream, so injecting drift into one
column, or reordering for out-of-orderness, leaves every other column of the same seed
unchanged: a detector's attribution can be checked exactly, not just statistically.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.errors import ConfigError

CHANNELS = ("web", "slack", "teams", "email", "phone")
INTENTS = ("benefits", "payroll", "leave", "performance_review", "onboarding", "it_access",
           "policy", "other")
DRIFT_KINDS = {"response_latency_ms": ("mean_shift", "variance_change"),
               "confidence": ("mean_shift", "variance_change"),
               "satisfaction": ("mean_shift", "variance_change"),
               "intent": ("category_mix",), "channel": ("category_mix",),
               "embedding": ("embedding_shift",)}
EMBEDDING_NOISE = 0.25  # per-dimension noise sd around an intent centre; embedding_shift's unit
SESSION_GAP_MS = 30 * 60_000  # an employee's quiet gap that starts a new session
_CHUNK = 8192
_HOUR_MS = 3_600_000
_REFERENCE_EVENTS = 20_000

# Local-time hourly load (weekday); weekends run at _WEEKEND of it.
_HOURLY = np.array([.05, .03, .03, .03, .04, .08, .2, .45, .8, 1., 1., .95, .75, .9, 1., .95,
                    .85, .6, .35, .2, .14, .1, .08, .06])
_WEEKEND = 0.15
_INTENT_MIX = np.array([.16, .15, .18, .08, .06, .16, .13, .08])
_CHANNEL_MIX = np.array([.38, .2, .22, .12, .08])
# Latency: log-ms by intent plus a channel offset (email and voice are slower).
_LAT_MU = np.array([7.0, 7.2, 6.9, 7.3, 6.95, 6.7, 7.1, 7.0])
_LAT_CH = np.array([0.0, 0.05, 0.08, 0.9, 0.45])
_LAT_SIGMA = 0.45
_CONF_MEAN = np.array([.78, .74, .82, .62, .76, .85, .70, .48])
_CONF_CONC = 14.0
_ESC_INTENT = np.array([0.0, 0.3, -0.1, 0.8, -0.2, -0.3, 0.2, 0.5])
_ESC_CH = np.array([0.0, -0.2, -0.1, 0.3, 0.7])
# Satisfaction 1..5 given (resolved, escalated, unresolved-not-escalated).
_SAT_CUM = np.cumsum([[.02, .04, .10, .34, .50], [.15, .20, .30, .22, .13],
                      [.30, .30, .22, .12, .06]], axis=1)
_SAT_NULL = 0.4

# name, UTC offset (h), model version, [(locale, weight)]; jurisdiction = locale's region.
_TENANTS = [
    ("acme-emea", 1, "hr-assist-3.2.0", [("en-GB", .4), ("de-DE", .3), ("fr-FR", .2),
                                         ("nl-NL", .1)]),
    ("globex-amer", -5, "hr-assist-3.1.4", [("en-US", .7), ("es-US", .1), ("en-CA", .12),
                                            ("fr-CA", .08)]),
    ("initech-apac", 8, "hr-assist-3.2.0", [("en-SG", .35), ("en-AU", .25), ("ja-JP", .25),
                                            ("en-IN", .15)]),
    ("umbrella-dach", 1, "hr-assist-3.1.4", [("de-DE", .6), ("de-AT", .15), ("de-CH", .15),
                                             ("fr-CH", .1)]),
    ("hooli-latam", -3, "hr-assist-3.2.0", [("pt-BR", .5), ("es-MX", .3), ("es-AR", .2)]),
    ("stark-nordics", 1, "hr-assist-3.2.0", [("sv-SE", .4), ("nb-NO", .2), ("da-DK", .2),
                                             ("fi-FI", .2)]),
    ("wayne-ukie", 0, "hr-assist-3.1.4", [("en-GB", .8), ("en-IE", .2)]),
    ("tyrell-india", 5, "hr-assist-3.2.0", [("en-IN", .8), ("hi-IN", .2)]),
]

_SLOTS = {
    "family": ["spouse", "partner", "newborn", "stepdaughter", "son"],
    "plan": ["dental", "medical", "vision", "pension", "health insurance"],
    "thing": ["physiotherapy", "a gym membership", "therapy sessions", "glasses", "IVF"],
    "event": ["getting married", "having a baby", "moving house"],
    "month": ["January", "March", "June", "September", "December"],
    "pay": ["overtime", "bonus", "commission", "shift allowance", "expenses"],
    "leave": ["parental leave", "sick leave", "annual leave", "bereavement leave",
              "a sabbatical"],
    "n": ["2", "3", "5", "10"],
    "system": ["Workday", "the VPN", "my laptop", "SAP", "Outlook", "the expenses portal"],
    "policy": ["remote work", "travel", "expenses", "overtime", "hybrid working",
               "parental leave"],
}
_TEMPLATES = {
    "benefits": ["How do I add my {family} to my {plan} plan?",
                 "When does {plan} enrolment close this year?",
                 "Is {thing} covered under our benefits?",
                 "Can I change my {plan} coverage after {event}?"],
    "payroll": ["Why is my {pay} missing from my {month} payslip?",
                "When will {pay} be paid this month?",
                "My net pay in {month} looks wrong, who can check my tax code?",
                "How do I update the bank account my salary goes to?"],
    "leave": ["How many days of {leave} do I have left?",
              "How do I request {n} days of {leave}?",
              "Can I carry over unused {leave} into {month}?",
              "Who approves {leave} while my manager is away?"],
    "performance_review": ["When is the deadline for my {month} performance review?",
                           "How do I add {n} goals for my review?",
                           "Can I see my manager's feedback from {month}?"],
    "onboarding": ["I start in {month}, what do I need to bring on day one?",
                   "How do I get access to {system} as a new starter?",
                   "Who is my onboarding buddy and when is induction?"],
    "it_access": ["I am locked out of {system}, how do I reset my password?",
                  "How do I request access to {system}?",
                  "{system} keeps asking for MFA every {n} minutes, help!"],
    "policy": ["What is the policy on {policy}?",
               "Has the {policy} policy changed since {month}?",
               "Where can I read the latest {policy} guidelines?"],
    "other": ["Hi", "Can I talk to a human please?", "Where is the canteen menu for {month}?",
              "Thanks, that's all"],
}
_FIRST = ["anna", "ben", "chloe", "david", "elif", "farah", "goran", "hiro", "ines", "jamal"]
_LAST = ["smith", "mueller", "dubois", "jansen", "tanaka", "kumar", "silva", "berg"]
_MAIL = ["gmail.com", "outlook.com", "yahoo.co.uk", "proton.me", "web.de"]
_DIAL = {"GB": "44", "US": "1", "CA": "1", "DE": "49", "FR": "33", "NL": "31", "AT": "43",
         "CH": "41", "SE": "46", "NO": "47", "DK": "45", "FI": "358", "IE": "353", "SG": "65",
         "AU": "61", "JP": "81", "IN": "91", "BR": "55", "MX": "52", "AR": "54"}
# BBAN shapes ('a' letter, 'n' digit); other jurisdictions bank with a German IBAN.
_BBAN = {"GB": "a" * 4 + "n" * 14, "IE": "a" * 4 + "n" * 14, "NL": "a" * 4 + "n" * 10,
         "DE": "n" * 18, "FR": "n" * 23, "AT": "n" * 16, "CH": "n" * 17, "SE": "n" * 20,
         "NO": "n" * 11, "DK": "n" * 14, "FI": "n" * 14}


class _Config(BaseModel):
    """Strict, frozen config whose every rejection is a ``ConfigError`` naming the field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or type(self).__name__
            raise ConfigError(field, first["msg"]) from exc


class DriftInjection(_Config):
    """One drift applied from its start (event time or event count) onward."""

    column: str
    kind: Literal["mean_shift", "variance_change", "category_mix", "embedding_shift"]
    magnitude: float
    start_ms: int | None = None
    start_count: int | None = Field(None, ge=0)
    tenant_id: str | None = None
    target: str | None = None  # category_mix: who receives the mass (default: rarest)

    @model_validator(mode="after")
    def _fits(self) -> DriftInjection:
        kinds = DRIFT_KINDS.get(self.column)
        if kinds is None:
            raise ConfigError("column", f"{self.column!r} cannot drift; one of {list(DRIFT_KINDS)}")
        if self.kind not in kinds:
            raise ConfigError("kind", f"{self.kind} does not apply to {self.column}; use {kinds}")
        if (self.start_ms is None) == (self.start_count is None):
            raise ConfigError("start_ms", "set exactly one of start_ms and start_count")
        if not math.isfinite(self.magnitude):
            raise ConfigError("magnitude", "must be finite")
        if self.kind == "category_mix" and not 0 <= self.magnitude <= 1:
            raise ConfigError("magnitude", "category_mix moves a share of mass: 0..1")
        if self.kind == "variance_change" and self.magnitude <= 0:
            raise ConfigError("magnitude", "variance_change multiplies the spread: > 0")
        if self.target is not None:
            cats = INTENTS if self.column == "intent" else CHANNELS
            if self.kind != "category_mix" or self.target not in cats:
                raise ConfigError("target", f"only category_mix takes a target, one of {cats}")
        return self


class SimulatorConfig(_Config):
    seed: int = Field(7, ge=0)
    tenants: int = Field(4, ge=1, le=256)
    employees_per_tenant: int = Field(750, ge=1, le=1_000_000)
    start_ms: int = Field(ge=0)
    events_per_hour: float = Field(gt=0, allow_inf_nan=False)  # mean load over a week
    embedding_dim: int = Field(16, ge=1, le=4096)
    pii_rate: float = Field(0.02, ge=0, le=1)
    out_of_order_ms: int = Field(0, ge=0)
    drift: DriftInjection | None = None

    @field_validator("drift", mode="before")
    @classmethod
    def _nested(cls, value: Any) -> Any:
        """Build a nested injection here so its errors are named ``drift.<field>``."""
        if not isinstance(value, dict):
            return value
        try:
            return DriftInjection(**value)
        except ConfigError as exc:
            raise ConfigError(f"drift.{exc.field}", str(exc).split(": ", 1)[-1]) from exc

    @model_validator(mode="after")
    def _known_tenant(self) -> SimulatorConfig:
        if self.tenants * self.employees_per_tenant > 5_000_000:
            raise ConfigError("employees_per_tenant", "at most 5,000,000 employees in all")
        if self.drift and self.drift.tenant_id not in (None, *tenant_ids(self.tenants)):
            raise ConfigError("drift.tenant_id", f"no tenant {self.drift.tenant_id!r} simulated")
        return self


def tenant_ids(n: int) -> list[str]:
    """The simulated tenant names: a fixed catalogue, suffixed when it runs out."""
    return [_TENANTS[i % len(_TENANTS)][0] + (f"-{i // len(_TENANTS) + 1}"
                                              if i >= len(_TENANTS) else "") for i in range(n)]


@dataclass
class _Run:
    """Mutable state of one replay: per-column streams, load clock, sessions."""

    rng: dict[str, np.random.Generator]
    lam: float
    index: int
    last_t: int
    last_seen: np.ndarray
    session_no: np.ndarray


_STREAMS = ("time", "tenant", "employee", "channel", "intent", "latency", "confidence",
            "escalated", "resolved", "satisfaction", "embedding", "text", "pii", "delay")


class TrafficSimulator:
    """Seeded generator of ``ChatbotInteraction`` dicts; each ``events`` call replays."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = c = config
        self.tenant_ids = tenant_ids(c.tenants)
        digest = hashlib.blake2b(f"driftline-sim:{c.seed}".encode(), digest_size=4)
        self._prefix = digest.hexdigest()
        static = np.random.default_rng([c.seed, 0x5EED])
        specs = [_TENANTS[i % len(_TENANTS)] for i in range(c.tenants)]
        K, E = c.tenants, c.employees_per_tenant
        # Weekly load per UTC hour-of-week bin (bin = hours since epoch mod 168).
        weight = static.uniform(0.6, 1.4, K)
        hours = np.arange(168)
        shape = np.empty((168, K))
        for k, (_, tz, _, _) in enumerate(specs):
            local = (hours + tz) % 168
            weekday = (local // 24 + 3) % 7  # the epoch was a Thursday
            shape[:, k] = weight[k] * _HOURLY[local % 24] * np.where(weekday >= 5, _WEEKEND, 1)
        total = shape.sum(1)
        self._rate = c.events_per_hour * total / total.mean()
        self._cum = np.concatenate([[0.0], np.cumsum(self._rate)])
        self._tenant_cum = np.cumsum(shape / total[:, None], axis=1)
        # Employees: heavy-tailed activity, fixed locale, ids unique across tenants.
        act = static.lognormal(0.0, 1.5, (K, E))
        cum = np.cumsum(act, 1) / act.sum(1, keepdims=True)
        self._emp_cum = (np.arange(K)[:, None] + cum).ravel()  # tenant k owns (k, k + 1]
        space = max(1_000_000, 10 * K * E)
        nums = static.choice(space, K * E, replace=False)
        width = len(str(space - 1))
        self._emp_ids = np.array([f"emp-{x:0{width}d}" for x in nums], dtype=object)
        locales: list[str] = []
        for _, _, _, mix in specs:
            names, w = zip(*mix, strict=True)
            locales += [names[i] for i in static.choice(len(names), E, p=w)]
        self._locale = np.array(locales, dtype=object)
        self._jur = np.array([loc.split("-")[1] for loc in locales], dtype=object)
        self._tenant_obj = np.array(self.tenant_ids, dtype=object)
        self._version = np.array([s[2] for s in specs], dtype=object)
        self._chan_mix = static.dirichlet(_CHANNEL_MIX * 40, K)
        dim = c.embedding_dim
        self._centres = static.normal(0, 1.5 / math.sqrt(dim), (len(INTENTS), dim))
        direction = static.normal(size=dim)
        self._direction = direction / np.linalg.norm(direction)
        self._texts, self._text_off, self._text_len = _text_pools()
        self._chan_obj = np.array(CHANNELS, dtype=object)
        self._intent_obj = np.array(INTENTS, dtype=object)
        self._drift = d = c.drift
        self._drift_tenant = -1 if d is None or d.tenant_id is None else self.tenant_ids.index(
            d.tenant_id)
        self._target, self._mix_share = -1, 0.0
        if d is not None and d.kind == "category_mix":
            cats = INTENTS if d.column == "intent" else CHANNELS
            mixes = self._chan_mix if self._drift_tenant < 0 else self._chan_mix[[
                self._drift_tenant]]
            base = _INTENT_MIX if d.column == "intent" else mixes.mean(0)
            self._target = cats.index(d.target) if d.target else int(np.argmin(base))
            self._mix_share = d.magnitude
        self.reference_moments: dict[str, tuple[float, float]] = {}
        if d is not None and d.column in ("response_latency_ms", "confidence", "satisfaction"):
            self.reference_moments[d.column] = self._reference(d.column)

    def events(self, n: int | None = None, until_ms: int | None = None) -> Iterator[dict]:
        """Yield up to ``n`` events with event_time < ``until_ms`` in arrival order."""
        if n is not None and n < 0:
            raise ConfigError("n", "must be >= 0")
        if n == 0:
            return
        run = self._fresh(self.config.seed)
        ooo = self.config.out_of_order_ms
        pending: list[dict] = []
        pending_at = np.empty(0, np.int64)
        left = n
        while True:
            cols = self._chunk(run, self._drift)
            t = cols["event_time"]
            delay = (ooo * run.rng["delay"].random(len(t)) ** 2).astype(np.int64)
            done = False
            if until_ms is not None and t[-1] >= until_ms:
                done = True
                cut = int(np.searchsorted(t, until_ms))
                cols = {k: v[:cut] for k, v in cols.items()}
                t, delay = t[:cut], delay[:cut]
            rows = self._rows(cols)
            if ooo:
                # Release what no later event can precede: arrival <= newest event time.
                at = np.concatenate([pending_at, t + delay])
                order = np.argsort(at, kind="stable")
                both = pending + rows
                ready = int(np.searchsorted(at[order], t[-1] if len(t) and not done else
                                            np.iinfo(np.int64).max, side="right"))
                rows = [both[i] for i in order[:ready]]
                pending = [both[i] for i in order[ready:]]
                pending_at = at[order[ready:]]
            if left is not None:
                rows = rows[:left]
                left -= len(rows)
            yield from rows
            if done or left == 0:
                return

    def _fresh(self, seed: int | list[int]) -> _Run:
        streams = np.random.SeedSequence(seed).spawn(len(_STREAMS))
        size = self.config.tenants * self.config.employees_per_tenant
        start = self.config.start_ms
        h = start // _HOUR_MS
        lam = self._cum[h % 168] + (start % _HOUR_MS) / _HOUR_MS * self._rate[h % 168]
        return _Run({name: np.random.default_rng(s) for name, s in zip(_STREAMS, streams,
                                                                        strict=True)},
                    lam, 0, start, np.full(size, np.iinfo(np.int64).min // 2), np.zeros(size,
                                                                                       np.int64))

    def _reference(self, column: str) -> tuple[float, float]:
        """Undrifted mean and std of a column, from an independent seeded pilot run."""
        run = self._fresh([self.config.seed, 0xEEF])
        parts = [self._chunk(run, None) for _ in range(math.ceil(_REFERENCE_EVENTS / _CHUNK))]
        x = np.concatenate([p[column] for p in parts]).astype(float)
        keep = np.ones(len(x), bool) if column != "satisfaction" else x > 0
        if self._drift_tenant >= 0:
            keep &= np.concatenate([p["tenant"] for p in parts]) == self._drift_tenant
        return float(x[keep].mean()), float(x[keep].std())

    def _chunk(self, run: _Run, drift: DriftInjection | None) -> dict[str, np.ndarray]:
        """Draw one chunk of columns in generation (event-time) order."""
        c, rng, m = self.config, run.rng, _CHUNK
        # Event times: invert the cumulative weekly intensity at unit-rate arrivals.
        lam = run.lam + np.cumsum(rng["time"].exponential(size=m))
        run.lam = float(lam[-1])
        start_h = c.start_ms // _HOUR_MS
        origin, week = start_h - start_h % 168, self._cum[-1]
        wk = np.floor(lam / week)
        rem = lam - wk * week
        b = np.clip(np.searchsorted(self._cum, rem, side="right") - 1, 0, 167)
        frac = np.clip((rem - self._cum[b]) / self._rate[b], 0, 1)
        t = origin * _HOUR_MS + ((wk * 168 + b + frac) * _HOUR_MS).astype(np.int64)
        t = np.maximum.accumulate(np.maximum(t, run.last_t))
        run.last_t = int(t[-1])
        idx = np.arange(run.index, run.index + m)
        run.index += m
        k = _categorical_cum(self._tenant_cum[b], rng["tenant"].random(m))
        E = c.employees_per_tenant
        g = np.searchsorted(self._emp_cum, k + rng["employee"].random(m))
        g = np.clip(g, k * E, k * E + E - 1)
        active = np.zeros(m, bool)
        mixed = None  # the categorical column whose mix drifts, if any
        if drift is not None:
            active = t >= drift.start_ms if drift.start_ms is not None else idx >= (
                drift.start_count or 0)
            if self._drift_tenant >= 0:
                active &= k == self._drift_tenant
            mixed = drift.column if drift.kind == "category_mix" else None
        p = self._chan_mix[k]
        if mixed == "channel":
            p = _move_mass(p, active, self._mix_share, self._target)
        ch = _categorical(p, rng["channel"].random(m))
        p = self._intent_probs(t)
        if mixed == "intent":
            p = _move_mass(p, active, self._mix_share, self._target)
        intent = _categorical(p, rng["intent"].random(m))
        z = rng["latency"].standard_normal(m)
        latency = np.exp(_LAT_MU[intent] + _LAT_CH[ch] + _LAT_SIGMA * z)
        mean = _CONF_MEAN[intent]
        conf = rng["confidence"].beta(mean * _CONF_CONC, (1 - mean) * _CONF_CONC)
        esc = rng["escalated"].random(m) < _sigmoid(-2.0 + _ESC_INTENT[intent] + _ESC_CH[ch]
                                                    - 5.0 * (conf - 0.72))
        resolved = ~esc & (rng["resolved"].random(m) < _sigmoid(1.2 + 6.0 * (conf - 0.72)))
        group = np.where(resolved, 0, np.where(esc, 1, 2))
        u_sat = rng["satisfaction"].random((m, 2))
        sat = (u_sat[:, 0][:, None] > _SAT_CUM[group]).sum(1) + 1
        sat = np.where(u_sat[:, 1] < _SAT_NULL, 0, np.minimum(sat, 5))  # 0 means null
        emb = self._centres[intent] + EMBEDDING_NOISE * rng["embedding"].standard_normal(
            (m, c.embedding_dim))
        cols = {"event_time": t, "index": idx, "tenant": k, "employee": g, "channel": ch,
                "intent": intent, "response_latency_ms": latency, "confidence": conf,
                "escalated": esc, "resolved": resolved, "satisfaction": sat, "embedding": emb}
        if drift is not None and mixed is None:
            self._numeric_drift(cols, drift, active)
        u_text = rng["text"].random(m)
        cols["text"] = self._text_off[intent] + (u_text * self._text_len[intent]).astype(np.int64)
        cols["pii"] = rng["pii"].random(m) < c.pii_rate
        cols["session"] = self._sessions(run, g, t)
        return cols

    def _intent_probs(self, t: np.ndarray) -> np.ndarray:
        """Base intent mix bent by the calendar: paydays, new starters, review seasons."""
        day = (t // 86_400_000).astype("datetime64[D]")
        month = day.astype("datetime64[M]")
        dom = (day - month.astype("datetime64[D]")).astype(np.int64) + 1
        left = ((month + 1).astype("datetime64[D]") - day).astype(np.int64)
        mon = month.astype(np.int64) % 12 + 1
        p = np.tile(_INTENT_MIX, (len(t), 1))
        p[:, 0] *= np.where(mon == 11, 2.0, 1.0)
        p[:, 1] *= np.where((left <= 3) | (dom <= 2), 3.0, 1.0)
        p[:, 2] *= np.where(np.isin(mon, (7, 8, 12)), 1.5, 1.0)
        p[:, 3] *= np.where(np.isin(mon, (6, 12)), 2.5, 1.0)
        p[:, 4] *= np.where(dom <= 5, 2.0, 1.0)
        return p / p.sum(1, keepdims=True)

    def _numeric_drift(self, cols: dict, drift: DriftInjection, active: np.ndarray) -> None:
        """Post-hoc perturbation of one column, kept inside the column's valid range."""
        if drift.kind == "embedding_shift":
            shift = drift.magnitude * EMBEDDING_NOISE * self._direction
            cols["embedding"][active] += shift
            return
        x = cols[drift.column]
        mean, std = self.reference_moments[drift.column]
        sel = active & (x > 0) if drift.column == "satisfaction" else active
        v = x[sel].astype(float)
        v = v + drift.magnitude * std if drift.kind == "mean_shift" else mean + drift.magnitude * (
            v - mean)
        if drift.column == "confidence":
            v = np.clip(v, 0.0, 1.0)
        elif drift.column == "satisfaction":
            v = np.clip(np.rint(v), 1, 5)
        else:
            v = np.maximum(v, 0.0)
        x[sel] = v

    def _sessions(self, run: _Run, g: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Session number per event: a new one after SESSION_GAP_MS of employee silence."""
        order = np.argsort(g, kind="stable")
        gs, ts = g[order], t[order]
        first = np.ones(len(gs), bool)
        first[1:] = gs[1:] != gs[:-1]
        prev = np.empty_like(ts)
        prev[1:] = ts[:-1]
        prev[first] = run.last_seen[gs[first]]
        new = (ts - prev) > SESSION_GAP_MS
        csum = np.cumsum(new)
        base = np.maximum.accumulate(np.where(first, csum - new, 0))
        sess = run.session_no[gs] + csum - base
        last = np.ones(len(gs), bool)
        last[:-1] = first[1:]
        run.last_seen[gs[last]] = ts[last]
        run.session_no[gs[last]] = sess[last]
        out = np.empty_like(sess)
        out[order] = sess
        return out

    def _rows(self, cols: dict[str, np.ndarray]) -> list[dict]:
        """Columns to dicts: object-array takes and ``tolist`` keep Python work per row small."""
        k, g, p = cols["tenant"], cols["employee"], self._prefix
        texts = self._texts[cols["text"]]
        pii = np.flatnonzero(cols["pii"])
        if len(pii):
            rng = np.random.default_rng([self.config.seed, int(cols["index"][0]), 0x911])
            for i in pii:
                texts[i] = texts[i] + _pii_sentence(rng, self._jur[g[i]])
        sat = cols["satisfaction"].astype(object)
        sat[sat == 0] = None
        return [
            {"interaction_id": f"ix-{p}-{i:010d}", "tenant_id": tn, "employee_id": e,
             "session_id": f"ses-{p}-{gi:06d}-{s:04d}", "event_time": ts, "channel": ch,
             "locale": lo, "jurisdiction": ju, "intent": it, "query_text": qt,
             "response_latency_ms": la, "model_version": mv, "confidence": cf,
             "resolved": rs, "escalated": es, "satisfaction": sa, "embedding": em}
            for i, tn, e, gi, s, ts, ch, lo, ju, it, qt, la, mv, cf, rs, es, sa, em in zip(
                cols["index"].tolist(), self._tenant_obj[k].tolist(),
                self._emp_ids[g].tolist(), g.tolist(), cols["session"].tolist(),
                cols["event_time"].tolist(), self._chan_obj[cols["channel"]].tolist(),
                self._locale[g].tolist(), self._jur[g].tolist(),
                self._intent_obj[cols["intent"]].tolist(), texts.tolist(),
                np.round(cols["response_latency_ms"], 1).tolist(), self._version[k].tolist(),
                np.round(cols["confidence"], 4).tolist(), cols["resolved"].tolist(),
                cols["escalated"].tolist(), sat.tolist(),
                np.round(cols["embedding"], 4).tolist(), strict=True)
        ]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _categorical(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw per row: one uniform each, so a changed mix reuses the stream."""
    return _categorical_cum(np.cumsum(p, 1), u)


def _categorical_cum(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.minimum((u[:, None] > cum).sum(1), cum.shape[1] - 1)


def _move_mass(p: np.ndarray, active: np.ndarray, share: float, target: int) -> np.ndarray:
    p = p.copy()
    p[active] *= 1 - share
    p[active, target] += share
    return p


def _text_pools() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every intent's templates expanded over the slot vocabularies (capped per template)."""
    texts: list[str] = []
    off, size = [], []
    for intent in INTENTS:
        pool = []
        for tmpl in _TEMPLATES[intent]:
            names = [f for _, f, _, _ in string.Formatter().parse(tmpl) if f]
            combos = itertools.product(*(_SLOTS[f] for f in names))
            pool += [tmpl.format(**dict(zip(names, c, strict=True)))
                     for c in itertools.islice(combos, 40)]
        off.append(len(texts))
        size.append(len(pool))
        texts += pool
    return np.array(texts, dtype=object), np.array(off), np.array(size)


def _digits(rng: np.random.Generator, n: int) -> str:
    return "".join(map(str, rng.integers(0, 10, n)))


def _pii_sentence(rng: np.random.Generator, jurisdiction: str) -> str:
    """A synthetic e-mail, phone number, Luhn-valid card or checksummed IBAN."""
    kind = int(rng.integers(4))
    if kind == 0:
        first, last = _FIRST[rng.integers(len(_FIRST))], _LAST[rng.integers(len(_LAST))]
        mail = f"{first}.{last}{rng.integers(100)}@{_MAIL[rng.integers(len(_MAIL))]}"
        return f" You can reach me at {mail}."
    if kind == 1:
        if jurisdiction == "GB":
            phone = f"+44 7700 900{_digits(rng, 3)}"
        elif jurisdiction in ("US", "CA"):
            phone = f"+1 202-555-01{_digits(rng, 2)}"
        else:
            d = _digits(rng, 9)
            phone = f"+{_DIAL.get(jurisdiction, '49')} {d[:3]} {d[3:6]} {d[6:]}"
        return f" Please call me back on {phone}."
    if kind == 2:
        body = "4" + _digits(rng, 14)
        card = body + str(luhn_check_digit(body))
        return f" My corporate card {_group4(card)} was declined."
    country = jurisdiction if jurisdiction in _BBAN else "DE"
    bban = "".join(string.ascii_uppercase[rng.integers(26)] if ch == "a" else _digits(rng, 1)
                   for ch in _BBAN[country])
    iban = country + iban_check_digits(country, bban) + bban
    return f" Please send the refund to IBAN {_group4(iban)}."


def _group4(s: str) -> str:
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4))


def luhn_check_digit(body: str) -> int:
    """The digit that makes ``body + digit`` pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return (10 - total % 10) % 10


def iban_check_digits(country: str, bban: str) -> str:
    """ISO 13616 mod-97 check digits."""
    digits = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{98 - int(digits) % 97:02d}"
