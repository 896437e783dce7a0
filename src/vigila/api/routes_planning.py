"""Capacity planning over HTTP: from the registry, or from a what-if document."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from vigila.access import Permission, Principal
from vigila.api.deps import Installation, installation, principal
from vigila.core import Forbidden
from vigila.planning import capacity

router = APIRouter(prefix="/api/plan", tags=["planning"])


def _planner(who: Principal = Depends(principal)) -> Principal:
    # A plan sums every device in the city: it needs the registry across all zones.
    who.require(Permission.REGISTRY_READ)
    if not who.all_zones:
        raise Forbidden("capacity planning covers every zone: it needs a user with every zone")
    return who


@router.get("/capacity", response_model=capacity.CapacityPlan)
def capacity_from_registry(who: Principal = Depends(_planner),
                           inst: Installation = Depends(installation)) -> capacity.CapacityPlan:
    """The plan for the devices registered now (active, in maintenance and planned)."""
    with inst.db.read() as conn:
        return capacity.plan_capacity(capacity.from_registry(conn))


@router.post("/capacity", response_model=capacity.CapacityPlan)
def capacity_what_if(body: capacity.WhatIf,
                     who: Principal = Depends(_planner)) -> capacity.CapacityPlan:
    """The plan for a what-if document (the same schema as the YAML files)."""
    return capacity.plan_capacity(body)
