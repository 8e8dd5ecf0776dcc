"""Unit tests: Swarm service + task objects (as the Engine API returns them) -> routing."""

from proxygen.model import build_plan
from proxygen.swarm import task_containers

SERVICE = {"Spec": {"Name": "usbills_nginx", "TaskTemplate": {"ContainerSpec": {
    "Env": ["VIRTUAL_HOST=bills.example.com", "VIRTUAL_PORT=8080"]}}}}


def task(slot, ip, state="running", desired="running"):
    return {"ID": f"t{slot}", "Slot": slot, "DesiredState": desired, "Status": {"State": state},
            "NetworksAttachments": [{"Network": {"Spec": {"Name": "usbills-swarm"}},
                                     "Addresses": [f"{ip}/24"]}]}


def test_running_tasks_become_the_upstream_servers_of_the_service_host():
    tasks = [task(1, "10.0.1.5"), task(2, "10.0.1.6"), task(3, "10.0.1.7", state="starting"),
             task(4, "10.0.1.8", desired="shutdown")]
    plan = build_plan(task_containers(SERVICE, tasks), {"usbills-swarm"})
    servers = plan.vhosts["bills.example.com"].locations["/"].servers
    assert servers == ["10.0.1.5:8080", "10.0.1.6:8080"]  # starting and stopping ones left out


def test_a_task_on_no_proxy_network_is_reported_not_routed():
    plan = build_plan(task_containers(SERVICE, [task(1, "10.0.1.5")]), {"other"})
    assert not plan.vhosts and "usbills_nginx.1" in plan.problems[0]
