"""Gateway <-> certificate associations (seed 4.8-4.10; only NationalStandard gateways bind certificates).

ListVpnCertificateAssociations returns a *plain* array VpnCertificateRelations (aliyun-wire.md §3).
"""
from __future__ import annotations

from vgwlib import (DRY_RUN_MESSAGE, ISO_Z, check_fields, create_gateway, plain_list, uid, wait_gateway_status)

REL_TYPES = {"VpnGatewayId": str, "CertificateType": str, "CertificateId": str, "AssociationTime": str,
             "RegionId": str}


def relations(api, **params):
    body = api.call("ListVpnCertificateAssociations", params)
    check_fields(body, {"TotalCount": int, "MaxResults": int}, {"NextToken": str}, "ListVpnCertificateAssociations")
    items = plain_list(body, "VpnCertificateRelations", "ListVpnCertificateAssociations")
    for i, r in enumerate(items):
        check_fields(r, REL_TYPES, None, f"VpnCertificateRelations[{i}]")
        assert ISO_Z.match(r["AssociationTime"]), r["AssociationTime"]
    return body, items


def associate(api, gw, cert_id, ctype, **extra):
    api.call("AssociateVpnGatewayWithCertificate", {"VpnGatewayId": gw, "CertificateId": cert_id,
                                                    "CertificateType": ctype, **extra})
    wait_gateway_status(api, gw, "active")


def test_associate_list_dissociate(fresh_api):
    for mode in ("v3", "v2"):
        api = fresh_api(mode)
        g1, _ = create_gateway(api, VpnType="NationalStandard")
        g2, _ = create_gateway(api, VpnType="NationalStandard")
        assert api.call("DescribeVpnGateway", {"VpnGatewayId": g1})["VpnType"] == "NationalStandard"
        sig, enc = f"6bfe4218-s{uid()}", f"6bfe4218-e{uid()}"

        e = api.error("AssociateVpnGatewayWithCertificate", {"VpnGatewayId": g1, "CertificateId": sig,
                                                             "CertificateType": "Signature", "DryRun": True},
                      "DryRunOperation", 400)
        assert (e.data or {}).get("Message") == DRY_RUN_MESSAGE
        assert relations(api)[0]["TotalCount"] == 0

        associate(api, g1, sig, "Signature", ClientToken=f"tok-{uid()}")
        associate(api, g1, enc, "Encryption", DryRun=False)
        associate(api, g2, sig, "Signature")

        body, items = relations(api)
        assert body["TotalCount"] == 3 and len(items) == 3
        assert body["MaxResults"] == 10, "MaxResults defaults to 10"
        assert {(r["VpnGatewayId"], r["CertificateId"], r["CertificateType"]) for r in items} == {
            (g1, sig, "Signature"), (g1, enc, "Encryption"), (g2, sig, "Signature")}
        assert {r["RegionId"] for r in items} == {"cn-hangzhou"}

        _, only_g1 = relations(api, VpnGatewayId=g1)
        assert {r["CertificateId"] for r in only_g1} == {sig, enc}
        _, only_enc = relations(api, CertificateType="Encryption")
        assert [(r["VpnGatewayId"], r["CertificateId"]) for r in only_enc] == [(g1, enc)]
        _, by_cert = relations(api, CertificateId=sig)
        assert {r["VpnGatewayId"] for r in by_cert} == {g1, g2}

        first, page1 = relations(api, MaxResults=2)
        assert len(page1) == 2 and first["TotalCount"] == 3 and first["MaxResults"] == 2
        assert first.get("NextToken"), "second page exists"
        last, page2 = relations(api, MaxResults=2, NextToken=first["NextToken"])
        assert len(page2) == 1 and not last.get("NextToken")
        keys = {(r["VpnGatewayId"], r["CertificateId"]) for r in page1 + page2}
        assert len(keys) == 3
        api.error("ListVpnCertificateAssociations", {"MaxResults": 21}, "InvalidMaxResults", 400)

        e = api.error("DissociateVpnGatewayWithCertificate", {"VpnGatewayId": g1, "CertificateId": enc,
                                                              "CertificateType": "Encryption", "DryRun": True},
                      "DryRunOperation", 400)
        assert relations(api)[0]["TotalCount"] == 3
        api.call("DissociateVpnGatewayWithCertificate", {"VpnGatewayId": g1, "CertificateId": enc,
                                                         "CertificateType": "Encryption",
                                                         "ClientToken": f"tok-{uid()}"})
        wait_gateway_status(api, g1, "active")
        _, items = relations(api)
        assert {(r["VpnGatewayId"], r["CertificateId"]) for r in items} == {(g1, sig), (g2, sig)}


def test_association_errors(tea):
    gw, _ = create_gateway(tea, VpnType="NationalStandard")
    tea.error("AssociateVpnGatewayWithCertificate", {"VpnGatewayId": "vpn-doesnotexist000", "CertificateId": "c-1",
                                                     "CertificateType": "Signature"},
              "InvalidVpnGatewayInstanceId.NotFound", 404)
    tea.error("AssociateVpnGatewayWithCertificate", {"VpnGatewayId": gw, "CertificateId": "c-1"},
              "MissingCertificateType", 400)
    tea.error("AssociateVpnGatewayWithCertificate", {"VpnGatewayId": gw, "CertificateType": "Signature"},
              "MissingCertificateId", 400)
    tea.error("AssociateVpnGatewayWithCertificate", {"VpnGatewayId": gw, "CertificateId": "c-1",
                                                     "CertificateType": "Decoration"}, "InvalidCertificateType", 400)
    tea.error("DissociateVpnGatewayWithCertificate", {"VpnGatewayId": "vpn-doesnotexist000", "CertificateId": "c-1",
                                                      "CertificateType": "Signature"},
              "InvalidVpnGatewayInstanceId.NotFound", 404)


def test_associate_before_active_is_configuring(tea):
    gw, _ = create_gateway(tea, VpnType="NationalStandard", wait=False)
    tea.error("AssociateVpnGatewayWithCertificate", {"VpnGatewayId": gw, "CertificateId": f"c-{uid()}",
                                                     "CertificateType": "Signature"}, "VpnGateway.Configuring", 400)
