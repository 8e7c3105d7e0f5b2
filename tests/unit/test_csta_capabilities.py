"""Capability exchange: GetSwitchingFunctionCaps, GetLogicalDeviceInformation and
GetPhysicalDeviceInformation, per device type of the built-in topology (IP, DECT, analog and virtual
extensions, ACD group 5000, hunt group 6000, a number on the public network behind trunk prefix 0).

Expected values come from the schema (names, order, enumerations: DeviceCategory, NamedDeviceTypes,
AppearanceType, ConnectionView, IgnoreUnsupportedParameters) and from what the exchange does
(docs/features.md: one call in hand and one held, three forwarding types, conferences of up to 8).
"""
from __future__ import annotations

import pytest
from lxml import etree

from csta_front.service_table import SERVICES
from csta_front.services import SERVICE_GROUPS
from tests.csta_fakes import FakeClient, FakeFront, canon
from tests.svc_schema_check import assert_valid

ED3 = "http://www.ecma-international.org/standards/ecma-323/csta/ed3"
ED4 = "http://www.ecma-international.org/standards/ecma-323/csta/ed4"
ED6 = "http://www.ecma-international.org/standards/ecma-323/csta/ed6"


@pytest.fixture
def client() -> FakeClient:
    return FakeClient(FakeFront())


def ask(client: FakeClient, service: str, device: str | None = None, ns: str = ED4) -> etree._Element:
    body = f"<device>{device}</device>" if device is not None else ""
    frame = client.ask(1, f'<{service} xmlns="{ns}">{body}</{service}>')
    assert_valid(frame.xml)
    assert client.front.bus.requests == []  # answered from the topology every process shares
    return etree.fromstring(frame.xml)


def children(el) -> list[str]:
    return [etree.QName(c).localname for c in el]


def value(el, *path: str) -> str | None:
    for name in path:
        el = next((c for c in el if etree.QName(c).localname == name), None)
        if el is None:
            return None
    return el.text


def true_items(el, *path: str) -> list[str]:
    for name in path:
        el = next(c for c in el if etree.QName(c).localname == name)
    return [etree.QName(c).localname for c in el if (c.text or "true") == "true"]


@pytest.mark.parametrize("ns", [ED3, ED4, ED6])
def test_switching_function_caps(client, ns):
    root = ask(client, "GetSwitchingFunctionCaps", ns=ns)
    assert etree.QName(root).localname == "GetSwitchingFunctionCapsResponse"
    # The two the schema requires (minOccurs 1), with values of their enumerations.
    assert value(root, "ignoreUnsupportedParameters") == "ignoreParameters"
    assert value(root, "connectionView") == "fixed"
    assert value(root, "switchingSubDomainName") == client.front.topology.name
    assert true_items(root, "swDomainFeatures") == ["negativeAcknowledgment", "extCallsIncoming", "extCallsOutgoing"]
    assert true_items(root, "agentLogOnModels") == ["logOnToACDGroupExplOneStep"]
    assert children(root.find(f"{{{ns}}}monitorFilterItems")) == [
        "deviceOnDeviceMonitorFilter", "callOnDeviceMonitorFilter", "callOnConnectionMonitorFilter"]


@pytest.mark.parametrize("number,model", [("1000", "IP/SIP extension"), ("1020", "cordless DECT extension"),
                                          ("1030", "analog extension"), ("1015", "remote extension")])
def test_an_extension_with_a_terminal(client, number, model):
    logical = ask(client, "GetLogicalDeviceInformation", number)
    assert value(logical, "deviceCategory") == "station"
    assert value(logical, "namedDeviceTypes") == "station"
    assert value(logical, "hasPhysicalElement") == "true"
    assert value(logical, "appearanceAddressable") == "false"
    assert value(logical, "appearanceType") == "basicStandard"
    assert (value(logical, "maxActiveCalls"), value(logical, "maxHeldCalls"), value(logical, "maxFwdSettings"),
            value(logical, "maxDevicesInConf")) == ("1", "1", "3", "8")
    assert "makeCall" in true_items(logical, "logDevServList", "callControlServList")
    assert true_items(logical, "logDevServList", "callAssociatedServList") == ["associateData", "generateDigits"]
    assert true_items(logical, "deviceMaintEvtsList") == ["backInService", "outOfService"]

    physical = ask(client, "GetPhysicalDeviceInformation", number)
    assert canon(etree.tostring(physical)) == canon(
        f'<GetPhysicalDeviceInformationResponse xmlns="{ED4}"><deviceCategory>station</deviceCategory>'
        '<namedDeviceTypes>station</namedDeviceTypes><hasLogicalElement>true</hasLogicalElement>'
        f'<deviceModelName>{model}</deviceModelName>'
        '<physDevServList><getMessageWaitingIndicator/><setMessageWaitingIndicator/></physDevServList>'
        '<physDevEvtsList><messageWaiting/></physDevEvtsList></GetPhysicalDeviceInformationResponse>')


def test_an_agent_extension_lists_its_groups_and_agent_services(client):
    logical = ask(client, "GetLogicalDeviceInformation", "1005")  # agent of ACD 5000
    assert [c.text for c in logical.find(f"{{{ED4}}}associatedGroupList")] == ["5000"]
    assert "setAgentState" in true_items(logical, "logDevServList", "logicalServList")
    assert "agentReady" in true_items(logical, "logDevEvtsList", "logicalEvtsList")
    plain = ask(FakeClient(FakeFront()), "GetLogicalDeviceInformation", "1010")
    assert plain.find(f"{{{ED4}}}associatedGroupList") is None
    assert "setAgentState" not in true_items(plain, "logDevServList", "logicalServList")


def test_a_hunt_group_member_lists_its_group(client):
    logical = ask(client, "GetLogicalDeviceInformation", "1002")
    assert [c.text for c in logical.find(f"{{{ED4}}}associatedGroupList")] == ["6000"]


def test_a_virtual_extension_has_no_physical_element(client):
    logical = ask(client, "GetLogicalDeviceInformation", "1040")
    assert value(logical, "hasPhysicalElement") == "false"
    frame = FakeClient(FakeFront()).ask(2, f'<GetPhysicalDeviceInformation xmlns="{ED4}"><device>1040</device>'
                                           '</GetPhysicalDeviceInformation>')
    assert canon(frame.xml) == canon(f'<CSTAErrorCode xmlns="{ED4}"><operation>requestIncompatibleWithObject'
                                     '</operation></CSTAErrorCode>')


@pytest.mark.parametrize("number,category,named,attribute", [("5000", "acd", "acdGroup", "acd"),
                                                             ("6000", "group", "stationGroup", "hunt")])
def test_groups(client, number, category, named, attribute):
    logical = ask(client, "GetLogicalDeviceInformation", number)
    assert value(logical, "deviceCategory") == category
    assert true_items(logical, "groupDeviceAttributes") == [attribute]
    assert value(logical, "namedDeviceTypes") == named
    assert value(logical, "hasPhysicalElement") == "false"
    assert logical.find(f"{{{ED4}}}logDevServList") is None  # a group makes and answers no calls itself


def test_a_number_on_the_public_network(client):
    logical = ask(client, "GetLogicalDeviceInformation", "0701234567")
    assert (value(logical, "deviceCategory"), value(logical, "namedDeviceTypes")) == ("networkInterface", "trunk")


@pytest.mark.parametrize("service", ["GetLogicalDeviceInformation", "GetPhysicalDeviceInformation"])
@pytest.mark.parametrize("device,error", [("4999", "invalidDeviceID"), ("", "invalidDeviceID")])
def test_unknown_or_missing_device(client, service, device, error):
    frame = client.ask(1, f'<{service} xmlns="{ED4}"><device>{device}</device></{service}>')
    assert canon(frame.xml) == canon(f'<CSTAErrorCode xmlns="{ED4}"><operation>{error}</operation></CSTAErrorCode>')


def test_each_new_service_is_registered_in_its_capability_list():
    for name in ("GetSwitchingFunctionCaps", "GetLogicalDeviceInformation", "GetPhysicalDeviceInformation"):
        assert name in SERVICES and name in SERVICE_GROUPS["capExchangeServList"].values()
    assert "ChangeMonitorFilter" in SERVICES and "ChangeMonitorFilter" in SERVICE_GROUPS["monitoringServList"].values()
