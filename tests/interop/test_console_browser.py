"""The web console in a real browser: Debian's chromium and chromium-driver, headless, driven by Selenium (the
driver is given, never downloaded). A tenant signs in with its access key pair, creates a gateway in the console's
form and watches it go from creating to active without reloading, adds a connection with a new customer gateway (a
refused one first: the API's code is shown and nothing is left behind), downloads the connection's strongSwan
configuration and the vendor's JSON, creates an SSL-VPN server and a client certificate and downloads its OpenVPN
profile, and signs out; an operator created with `openvgw admin operator create` sees every tenant and the data
plane. The page also fits a phone's width.

A screenshot of each page is written to target/console-screenshots/ (OVGW_SCREENSHOTS overrides it) for a reviewer.
Tunnels coming up against a real peer are shown by tests/e2e/test_console.py (netns data plane, root)."""
from __future__ import annotations

import json

import pytest

import browser as b
import conftest
from vgwlib import unique_name, unique_vpc

b.require()
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

# Gateways take 4 s to come up here, so that a person (and this test) can watch them being created.
CONSOLE_CONFIG = conftest.MAIN_CONFIG.replace("provision_delay_ms = 300", "provision_delay_ms = 4000").replace(
    conftest.MAIN_EIP_POOL, "198.19.16.0/24")


@pytest.fixture(scope="module")
def console_server(tmp_path_factory):
    srv = conftest._start(tmp_path_factory, "openvgw-console", CONSOLE_CONFIG, "198.19.16.0/24")
    yield srv
    srv.stop()


@pytest.fixture
def browser(tmp_path):
    with b.chromium(tmp_path) as driver:
        yield driver


def attr(driver, css: str, name: str) -> str:
    """An attribute of the first element `css` finds ("" when there is none). Inside a live region it may go stale
    while read: call it within `b.until`, which looks again."""
    found = driver.find_elements(By.CSS_SELECTOR, css)
    return (found[0].get_attribute(name) or "") if found else ""


def click(driver, css: str) -> bool:
    driver.find_element(By.CSS_SELECTOR, css).click()
    return True


def open_form(driver, link: str, field: str) -> None:
    """Follows the button `link` to a console form and waits for its `field`."""
    driver.find_element(By.LINK_TEXT, link).click()
    b.until(lambda: driver.find_elements(By.ID, f"f-{field}"))


def fill(driver, **fields: str) -> None:
    """Types each value into the form's field of that name, replacing what the field held."""
    for name, value in fields.items():
        field = driver.find_element(By.ID, f"f-{name}")
        field.clear()
        field.send_keys(value)


def send(driver, button: str) -> None:
    driver.find_element(By.XPATH, f"//button[text()='{button}']").click()


def status_of(driver, gateway: str) -> str:
    return attr(driver, f"tr[data-gateway='{gateway}'] [data-status]", "data-status")


def status_of_page(driver) -> str:
    return attr(driver, "dl.summary [data-status]", "data-status")


def test_a_tenant_and_an_operator_use_the_console(console_server, browser, tmp_path):
    d, srv = browser, console_server
    base = f"http://127.0.0.1:{srv.port}"
    mine, theirs = srv.create_tenant(unique_name("ca")), srv.create_tenant(unique_name("cb"))
    api, other = srv.api(mine), srv.api(theirs)

    d.get(f"{base}/console/gateways")
    assert d.current_url.endswith("/console/sign-in"), "no session, no page"
    b.shot(d, "01-sign-in")
    d.find_element(By.ID, "id").send_keys(mine["access_key_id"])
    d.find_element(By.ID, "secret").send_keys("not-the-secret")
    d.find_element(By.ID, "secret").submit()
    assert "Sign-in failed" in d.find_element(By.CSS_SELECTOR, "[role=alert]").text
    b.sign_in(d, base, "key", mine["access_key_id"], mine["access_key_secret"])

    foreign = other.call("CreateVpnGateway", {"VpcId": unique_vpc(), "Bandwidth": 5})["VpnGatewayId"]
    # A gateway created in the console's form: a call of the Alibaba API on the tenant's behalf. A refusal is
    # the API's own code, with what was typed kept.
    name, vpc = unique_name("console-gw"), unique_vpc()
    open_form(d, "New Alibaba gateway", "vpc")
    fill(d, name=name, vpc=vpc)
    Select(d.find_element(By.ID, "f-bandwidth")).select_by_value("5")
    d.find_element(By.ID, "f-ssl").click()
    b.shot(d, "02-new-gateway-form")
    send(d, "Create gateway")
    gw = b.until(lambda: d.current_url.rsplit("/console/gateways/", 1)[-1] if "/console/gateways/vpn-" in d.current_url
                 else None, 15)
    described = api.call("DescribeVpnGateway", {"VpnGatewayId": gw})
    assert (described["Name"], described["VpcId"], described["SslVpn"]) == (name, vpc, "enable"), described
    # The page refreshes by itself: the gateway shows while it is being created, then turns active.
    seen = b.until(lambda: status_of_page(d), 10)
    assert seen in ("init", "creating"), seen
    b.shot(d, "03-gateway-creating")
    b.until(lambda: status_of_page(d) == "active", 30)
    d.find_element(By.LINK_TEXT, "← Gateways").click()
    b.until(lambda: status_of(d, gw) == "active", 10)
    b.shot(d, "04-gateways-active")
    assert foreign not in d.page_source, "another tenant's gateway is not shown"

    # A connection with a new customer gateway, from the gateway's page; a refused one first.
    b.until(lambda: d.find_element(By.LINK_TEXT, name).click() or True)  # a row of the live list
    b.until(lambda: name in d.find_element(By.TAG_NAME, "h1").text)
    open_form(d, "New connection", "peer_ip")
    fill(d, name="to-the-branch", peer_ip="198.51.100.99", local="10.1.0.0/16", remote="192.168.90.0/33")
    send(d, "Create connection")
    alert = b.until(lambda: d.find_elements(By.ID, "refusal"), 10)[0].text
    assert "IllegalParam.RemoteSubnet" in alert, alert
    b.shot(d, "05-connection-refused")
    assert api.call("DescribeCustomerGateways", {})["TotalCount"] == 0, "a refused form leaves nothing behind"
    fill(d, remote="192.168.90.0/24")
    send(d, "Create connection")
    b.until(lambda: d.current_url.endswith(f"/console/gateways/{gw}"), 10)
    # The connections and the picture are in the page's live region, swapped every few seconds.
    vco = b.until(lambda: attr(d, "tr[data-connection]", "data-connection"), 15)
    topology = b.until(lambda: attr(d, "svg.topology", "innerHTML"), 10)
    assert "<title>" in topology and "198.51.100.99" in topology, topology
    b.shot(d, "06-gateway")
    b.until(lambda: click(d, f"a[href='/console/connections/{vco}/config/strongswan']"))
    conf = b.until(lambda: (tmp_path / "swanctl.conf").exists() and (tmp_path / "swanctl.conf").read_text(), 15)
    assert "connections {" in conf and "198.51.100.99" in conf, conf
    b.until(lambda: click(d, f"a[href='/console/connections/{vco}/config/vendor']"))
    vendor = tmp_path / f"{vco}.json"
    text = b.until(lambda: vendor.exists() and vendor.read_text(), 15)
    config = json.loads(text)["VpnConnectionConfig"]
    assert (config["Remote"], config["RemoteSubnet"]) == ("198.51.100.99", "192.168.90.0/24"), config

    # SSL-VPN: a server, then a client certificate, then its OpenVPN profile. The gateway takes one change at a
    # time (Alibaba's VpnGateway.Configuring), so each form waits for it to be active again.
    b.until(lambda: status_of_page(d) == "active", 30)
    open_form(d, "New SSL-VPN server", "pool")
    fill(d, name="laptops", pool="192.168.200.0/24", local="10.1.0.0/16")
    b.shot(d, "07-new-ssl-server-form")
    send(d, "Create server")
    b.until(lambda: d.current_url.endswith(f"/console/gateways/{gw}"), 10)
    b.until(lambda: status_of_page(d) == "active", 30)
    open_form(d, "New client certificate", "server")
    fill(d, name="laptop-1")
    send(d, "Create certificate")
    b.until(lambda: d.current_url.endswith(f"/console/gateways/{gw}"), 10)
    cert = b.until(lambda: attr(d, "#client-certs a[href$='/profile']", "href"), 15)
    b.shot(d, "08-gateway-with-ssl")
    b.until(lambda: click(d, "#client-certs a[href$='/profile']"))
    profile = tmp_path / (cert.rsplit("/", 2)[-2] + ".ovpn")
    text = b.until(lambda: profile.exists() and profile.read_text(), 15)
    assert "<cert>" in text and "remote " in text, text

    # A phone's width: nothing spills sideways out of the page (wide tables scroll inside themselves).
    d.set_window_size(390, 844)
    d.refresh()
    fits = d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    b.shot(d, "09-gateway-phone")
    assert fits, "the page is wider than a phone's screen"
    d.set_window_size(1280, 1000)

    d.find_element(By.XPATH, "//button[text()='Sign out']").click()
    b.until(lambda: d.current_url.endswith("/console/sign-in"))
    b.shot(d, "10-signed-out")
    d.get(f"{base}/console/gateways/{gw}")
    assert d.current_url.endswith("/console/sign-in"), "the session is over"

    created = srv.run_cli("admin", "operator", "create", "--name", unique_name("ops"))
    assert created.returncode == 0, created.stderr
    fields = dict(line.split(": ", 1) for line in created.stdout.splitlines() if ": " in line)
    b.sign_in(d, base, "operator", fields["operator"], fields["password"])
    b.until(lambda: status_of(d, gw) and status_of(d, foreign), 10)
    b.shot(d, "11-operator-gateways")
    d.find_element(By.LINK_TEXT, "Data plane").click()
    b.until(lambda: d.current_url.endswith("/console/dataplane"))
    assert gw in d.page_source and foreign in d.page_source
    b.shot(d, "12-operator-dataplane")
    print(f"screenshots: {b.SHOTS}")
