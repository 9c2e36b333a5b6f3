import os
import time

import pytest

from detectors.common.durations import parse_duration
from pipeline.coverage.inventory import InventoryFile, load_inventory, parse_inventory


def test_valid_entries_survive_invalid_ones_and_errors_name_the_key():
    inv = parse_inventory(
        {
            "agencies": [
                {
                    "id": "so-tttt",
                    "name": "Sở TT&TT",
                    "tier": "department",
                    "sources": [{"name": "auth", "path": "/var/log/auth.log", "silent_after": "1h"}],
                },
                {"id": "bad tier", "name": "x", "tier": "department"},
                {"id": "xa-a", "name": "UBND xã A", "tier": "village"},
                {"id": "xa-b", "name": "UBND xã B", "tier": "commune", "sources": [{"name": "auth"}]},
                {"id": "so-tttt", "name": "dup", "tier": "department"},
                {"id": "xa-c", "name": "UBND xã C", "tier": "commune", "colour": "red"},
                "not a mapping",
            ]
        }
    )
    assert [a.id for a in inv.agencies] == ["so-tttt"]
    assert inv.agencies[0].sources[0].silent_after_s == 3600
    joined = "\n".join(inv.errors)
    assert "agencies[1] (id=bad tier).id" in joined
    assert "agencies[2] (id=xa-a).tier" in joined
    assert "agencies[3] (id=xa-b).sources[0].path" in joined
    assert "agencies[4] (id=so-tttt).id: duplicate" in joined
    assert "agencies[5] (id=xa-c).colour: unknown key" in joined
    assert "agencies[6]:" in joined
    assert len(inv.errors) == 6


def test_defaults_silent_after_applies_unless_the_source_overrides():
    inv = parse_inventory(
        {
            "defaults": {"silent_after": "10m"},
            "agencies": [
                {
                    "id": "a",
                    "name": "A",
                    "tier": "commune",
                    "sources": [{"name": "auth", "path": "/a"}, {"name": "mail", "path": "/m", "silent_after": "8h"}],
                }
            ],
        }
    )
    assert [s.silent_after_s for s in inv.agencies[0].sources] == [600, 8 * 3600]


@pytest.mark.parametrize(
    "value,seconds", [("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172800), (30, 30), ("45", 45)]
)
def test_durations(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "-5m", "0", "5 weeks", True, None, "1h30"])
def test_bad_durations(value):
    with pytest.raises(ValueError):
        parse_duration(value)


def test_not_a_mapping_is_one_error():
    assert parse_inventory(["x"]).errors and not parse_inventory(["x"]).agencies
    assert parse_inventory(None).errors


def test_glob_and_host_matching():
    inv = parse_inventory(
        {
            "agencies": [
                {
                    "id": "a",
                    "name": "A",
                    "tier": "commune",
                    "sources": [
                        {"name": "auth", "path": "*auth.log"},
                        {"name": "web", "path": "/var/log/nginx/access.log", "host": "web01"},
                    ],
                }
            ]
        }
    )
    auth, web = inv.agencies[0].sources
    assert auth.matches("/var/log/auth.log", "anything") and not auth.matches("/var/log/syslog", "x")
    assert web.matches("/var/log/nginx/access.log", "web01")
    assert not web.matches("/var/log/nginx/access.log", "db01")
    assert not web.matches("/var/log/nginx/access.log", "")


def test_hot_reload_keeps_last_good_inventory_on_broken_yaml(tmp_path):
    p = tmp_path / "inventory.yaml"
    p.write_text("agencies:\n  - {id: a, name: A, tier: commune}\n")
    f = InventoryFile(p)
    assert f.refresh(time.time()) and [a.id for a in f.current.agencies] == ["a"]
    assert not f.refresh(time.time())  # unchanged file: no reload
    p.write_text("agencies: [ {id: a, name: A, tier: commune}\n")  # broken YAML
    os.utime(p, (time.time() + 5, time.time() + 5))
    assert not f.refresh(time.time())
    assert "not valid YAML" in f.file_error and [a.id for a in f.current.agencies] == ["a"]
    p.write_text("agencies:\n  - {id: a, name: A, tier: commune}\n  - {id: b, name: B, tier: district}\n")
    os.utime(p, (time.time() + 10, time.time() + 10))
    assert f.refresh(time.time()) and [a.id for a in f.current.agencies] == ["a", "b"] and f.file_error == ""


def test_shipped_inventories_are_valid():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "config"
    demo = load_inventory(root / "inventory.yaml")
    assert len(demo.agencies) == 4 and not demo.errors
    province = load_inventory(root / "inventory.province.yaml")
    assert not province.errors
    tiers = [a.tier for a in province.agencies]
    assert tiers.count("department") >= 18 and tiers.count("district") == 9 and tiers.count("commune") == 140
