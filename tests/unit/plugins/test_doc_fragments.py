"""The gate sub-options are documented three times (ansible-test wants literal doc strings): keep them equal."""

import yaml

from ansible_collections.bluegreen.aws.plugins.doc_fragments.gates import ModuleDocFragment
from ansible_collections.bluegreen.aws.plugins.module_utils.gates import GATE_OPTIONS


def test_every_gate_option_is_documented_the_same_way_everywhere():
    options = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    options.update(yaml.safe_load(ModuleDocFragment.CODEDEPLOY)["options"])
    suboptions = {name: spec["suboptions"] for name, spec in options.items()}
    assert set(suboptions) == {"gates", "ready_gates", "bake_gates"}
    first = suboptions["gates"]
    assert all(sub == first for sub in suboptions.values())
    assert set(first) == set(GATE_OPTIONS)
    for name, spec in GATE_OPTIONS.items():
        assert first[name]["type"] == spec["type"]
        assert first[name].get("default") == spec.get("default"), name
        assert first[name].get("choices") == spec.get("choices"), name
