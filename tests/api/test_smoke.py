from conftest import World


def test_admin_lists_devices(world: World) -> None:
    r = world.client.get("/api/devices", headers=world.headers("admin"))
    assert r.status_code == 200
    assert {d["id"] for d in r.json()["items"]} == {
        "NVR-A", "NVR-B", "CAM-A1", "CAM-A2", "CAM-B1", "LPR-B1", "CAM-X"}
