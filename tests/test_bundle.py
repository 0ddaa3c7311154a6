import hashlib
import json

import pytest

from hil.bundle import MANIFEST, Bundle, write_bundle
from hil.errors import ConfigError
from hil.scenario import load_scenarios


@pytest.fixture
def scenario():
    return load_scenarios(names=["one-non-secure"])[0]


def test_bundle_carries_the_scenario_blobs_with_their_digests(tmp_path, scenario):
    image = tmp_path / "fip.bin"
    image.write_bytes(b"\x01fip")
    bundle = write_bundle(scenario, "virtual", tmp_path / "b", {"fip": image})
    assert bundle.spmc_config() == scenario.spmc_config()
    assert bundle.probe_plan() == scenario.probe_plan()
    for role, path in bundle.files.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == bundle.sha256[role]
    assert Bundle.load(tmp_path / "b") == bundle
    assert any(key.startswith("fip:") for key in bundle.provenance())


def test_garbled_blob_is_reported_with_its_path(tmp_path, scenario):
    bundle = write_bundle(scenario, "virtual", tmp_path)
    bundle.path("spmc_config").write_bytes(b"garbage")
    with pytest.raises(ConfigError, match=r"spmc-config\.bin"):
        bundle.spmc_config()


def test_missing_or_malformed_manifest_names_the_file(tmp_path, scenario):
    with pytest.raises(ConfigError, match="cannot read bundle manifest"):
        Bundle.load(tmp_path)
    (tmp_path / MANIFEST).write_text(json.dumps({"scenario": "x"}))
    with pytest.raises(ConfigError, match="malformed bundle manifest"):
        Bundle.load(tmp_path)
    with pytest.raises(ConfigError, match="no 'fip' file"):
        write_bundle(scenario, "virtual", tmp_path).path("fip")


def test_verify_names_the_file_that_changed_or_vanished(tmp_path, scenario):
    bundle = write_bundle(scenario, "virtual", tmp_path)
    bundle.verify()
    bundle.path("probe_plan").write_bytes(scenario.probe_plan().encode() + b"\0")
    with pytest.raises(ConfigError, match=r"probe-plan\.bin: sha256 does not match bundle\.json"):
        bundle.verify()
    bundle.path("probe_plan").unlink()
    with pytest.raises(ConfigError, match=r"probe-plan\.bin: cannot read"):
        bundle.verify()
