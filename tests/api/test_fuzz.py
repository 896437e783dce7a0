"""Fuzz of the whole API, generated from its own OpenAPI document (schemathesis, in-process).

Every operation gets schema-valid and schema-violating requests, sent as an administrator
(and, for a slice, as the data-protection officer) with the purpose headers set, so that
the requests reach the handlers. No response may be a server error (5xx), and those that
the document describes must match it.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import ASGIClient
from schemathesis.specs.openapi.checks import response_schema_conformance

from conftest import PASSWORD, PURPOSE, World

MIN_REQUESTS = 1000
CHECKS = [not_a_server_error, response_schema_conformance]
SETTINGS = hypothesis.settings(
    deadline=None, derandomize=True, database=None, print_blob=True,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.data_too_large, HealthCheck.large_base_example],
)
_INT = TypeAdapter(int)
PROBE: Counter = Counter()
PROBE_MSG: dict = {}


@dataclass
class Fuzz:
    world: World
    schema: Any
    http: ASGIClient
    protected: frozenset[int]  # user ids the fuzz must not change: the sessions it runs with
    logout_user: str
    sent: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)

    def run(self, who: str, mode: GenerationMode, examples: int,
            keep: Callable[[str, str], bool] = lambda method, path: True) -> None:
        headers = {**self.world.headers(who), "Vigila-Purpose": PURPOSE["text"],
                   "Vigila-Reference": PURPOSE["reference"]}
        for result in self.schema.get_all_operations():
            operation = result.ok()
            if not keep(operation.method.upper(), operation.path):
                continue
            fixed = {name.lower() for name in headers}
            if mode is GenerationMode.NEGATIVE and not operation.body and all(
                    p.name.lower() in fixed for p in operation.iter_parameters()):
                continue  # nothing in the request left to get wrong
            strategy = operation.as_strategy(generation_mode=mode, headers=headers)

            @hypothesis.settings(SETTINGS, max_examples=examples)
            @hypothesis.given(case=strategy.filter(self._harmless))
            def fuzz(case: Case) -> None:
                self.send(case, who)

            print("RUN", who, mode, operation.label, flush=True)
            fuzz()

    def _harmless(self, case: Case) -> bool:
        """False for a change to an account the fuzz runs as (password, roles, active...)."""
        if case.method.upper() != "PATCH" or "user_id" not in case.path_parameters:
            return True
        try:
            user_id = _INT.validate_python(str(case.path_parameters["user_id"]))
        except ValidationError:
            return True  # the server will not parse it either: a 422
        return user_id not in self.protected

    def send(self, case: Case, who: str) -> None:
        extra: dict[str, str] = {}
        if case.operation.path == "/api/auth/logout":
            # Logging out ends the session that sends it: use a throw-away one.
            extra["Authorization"] = f"Bearer {self.world.login(self.logout_user)}"
        response = case.call(session=self.http, headers=extra)
        self.sent[f"{who} {case.method} {case.path}"] += 1
        self.statuses[response.status_code] += 1
        from schemathesis.core.failures import FailureGroup
        from schemathesis.specs.openapi import checks as oc
        try:
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance, oc.status_code_conformance, oc.content_type_conformance, oc.response_headers_conformance, oc.negative_data_rejection, oc.positive_data_acceptance], headers=extra)
        except FailureGroup as exc:
            for f in exc.exceptions:
                PROBE[(case.operation.label, response.status_code, type(f).__name__, f.title)] += 1
                PROBE_MSG.setdefault((case.operation.label, response.status_code, type(f).__name__), (str(f.message)[:300], response.text[:300], str(case.body)[:200], case.query, case.path_parameters))
        if response.status_code == 401:
            assert case.operation.path == "/api/auth/login", (
                f"{case.method} {case.formatted_path}: the {who} session was lost: {response.text}")


def test_fuzz_whole_api(world: World) -> None:
    started = time.perf_counter()
    doc = world.client.get("/api/openapi.json").json()
    schema = schemathesis.openapi.from_dict(doc, config=schemathesis.Config())
    schema.app = world.client.app
    logout_user = f"fuzz-{uuid.uuid4().hex[:12]}"
    r = world.client.post("/api/users", headers=world.headers("admin"), json={
        "username": logout_user, "full_name": "Fuzz logout", "agency_id": "pl-test",
        "roles": ["operator"], "password": PASSWORD})
    assert r.status_code == 201, r.text
    protected = frozenset({world.user_ids["admin"], world.user_ids["dpo"], r.json()["id"]})
    fuzz = Fuzz(world, schema, ASGIClient(world.client.app), protected, logout_user)

    fuzz.run("admin", GenerationMode.POSITIVE, 30)
    fuzz.run("admin", GenerationMode.NEGATIVE, 15)
    fuzz.run("dpo", GenerationMode.POSITIVE, 10, lambda method, path: method == "GET")

    total = sum(fuzz.sent.values())
    elapsed = time.perf_counter() - started
    print(f"\nfuzz [{world.settings.database_url.split(':')[0]}]: {total} requests in "
          f"{elapsed:.1f} s; statuses {sorted(fuzz.statuses.items())}")
    for key, n in sorted(fuzz.sent.items()):
        print(f"  {n:4d} {key}")
    for k, n in sorted(PROBE.items()): print('PROBE', n, k)
    for k, v in sorted(PROBE_MSG.items()): print('MSG', k, v)
    assert total >= MIN_REQUESTS
    for who in ("admin", "dpo"):
        me = world.client.get("/api/auth/me", headers=world.headers(who))
        assert me.status_code == 200, me.text
    _ = st
