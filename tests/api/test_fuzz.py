"""Fuzz of the whole API, generated from its own OpenAPI document (schemathesis, in-process).

Every operation in /api/openapi.json gets schema-valid and schema-violating requests, sent
to the ASGI app as an administrator with the purpose headers set (so that the requests get
past authentication and the purpose rule into the handlers), and a slice as the
data-protection officer, who alone reads the audit trail. No answer may be a server error,
and the answers the document describes must match it.

Checks, and why not the others schemathesis has:
- not_a_server_error, and an unhandled exception fails the test too (the transport re-raises);
- status_code_conformance, content_type_conformance, response_schema_conformance: every
  answer, errors included (application/problem+json, declared as 4XX/5XX), must be one the
  document describes, of its media type and schema;
- negative_data_rejection: a request that breaks the schema gets a 4xx.
- Not positive_data_acceptance: rules beyond the schema (opaque cursors, the password
  policy, references to existing agencies and zones, valid polygons) answer 422 to some
  schema-valid requests, by design.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from schemathesis import APIOperation, BaseSchema, Case, GenerationMode
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.core.result import Err
from schemathesis.python.asgi import ASGIClient
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import PASSWORD, PURPOSE, World

MIN_REQUESTS = 1000  # per database backend
POSITIVE_EXAMPLES = 40  # per operation, as the administrator
NEGATIVE_EXAMPLES = 20
DPO_EXAMPLES = 15  # per GET operation
CHECKS: list[CheckFunction] = [not_a_server_error, status_code_conformance,
                               content_type_conformance, response_schema_conformance,
                               negative_data_rejection]
SETTINGS = hypothesis.settings(
    deadline=None, derandomize=True, database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.data_too_large, HealthCheck.large_base_example],
)
# The seeded city (conftest.seed): ids that exist, so that reads and changes reach a row.
KNOWN_IDS: dict[str, list[str]] = {
    "agency_id": ["pl-test"],
    "zone_id": ["zona-a", "zona-b"],
    "device_id": ["CAM-A1", "CAM-X", "LPR-B1", "NVR-B"],
}
FUZZED_ACCOUNTS = ("operator", "operator_a", "admin_a", "investigator", "supervisor", "judge")
# A cursor is opaque base64 of {"k": key}: random strings never get past the decoding,
# so half the listings get a well-formed cursor around a generated key.
CURSOR_KEYS = st.one_of(st.integers(), st.text(max_size=12), st.floats(), st.booleans(),
                        st.none(), st.lists(st.integers(), max_size=2))
USER_ID = TypeAdapter(int)  # parses a path parameter as the server does ("+7", " 07 " -> 7)


def _cursor(key: object) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": key}).encode()).decode().rstrip("=")


def _with_cursor(pair: tuple[Case, str]) -> Case:
    case, cursor = pair
    case.query = {**(case.query or {}), "cursor": cursor}
    return case


def _operations(schema: BaseSchema) -> Iterator[APIOperation]:
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        yield result.ok()


@dataclass
class Fuzz:
    world: World
    schema: BaseSchema
    http: ASGIClient
    known_ids: dict[str, list[Any]]
    # The fuzz runs as these users, so it must not change them: a new password, another
    # role or active=false would end or weaken the sessions every later request uses.
    # PATCH /api/users/{id} on their ids is never sent (see _harmless); everything else,
    # other users' accounts included, is fair game.
    protected: frozenset[int]
    # POST /api/auth/logout ends the session that sends it: it gets a fresh session of its
    # own each time, of a user whose name the login fuzz cannot guess (so cannot lock out).
    logout_user: str
    sent: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)

    def run(self, who: str, mode: GenerationMode, examples: int, *, purpose: bool = True,
            keep: Callable[[APIOperation], bool] = lambda _: True) -> None:
        headers = self.world.headers(who)
        if purpose:
            headers |= {"Vigila-Purpose": PURPOSE["text"],
                        "Vigila-Reference": PURPOSE["reference"]}
        fixed = {name.lower() for name in headers}
        for operation in _operations(self.schema):
            if not keep(operation):
                continue
            if mode is GenerationMode.NEGATIVE and not operation.body and all(
                    p.name.lower() in fixed for p in operation.iter_parameters()):
                continue  # nothing left in the request to get wrong
            strategy = self._strategy(operation, mode, headers)

            @hypothesis.settings(SETTINGS, max_examples=examples)
            @hypothesis.given(case=strategy)
            def fuzz(case: Case) -> None:
                self.send(case, who)

            fuzz()

    def _strategy(self, operation: APIOperation, mode: GenerationMode,
                  headers: dict[str, str]) -> st.SearchStrategy[Case]:
        strategy = operation.as_strategy(generation_mode=mode, headers=headers)
        if mode is GenerationMode.POSITIVE:
            names = [p.name for p in operation.path_parameters]
            if len(names) == 1 and names[0] in self.known_ids:
                known = [operation.as_strategy(headers=headers, path_parameters={names[0]: value})
                         for value in self.known_ids[names[0]]]
                strategy = st.one_of(strategy, st.one_of(known))
            if "cursor" in {p.name for p in operation.query}:
                cursors = st.tuples(strategy, CURSOR_KEYS.map(_cursor)).map(_with_cursor)
                strategy = st.one_of(strategy, cursors)
        return strategy.filter(self._harmless)

    def _harmless(self, case: Case) -> bool:
        if case.method.upper() != "PATCH" or "user_id" not in case.path_parameters:
            return True
        try:
            user_id = USER_ID.validate_python(str(case.path_parameters["user_id"]))
        except ValidationError:
            return True  # the server cannot parse it either: a 422
        return user_id not in self.protected

    def send(self, case: Case, who: str) -> None:
        extra: dict[str, str] = {}
        if case.operation.path == "/api/auth/logout":
            extra["Authorization"] = f"Bearer {self.world.login(self.logout_user)}"
        response = case.call(session=self.http, headers=extra)
        self.sent[f"{who:5} {case.method} {case.path}"] += 1
        self.statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS, headers=extra)
        # The fuzz must keep its sessions, or it would be fuzzing the 401 answer alone. The
        # playback grant routes take no session: without a grant they rightly answer 401.
        granted = case.operation.path in GRANT_ONLY and not (case.query or {}).get("grant")
        assert response.status_code != 401 or case.operation.path == "/api/auth/login" \
            or granted, f"{case.method} {case.formatted_path} as {who}: {response.text}"


GRANT_ONLY = ("/api/cameras/{camera_id}/granted.m3u8",
              "/api/cameras/{camera_id}/segments/{segment_id}.ts")


def test_fuzz_whole_api(world: World) -> None:
    started = time.perf_counter()
    admin = world.headers("admin")
    logout_user = f"fuzz-{uuid.uuid4().hex[:12]}"
    r = world.client.post("/api/users", headers=admin, json={
        "username": logout_user, "full_name": "Fuzz logout", "agency_id": "pl-test",
        "roles": ["operator"], "password": PASSWORD})
    assert r.status_code == 201, r.text
    protected = frozenset({world.user_ids["admin"], world.user_ids["dpo"], r.json()["id"]})

    doc = world.client.get("/api/openapi.json").json()
    schema = schemathesis.openapi.from_dict(doc, config=schemathesis.Config())
    schema.app = world.client.app  # in-process; also lets schemathesis mine the app's constants
    known = {**KNOWN_IDS, "user_id": [world.user_ids[name] for name in FUZZED_ACCOUNTS]}
    fuzz = Fuzz(world, schema, ASGIClient(world.client.app), known, protected, logout_user)

    def reads(operation: APIOperation) -> bool:
        return operation.method.upper() == "GET"

    def asks_purpose(operation: APIOperation) -> bool:
        return any(p.name.lower() == "vigila-purpose" for p in operation.headers)

    fuzz.run("admin", GenerationMode.POSITIVE, POSITIVE_EXAMPLES)
    fuzz.run("admin", GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)
    fuzz.run("dpo", GenerationMode.POSITIVE, DPO_EXAMPLES, keep=reads)
    # The purpose headers themselves, generated rather than set (percent-decoding, limits).
    fuzz.run("dpo", GenerationMode.POSITIVE, DPO_EXAMPLES, purpose=False, keep=asks_purpose)

    total = sum(fuzz.sent.values())
    backend = world.db.dialect
    print(f"\nfuzz on {backend}: {total} requests in {time.perf_counter() - started:.1f} s; "
          f"statuses {dict(sorted(fuzz.statuses.items()))}")
    for key, n in sorted(fuzz.sent.items()):
        print(f"  {n:4d} {key}")
    assert total >= MIN_REQUESTS, f"only {total} requests on {backend}"
    assert fuzz.statuses[200] + fuzz.statuses[201] >= total // 10, "few requests succeeded"
    for who in ("admin", "dpo"):
        me = world.client.get("/api/auth/me", headers=world.headers(who))
        assert me.status_code == 200, me.text
