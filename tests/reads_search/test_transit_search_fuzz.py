"""Fuzz of the search routes as an investigator (the whole-API fuzz runs as roles that may not
search, so it stops at 403): no server error, and every answer as the document says."""

from __future__ import annotations

from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.python.asgi import ASGIClient
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from search_city import populate

from conftest import PURPOSE, World

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection]
SETTINGS = hypothesis.settings(
    deadline=None, derandomize=True, database=None, max_examples=40,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck))
PATHS = ("/api/transits", "/api/transits/{transit_id}", "/api/plates/{plate}/route",
         "/api/plates/{plate}/convoy")
KNOWN: dict[str, list[Any]] = {"plate": ["AB123CD", "ab 123 cd", "CC111CC"]}


def test_fuzz_search_routes(world: World) -> None:
    rows = populate(world.db)
    KNOWN["transit_id"] = [str(rows["AB123CD"][0]["id"])]
    doc = world.client.get("/api/openapi.json").json()
    doc["paths"] = {p: v for p, v in doc["paths"].items() if p in PATHS}
    schema = schemathesis.openapi.from_dict(doc, config=schemathesis.Config())
    schema.app = world.client.app
    http = ASGIClient(world.client.app)
    headers = world.headers("investigator", **PURPOSE)
    statuses: dict[int, int] = {}
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operation: APIOperation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode, headers=headers)
            names = [p.name for p in operation.path_parameters]
            if mode is GenerationMode.POSITIVE and names and names[0] in KNOWN:
                strategy = st.one_of(strategy, *[operation.as_strategy(
                    headers=headers, path_parameters={names[0]: v}) for v in KNOWN[names[0]]])

            @SETTINGS
            @hypothesis.given(case=strategy)
            def fuzz(case: Case) -> None:
                response = case.call(session=http)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                case.validate_response(response, checks=CHECKS)

            fuzz()
    print(f"\nsearch fuzz on {world.db.dialect}: {dict(sorted(statuses.items()))}")
    assert statuses.get(200, 0) >= 20, statuses
    assert not any(code >= 500 for code in statuses), statuses
