"""Planning: size servers, storage and network; place cameras and plate readers.

`capacity` sizes a deployment from the registry or a what-if file; `coverage`
chooses camera sites and headings (a maximal covering location problem, solved
exactly with CP-SAT beside a greedy baseline); `gates` places plate readers on
the roads entering the city.
"""

from vigila.planning import capacity, coverage, gates

__all__ = ["capacity", "coverage", "gates"]
